"""``airlock policy test``: run the ``test_*`` rules of ``*_test.rego`` files, like ``opa test``.

Each test file runs in a child process (``python -m proxy.policy.testing --child ENGINE``) with
the policy modules, the folder's data (at ``data.airlock.config``, as served) and that one test
file.  A native crash of the engine marks the running test ERROR and the rest of that file
SKIPPED; the runner itself survives.

Engines: ``opa`` is the real OPA (opa-golib, in the child); ``regopy`` is the embedded engine
(strict built-in errors, as served).  ``auto`` picks opa when it is installed.  Tests that must
run on both engines override ``input.<key>`` / ``data.<path>`` with literal values, never
``with input as …`` (regopy crashes or parses it wrongly; see README, "policy test / eval").

Exit status: 0 all passed, 1 any FAIL/ERROR/SKIPPED (or an unusable policy folder), 2 no tests.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .snapshot import PolicyError, load_snapshot

CHILD_TIMEOUT = 300.0  # seconds for one test file
MARK = "@@airlock-test "  # prefixes the child's protocol lines; anything else on stdout is noise
_RULE_RX = re.compile(r"^(test_[A-Za-z0-9_]+)\b", re.M)
_PKG_RX = re.compile(r"^package\s+([A-Za-z0-9_.]+)", re.M)


@dataclass(frozen=True, slots=True)
class Result:
    name: str  # data.<package>.<rule>
    status: str  # PASS | FAIL | ERROR | SKIPPED
    ms: float | None = None
    detail: str = ""


def opa_available() -> bool:
    return importlib.util.find_spec("opa_bindings") is not None


def choose_engine(requested: str) -> str:
    if requested == "auto":
        return "opa" if opa_available() else "regopy"
    if requested == "opa" and not opa_available():
        raise PolicyError(
            "--engine opa needs opa-golib-python-bindings "
            "(pip install --ignore-requires-python opa-golib-python-bindings)"
        )
    return requested


def test_names(source: str) -> list[str]:
    return list(dict.fromkeys(_RULE_RX.findall(source)))


def run_file(
    engine: str, job: dict[str, Any], timeout: float = CHILD_TIMEOUT
) -> tuple[list[Result], str]:
    """Run one test file in a child; (results for every test name, a note on a crash)."""
    prefix = f"data.{job['package']}."
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "proxy.policy.testing", "--child", engine],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        out, rc, err = proc.stdout, proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as e:
        out, rc, err = _text(e.stdout), None, f"timed out after {timeout}s"
    done: dict[str, Result] = {}
    started: str | None = None
    for line in out.splitlines():
        if not line.startswith(MARK):
            continue
        event = json.loads(line[len(MARK) :])
        started = event.get("start", started)
        if "done" in event:
            done[event["done"]] = Result(
                prefix + event["done"], event["status"], event.get("ms"), event.get("detail", "")
            )
    if rc == 0 and len(done) == len(job["names"]):
        return [done[n] for n in job["names"]], ""
    why = _crash(rc, err)
    results = []
    for n in job["names"]:
        if n in done:
            results.append(done[n])
        elif started is None or n == started:  # died loading the file, or in this test
            results.append(Result(prefix + n, "ERROR", None, why))
        else:
            results.append(
                Result(prefix + n, "SKIPPED", None, "an earlier test crashed the engine")
            )
    return results, why


def _text(value: bytes | str | None) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")


def _crash(rc: int | None, stderr: str) -> str:
    if rc is None:
        return stderr
    tail = stderr.strip().splitlines()[-1:] if stderr.strip() else []
    what = f"crashed (signal {-rc})" if rc < 0 else f"exited with status {rc}"
    return f"the engine {what}" + (f": {tail[0].strip()[:200]}" if tail else "")


def run(root: Path, requested: str = "auto", out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if not root.is_dir():
        print(f"no policy folder at {root}", file=out)
        return 2
    try:
        snapshot = load_snapshot(root)
        engine = choose_engine(requested)
    except PolicyError as e:
        print(f"cannot test {root}: {e}", file=out)
        return 1
    files = {f: test_names(src) for f, src in sorted(snapshot.tests.items())}
    total = sum(len(n) for n in files.values())
    if total == 0:
        print(f"no test_* rules in {root}/**/*_test.rego", file=out)
        return 2
    print(f"engine: {engine}", file=out)
    counts = dict.fromkeys(("PASS", "FAIL", "ERROR", "SKIPPED"), 0)
    for test_file, names in files.items():
        if not names:
            continue
        source = snapshot.tests[test_file]
        package = m[1] if (m := _PKG_RX.search(source)) else "?"
        job = {
            "modules": snapshot.modules,
            "data": snapshot.data,
            "file": test_file,
            "source": source,
            "package": package,
            "names": names,
        }
        results, crash = run_file(engine, job)
        print(f"{test_file}:" + (f"  ({crash})" if crash else ""), file=out)
        for r in results:
            ms = f" ({r.ms:.1f}ms)" if r.ms is not None else ""
            detail = f": {r.detail}" if r.detail and r.status != "SKIPPED" else ""
            print(f"  {r.name}: {r.status}{ms}{detail}", file=out)
            counts[r.status] += 1
    print("-" * 80, file=out)
    for status, n in counts.items():
        if n or status == "PASS":
            print(f"{status}: {n}/{total}", file=out)
    return 0 if counts["PASS"] == total else 1


# -- the child ---------------------------------------------------------------------------------


def _emit(**event: Any) -> None:
    sys.stdout.write(MARK + json.dumps(event) + "\n")
    sys.stdout.flush()


def _child_regopy(job: dict[str, Any]) -> None:
    from regopy.rego_shared import (
        RegoError,
        rego_bundle_query_entrypoint,
        rego_free_output,
        rego_output_ok,
        rego_output_string,
    )

    from .rego import _new_interpreter, describe_rego_error

    sources = {**job["modules"], job["file"]: job["source"]}
    interp = _new_interpreter()
    base = job["package"].replace(".", "/")
    eps = [f"{base}/{n}" for n in job["names"]]
    try:
        interp.add_data_json(json.dumps(job["data"]))
        for name, src in sources.items():
            interp.add_module(name, src)
        bundle = interp.build(None, eps)
    except RegoError as e:
        detail = describe_rego_error(str(e), sources)
        for n in job["names"]:
            _emit(done=n, status="ERROR", detail=detail)
        return
    for n, ep in zip(job["names"], eps, strict=True):
        _emit(start=n)
        t0 = time.perf_counter()
        output = rego_bundle_query_entrypoint(interp._impl, bundle._impl, ep)
        try:
            ok = rego_output_ok(output)
            text = rego_output_string(output) if ok else _regopy_errors(output)
        finally:
            rego_free_output(output)
        ms = (time.perf_counter() - t0) * 1000
        if not ok or text.startswith("(error"):
            detail = text if not ok else describe_rego_error(text, sources)
            _emit(done=n, status="ERROR", ms=ms, detail=detail)
        elif text == "undefined":
            _emit(done=n, status="FAIL", ms=ms)
        else:
            try:
                value = json.loads(text)["expressions"][0]
            except (ValueError, KeyError, IndexError):
                _emit(done=n, status="ERROR", ms=ms, detail="the engine returned invalid JSON")
                continue
            _emit(done=n, status="PASS" if value is True else "FAIL", ms=ms)


def _regopy_errors(output: Any) -> str:
    """code: message of each error node (regopy's own Node.kind_name omits the NUL byte)."""
    import ctypes

    from regopy.rego_shared import rego, rego_node_get, rego_node_size, rego_output_node

    def text(size: Any, get: Any, node: Any, extra: int = 0) -> str:
        n = size(node) + extra
        buf = ctypes.create_string_buffer(n)
        get(node, buf, n)
        return buf.value.decode(errors="replace")

    def kind(node: Any) -> str:
        return text(rego.regoNodeTypeNameSize, rego.regoNodeTypeName, node, 1)

    found: list[str] = []

    def walk(node: Any) -> None:
        kids = [c for k in range(rego_node_size(node)) if (c := rego_node_get(node, k))]
        if kind(node) != "error":
            for c in kids:
                walk(c)
            return
        parts = {kind(c): text(rego.regoNodeValueSize, rego.regoNodeValue, c) for c in kids}
        code = next((v for k, v in parts.items() if k.endswith("errorcode")), "error")
        found.append(f"{code}: {parts.get('errormsg', '')}")

    walk(rego_output_node(output))
    return "; ".join(found) or "evaluation error"


def _child_opa(job: dict[str, Any]) -> None:
    bindings = importlib.import_module("opa_bindings")
    engine = bindings.OpaEngine()
    engine.print_handler = lambda message, location: print(
        f"{location}: {message}", file=sys.stderr
    )
    try:
        engine.add_data(job["data"])
        for name, src in {**job["modules"], job["file"]: job["source"]}.items():
            engine.add_policy(name, src)
    except bindings.OpaError as e:
        for n in job["names"]:
            _emit(done=n, status="ERROR", detail=str(e))
        return
    for n in job["names"]:
        _emit(start=n)
        t0 = time.perf_counter()
        try:
            rs = engine.eval_query(f"x := data.{job['package']}.{n}")
        except bindings.OpaError as e:
            ms = (time.perf_counter() - t0) * 1000
            _emit(done=n, status="ERROR", ms=ms, detail=str(e)[:500])
            continue
        ms = (time.perf_counter() - t0) * 1000
        _emit(done=n, status="PASS" if rs and rs[0].get("x") is True else "FAIL", ms=ms)


def child_main(engine: str) -> int:
    job = json.loads(sys.stdin.read())
    (_child_opa if engine == "opa" else _child_regopy)(job)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        sys.exit(child_main(sys.argv[2]))
    sys.exit(run(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("policies")))
