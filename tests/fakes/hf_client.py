"""Run the real `huggingface_hub` client in a child process against a hub endpoint.

The client reads HF_ENDPOINT, HF_HUB_DISABLE_XET, HF_HOME ... once at import time, so each call
starts a fresh interpreter with a clean environment. The snippet runs with `endpoint` (str),
`cache_dir` (str), the `huggingface_hub` module (as `hf`), `download(repo_id, filename, **kw)`
(hf_hub_download into cache_dir) and `read_hex(path)` in scope and assigns a JSON-able `result`;
an exception escaping the snippet is reported as `ClientRun.error`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_PRELUDE = """
import json, os, sys, traceback
import huggingface_hub as hf
endpoint = os.environ["HF_ENDPOINT"]
cache_dir = os.environ["HF_HUB_CACHE"]
result = None


def download(repo_id, filename, **kwargs):
    return hf.hf_hub_download(repo_id, filename, cache_dir=cache_dir, **kwargs)


def read_hex(path):
    with open(path, "rb") as f:
        return f.read().hex()


try:
{body}
    out = {{"result": result}}
except BaseException as exc:
    out = {{
        "error": {{
            "type": type(exc).__name__,
            "classes": [k.__name__ for k in type(exc).__mro__],
            "message": str(exc),
            "cause": repr(exc.__cause__) if exc.__cause__ else None,
        }}
    }}
    traceback.print_exc()
sys.stdout.write("\\n@@RESULT@@" + json.dumps(out, default=str) + "\\n")
"""


@dataclass(frozen=True)
class ClientError:
    type: str
    classes: list[str]
    message: str
    cause: str | None

    def is_a(self, name: str) -> bool:
        return name in self.classes


@dataclass(frozen=True)
class ClientRun:
    result: Any  # JSON
    error: ClientError | None
    stdout: str
    stderr: str

    def ok(self) -> Any:
        """The result, or an AssertionError carrying the child's output."""
        assert self.error is None, f"client failed: {self.error}\n{self.stderr[-4000:]}"
        return self.result


def hf_env(
    endpoint: str,
    home: Path,
    *,
    disable_xet: bool = True,
    token: str | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """A clean environment for the client: no inherited HF_* settings, proxies or tokens."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "HUGGING", "TRANSFORMERS_")) and "proxy" not in k.lower()
    }
    env |= {
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    }
    if disable_xet:
        env["HF_HUB_DISABLE_XET"] = "1"
    if token:
        env["HF_TOKEN"] = token
    return env | (extra or {})


REPO = Path(__file__).resolve().parents[2]
HF0_VENV = REPO / ".venv-hf0"
HF1_VENV = REPO / ".venv-hf1"


def _client_python(venv: Path, series: str) -> str:
    """The interpreter of another client series' environment (``make hf<N>`` creates it).

    Raises AssertionError with the fix when it is missing: that coverage must not silently vanish.
    """
    python = venv / "bin" / "python"
    if not python.exists():
        raise AssertionError(
            f"{python} is missing: run `make hf{series[0]}` (part of `make test`) to create the "
            f"huggingface_hub {series} client environment"
        )
    return str(python)


def hf0_python() -> str:
    """The huggingface_hub 0.x interpreter (``make hf0``)."""
    return _client_python(HF0_VENV, "0.x")


def hf1_python() -> str:
    """The huggingface_hub 1.x interpreter (``make hf1``)."""
    return _client_python(HF1_VENV, "1.x")


async def run_hf(
    snippet: str, env: dict[str, str], *, timeout: float = 180, python: str | None = None
) -> ClientRun:
    """Run `snippet` (indented into a try block) with the real client; never raises on failure.

    `python` selects another interpreter (e.g. `hf0_python()` for the 0.x client).
    """
    code = _PRELUDE.format(body=textwrap.indent(textwrap.dedent(snippet).strip(), "    "))
    proc = await asyncio.create_subprocess_exec(
        python or sys.executable,
        "-c",
        code,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        raw_out, raw_err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    stdout, stderr = raw_out.decode(errors="replace"), raw_err.decode(errors="replace")
    marker = stdout.rfind("@@RESULT@@")
    if marker < 0:
        raise AssertionError(f"client crashed (rc={proc.returncode}):\n{stdout}\n{stderr}")
    payload = json.loads(stdout[marker + len("@@RESULT@@") :])
    error = payload.get("error")
    return ClientRun(
        payload.get("result"), ClientError(**error) if error else None, stdout[:marker], stderr
    )
