"""The OSV list file and the `airlock osv` verbs."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path

import pytest

from proxy.facts.osv import OsvIndex, dump_osv, osv_document
from proxy.facts.osv_import import import_tree
from tests.unit.facts.osv_support import DATA, ids, run


def test_dump_is_one_project_per_line_and_round_trips() -> None:
    records = import_tree(DATA / "openssf").records
    doc = osv_document(records, source="s", imported=dt.date(2026, 1, 2))
    text = dump_osv(doc)
    assert json.loads(text) == doc
    assert len(text.splitlines()) == 4 + len(records) + 2
    assert dump_osv(osv_document({}, source="s", imported=dt.date(2026, 1, 2))).endswith(
        '"records": {}\n}\n'
    )


def test_cli_import_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "lists" / "osv.json"
    argv = ["osv", "import", str(DATA / "openssf"), "--out", str(out), "--source", "OpenSSF test"]
    before = dt.datetime.now(dt.UTC).date()
    assert run(argv) == 0
    after = dt.datetime.now(dt.UTC).date()  # the run may cross midnight UTC
    printed = capsys.readouterr().out
    assert "read 7 files: kept 5 malicious and 0 vulnerability records for 5 projects" in printed
    assert "skipped 1 withdrawn, 1 without a PyPI package" in printed
    assert out.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in out.parent.iterdir()] == ["osv.json"]  # no temp file left
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["source"] == "OpenSSF test"
    assert before <= dt.date.fromisoformat(doc["imported"]) <= after
    index = OsvIndex.load(out)
    assert ids(index.matches("Colour_Ama", "0.1.6")) == ["MAL-2024-9002"]

    # a re-import replaces the file
    assert run(["osv", "import", str(DATA / "export"), "--out", str(out)]) == 0
    assert "kept 1 malicious and 4 vulnerability records for 5 projects" in capsys.readouterr().out
    index = OsvIndex.load(out)
    assert index.matches("torchtriton", "1.0") == []
    assert "export" in index.source

    assert run(["osv", "check", "urllib3", "1.25.3", "--lists", str(out.parent)]) == 1
    printed = capsys.readouterr().out
    assert "PYSEC-2099-11 (CVE-2099-0011, GHSA-5555-6666-7777) vulnerability CRITICAL" in printed
    assert run(["osv", "check", "urllib3", "1.26.5", "--lists", str(out)]) == 0
    assert "no OSV records" in capsys.readouterr().out
    assert run(["osv", "check", "pyfiglet-color", "--lists", str(out)]) == 1
    assert "[all versions]" in capsys.readouterr().out
    assert run(["osv", "check", "x", "1", "--lists", str(tmp_path / "missing.json")]) == 2


def test_cli_import_refuses_invalid_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "osv.json"
    assert run(["osv", "import", str(DATA / "invalid"), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "truncated.json: not JSON" in err
    assert "no-id.json: not an OSV record" in err
    assert not out.exists()
    argv = ["osv", "import", str(DATA / "invalid"), "--out", str(out), "--skip-invalid"]
    assert run(argv) == 0
    assert "2 invalid" in capsys.readouterr().out
    assert ids(OsvIndex.load(out).matches("urllib3", "1.0")) == ["PYSEC-2099-11"]
    assert run(["osv", "import", str(tmp_path / "nowhere"), "--out", str(out)]) == 2


def test_cli_import_from_zip_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((DATA / "export").glob("*.json")):
            zf.write(path, path.name)
    out = tmp_path / "osv.json"
    assert run(["osv", "import", str(archive), "--out", str(out)]) == 0
    assert "kept 1 malicious and 4 vulnerability records" in capsys.readouterr().out
    assert ids(OsvIndex.load(out).matches("jinja2", "3.2.1")) == ["GHSA-2222-3333-4444"]


def test_duplicate_ids_keep_the_newest(tmp_path: Path) -> None:
    record = json.loads((DATA / "export" / "GHSA-2222-3333-4444.json").read_text("utf-8"))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    newer = {**record, "modified": "2026-01-01T00:00:00Z", "summary": "newer"}
    (tmp_path / "a" / "GHSA-2222-3333-4444.json").write_text(json.dumps(newer), "utf-8")
    (tmp_path / "b" / "GHSA-2222-3333-4444.json").write_text(json.dumps(record), "utf-8")
    result = import_tree(tmp_path)
    assert result.stats.duplicates == 1
    assert [e["summary"] for e in result.records["jinja2"]] == ["newer"]
