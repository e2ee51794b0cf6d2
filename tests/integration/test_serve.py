"""``airlock serve`` as a process (issue #13, faults 5 and 6): start-up errors are one line,
``airlock_started`` names the port actually bound once it listens, and malformed requests get a
4xx, one structured access event and a metric, with every log line JSON."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from pathlib import Path

import aiohttp

from tests.airlock_process import airlock_serve, run_airlock, serve_env

# Each is refused by aiohttp's parser before any middleware runs.
MALFORMED = (
    b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # over-long request line
    b"GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n",  # spaces in the URL
    b"GET /\x00\x01 HTTP/1.1\r\nHost: x\r\n\r\n",  # control bytes in the URL
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n",  # NUL in a header value
    b"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",  # a header line without a colon
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",  # over-long header
    b"G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n",  # a bad method
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",  # an unknown HTTP version
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",  # TLS on the HTTP port
)


async def _raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = await reader.read()  # aiohttp closes the connection after a parser error
    writer.close()
    return answer


def _status(answer: bytes) -> int:
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", answer)
    assert match, answer[:200]
    return int(match.group(1))


async def _metric(url: str, route: str) -> float:
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/metrics") as r:  # loopback: no token needed
            text = await r.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("airlock_http_requests_total{") and f'route="{route}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_port_zero_is_bound_and_named_once_listening(tmp_path: Path) -> None:
    async with airlock_serve(tmp_path) as proc:
        port = proc.started["port"]
        assert isinstance(port, int)
        assert port > 0
        assert proc.started["host"] == "127.0.0.1"
        assert proc.started["listening"] == [f"http://127.0.0.1:{port}"]
        async with aiohttp.ClientSession() as s:
            async with s.get(proc.url + "/healthz") as r:
                assert r.status == 200
    assert proc.proc.returncode == 0
    names = [e["event"] for e in proc.events]
    assert names.count("airlock_started") == 1
    assert names[-1] == "airlock_stopped"


async def test_a_port_in_use_is_one_line_and_nothing_started(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = await run_airlock(
            "serve", "--host", "127.0.0.1", "--port", str(port), env=serve_env(tmp_path)
        )
    assert code == 2
    lines = [json.loads(line) if line.startswith("{") else line for line in out + err]
    problems = [line for line in lines if isinstance(line, str)]
    assert problems == [
        f"airlock: cannot listen on 127.0.0.1:{port}: the address is already in use "
        "(another airlock or another server?)"
    ]
    events = [line["event"] for line in lines if isinstance(line, dict)]
    assert "airlock_started" not in events


async def test_bad_command_line_values_are_reported_like_config_values(tmp_path: Path) -> None:
    for port, problem in (
        ("99999", "server.port: must be 0-65535, got 99999"),
        ("-1", "server.port: must be 0-65535, got -1"),
        ("eighty", "server.port: expected an integer, got 'eighty'"),
    ):
        code, out, err = await run_airlock("serve", "--port", port, env=serve_env(tmp_path))
        assert code == 2, port
        assert out == []
        assert err == ["airlock: invalid configuration:", f"  {problem}"]


async def test_malformed_requests_get_a_400_an_access_event_and_a_metric(
    tmp_path: Path,
) -> None:
    async with airlock_serve(tmp_path) as proc:
        port = proc.started["port"]
        for _ in range(3):
            for data in MALFORMED:
                assert _status(await _raw(port, data)) == 400, data[:40]
        counted = await _metric(proc.url, "malformed")
    assert counted == 3 * len(MALFORMED)
    events = proc.events  # every line parses as JSON, or this fails
    assert not [line for line in proc.lines if "Traceback" in line]
    malformed = [e for e in events if e["event"] == "access" and e.get("malformed")]
    assert len(malformed) == 3 * len(MALFORMED)
    for e in malformed:
        assert e["status"] == 400
        assert e["remote"] == "127.0.0.1"
        assert e["error"]
        assert e["request_id"]
    assert not [e for e in events if e.get("logger", "").startswith("aiohttp")]
