"""``airlock policy test`` and ``airlock policy eval``, through the real CLI entry point."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.cli import main
from proxy.policy import testing
from tests.fakes.opa_server import OpaProcess, opa_process
from tests.require import require_golib

REPO = Path(__file__).resolve().parents[3]
ENGINES = ["regopy", "opa"]
MODULE = """package airlock.pypi

import rego.v1

ok if input.n in ["q"]

decision := {"allow": true}
"""
MIXED = """package airlock.b_test

import rego.v1

test_pass if true

test_fail if false

test_error if {
\tto_number(input.x) > 1 with input.x as "abc"
}

test_undefined if input.nothing
"""
# `with input as …` + a built-in: regopy aborts (a C++ exception) while building this file.
CRASHING = """package airlock.a_test

import rego.v1

import data.airlock.pypi

test_before if true

test_crash if {
\tpypi.ok with input as {"n": "q"}
}
"""


def _tree(tmp_path: Path, tests: dict[str, str]) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "pypi.rego").write_text(MODULE)
    for name, src in tests.items():
        (root / name).write_text(src)
    return root


def _statuses(out: str) -> dict[str, str]:
    return dict(re.findall(r"^  data\.airlock\.\w+\.(test_\w+): ([A-Z]+)", out, re.M))


@pytest.mark.parametrize("engine", ENGINES)
def test_shipped_policy_tests_pass(engine: str, capsys: pytest.CaptureFixture[str]) -> None:
    if engine == "opa":
        require_golib()
    rc = main(["policy", "test", str(REPO / "policies"), "--engine", engine])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert f"engine: {engine}" in out
    m = re.search(r"^PASS: (\d+)/(\d+)$", out, re.M)
    assert m is not None
    assert m[1] == m[2]
    assert int(m[1]) >= 6


@pytest.mark.parametrize("engine", ENGINES)
def test_pass_fail_and_error_are_reported(
    engine: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if engine == "opa":
        require_golib()
    rc = main(["policy", "test", str(_tree(tmp_path, {"b_test.rego": MIXED})), "--engine", engine])
    out = capsys.readouterr().out
    assert rc == 1
    assert _statuses(out) == {
        "test_pass": "PASS",
        "test_fail": "FAIL",
        "test_error": "ERROR",
        "test_undefined": "FAIL",
    }
    assert "eval_builtin_error" in out
    assert re.search(r"^PASS: 1/4$", out, re.M)
    assert re.search(r"^FAIL: 2/4$", out, re.M)
    assert re.search(r"^ERROR: 1/4$", out, re.M)


def test_an_engine_crash_is_contained_to_its_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _tree(tmp_path, {"a_test.rego": CRASHING, "b_test.rego": MIXED})
    assert main(["policy", "test", str(root), "--engine", "regopy"]) == 1
    out = capsys.readouterr().out
    got = _statuses(out)
    assert got["test_before"] == got["test_crash"] == "ERROR"
    assert "the engine crashed (signal" in out
    assert got["test_pass"] == "PASS"  # the next file still ran


def test_real_opa_runs_what_regopy_cannot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_golib()
    root = _tree(tmp_path, {"a_test.rego": CRASHING})
    assert main(["policy", "test", str(root), "--engine", "opa"]) == 0
    assert re.search(r"^PASS: 2/2$", capsys.readouterr().out, re.M)


def test_a_crash_mid_file_skips_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    """The child died (SIGSEGV) while running test_b: a done, b error, c skipped."""
    events = [{"start": "test_a"}, {"done": "test_a", "status": "PASS"}, {"start": "test_b"}]
    stdout = "".join(testing.MARK + json.dumps(e) + "\n" for e in events)

    def fake_run(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess([], -11, stdout, "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    job = {"package": "p", "names": ["test_a", "test_b", "test_c"]}
    results, crash = testing.run_file("regopy", job)
    assert [(r.name, r.status) for r in results] == [
        ("data.p.test_a", "PASS"),
        ("data.p.test_b", "ERROR"),
        ("data.p.test_c", "SKIPPED"),
    ]
    assert crash == "the engine crashed (signal 11)"


def test_no_tests_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "test", str(_tree(tmp_path, {}))]) == 2
    assert main(["policy", "test", str(tmp_path / "missing")]) == 2
    assert "no test_* rules" in capsys.readouterr().out


# -- eval ----------------------------------------------------------------------------------------


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    root = tmp_path / "policies"
    shutil.copytree(REPO / "policies", root)
    (root / "data" / "pypi.json").write_text(
        json.dumps({"deny_projects": {"evil-pkg": "known malware"}})
    )
    return root


def _config(tmp_path: Path, policies: Path, extra: str = "") -> Path:
    config = tmp_path / "airlock.toml"
    config.write_text(f'[policy]\npath = "{policies}"\n{extra}')
    return config


def _subject(tmp_path: Path, project: str) -> Path:
    f = tmp_path / f"{project}.json"
    wheel = {
        "filename": f"{project.replace('-', '_')}-1.0-py3-none-any.whl",
        "version": "1.0",
        "kind": "wheel",
        "hashes": {"sha256": "0" * 64},
        "upload_time_ns": 1_577_836_800 * 10**9,
    }
    f.write_text(json.dumps({"action": "page", "project": project, "files": [wheel]}))
    return f


@pytest.fixture(scope="module")
def opa_server() -> Iterator[OpaProcess]:
    require_golib()
    with opa_process() as server:
        yield server


def test_eval_prints_the_decision(
    tmp_path: Path, policies: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_golib()  # "auto" picks the in-process OPA where it is installed
    config = str(_config(tmp_path, policies))
    assert (
        main(["policy", "eval", "--config", config, "--input", str(_subject(tmp_path, "ok"))]) == 0
    )
    allowed = json.loads(capsys.readouterr().out)
    assert (allowed["allow"], allowed["engine"], allowed["error"]) == (True, "opa-embedded", None)
    assert re.fullmatch(r"[0-9a-f]{64}", allowed["revision"])

    args = ["policy", "eval", "--config", config, "--input", str(_subject(tmp_path, "evil-pkg"))]
    assert main(args) == 1
    denied = json.loads(capsys.readouterr().out)
    assert denied["allow"] is False
    assert [r["rule"] for r in denied["reasons"]] == ["deny-list"]
    assert "known malware" in denied["reasons"][0]["message"]


def test_eval_through_an_opa_server(
    tmp_path: Path, policies: Path, opa_server: OpaProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    opa_server.reset()
    config = _config(tmp_path, policies, f'engine = "opa"\nopa_url = "{opa_server.url}"\n')
    args = ["policy", "eval", "--config", str(config), "--input"]
    assert main([*args, str(_subject(tmp_path, "evil-pkg"))]) == 1
    denied = json.loads(capsys.readouterr().out)
    assert (denied["allow"], denied["engine"]) == (False, "opa-http")
    assert [r["rule"] for r in denied["reasons"]] == ["deny-list"]


def test_eval_rejects_a_bad_subject(
    tmp_path: Path, policies: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"files": []}')
    config = str(_config(tmp_path, policies))
    assert main(["policy", "eval", "--config", config, "--input", str(bad)]) == 2
    assert "cannot read a subject" in capsys.readouterr().err
