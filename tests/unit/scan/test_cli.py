"""``airlock scan``: output lines, ``--json``, extra allow-list entries and exit codes."""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import pytest

from proxy.scan.cli import register
from tests.unit.scan.corpus import call, malicious_pickle, write


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="airlock")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    status: int = args.func(args, None)
    return status


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "clean": write(tmp_path / "clean.pkl", pickle.dumps({"a": [1, 2]})),
        "evil": write(tmp_path / "evil.bin", malicious_pickle(2)),
        "custom": write(tmp_path / "custom.pkl", call("mypkg", "Config")),
    }


def test_clean_files_exit_zero_silently(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["scan", str(files["clean"])]) == 0
    assert capsys.readouterr().out == ""


def test_findings_print_one_line_each_and_exit_one(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["scan", str(files["clean"]), str(files["evil"])]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{files['evil']}: pickle-import: pickle imports posix.system (not on the allow-list)"
    ]


def test_location_is_shown_in_brackets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import zipfile

    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("inner/x.pkl", malicious_pickle(4))
    assert run(["scan", str(path)]) == 1
    assert capsys.readouterr().out.rstrip().endswith("[inner/x.pkl]")


def test_json_output(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["scan", "--json", str(files["clean"]), str(files["evil"])]) == 1
    records = json.loads(capsys.readouterr().out)
    assert [(r["format"], r["clean"]) for r in records] == [("pickle", True), ("pickle", False)]
    assert records[1]["findings"] == [
        {
            "rule": "pickle-import",
            "message": "pickle imports posix.system (not on the allow-list)",
            "location": "",
        }
    ]
    assert records[0]["scanner_version"]
    assert records[0]["bytes_scanned"] > 0


def test_extra_allowed_globals(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["scan", str(files["custom"])]) == 1
    assert run(["scan", "--allow", "mypkg.Config", str(files["custom"])]) == 0
    extra = write(tmp_path / "extra.json", json.dumps({"globals": ["mypkg.*"]}).encode())
    assert run(["scan", "--allowlist", str(extra), str(files["custom"])]) == 0
    capsys.readouterr()


def test_usage_errors_and_unreadable_files_exit_two(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["scan", str(tmp_path / "missing.bin"), str(files["evil"])]) == 2
    err = capsys.readouterr().err
    assert "cannot read" in err
    assert "missing.bin" in err
    assert run(["scan", str(tmp_path)]) == 2
    assert run(["scan", "--allow", "not a name", str(files["clean"])]) == 2
    with pytest.raises(SystemExit) as exc:
        run(["scan"])
    assert exc.value.code == 2
