"""OSV facts: import of hand-built OSV records (OpenSSF malicious-packages layout and an OSV
vulnerability export), version matching, severity extraction, the list file and the CLI verbs."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from proxy.facts.osv import OsvError, OsvIndex, OsvMatch, dump_osv, osv_document
from proxy.facts.osv_cli import register
from proxy.facts.osv_cvss import band, base_score, roundup, severity_of_vector
from proxy.facts.osv_import import convert_record, events_to_ranges, import_tree, severity_of

DATA = Path(__file__).resolve().parents[2] / "data" / "osv"
REPO = Path(__file__).resolve().parents[3]


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="airlock")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result = args.func(args)
    assert isinstance(result, int)
    return result


def index_of(root: Path) -> OsvIndex:
    records = import_tree(root).records
    return OsvIndex.from_document(
        osv_document(records, source="test", imported=dt.date(2026, 1, 2))
    )


@pytest.fixture(scope="module")
def malicious() -> OsvIndex:
    return index_of(DATA / "openssf")


@pytest.fixture(scope="module")
def vulns() -> OsvIndex:
    return index_of(DATA / "export")


def ids(matches: list[OsvMatch]) -> list[str]:
    return [m.id for m in matches]


# -- import: what is kept and skipped ---------------------------------------------------------


def test_openssf_layout_import_counts() -> None:
    result = import_tree(DATA / "openssf")
    stats = result.stats
    assert stats.files == 7
    assert stats.malicious == 5
    assert stats.vulnerabilities == 0
    assert stats.withdrawn == 1  # osv/withdrawn/pypi/requests-helper
    assert stats.other_ecosystem == 1  # osv/malicious/npm/left-pad-evil
    assert stats.invalid == []
    assert sorted(result.records) == [
        "colour-ama",
        "litellm",
        "no-version-info",
        "oddver",
        "torchtriton",
    ]
    assert "requests-helper" not in result.records
    assert "left-pad-evil" not in result.records


def test_export_import_counts_and_entries() -> None:
    result = import_tree(DATA / "export")
    stats = result.stats
    assert (stats.files, stats.malicious, stats.vulnerabilities) == (8, 1, 4)
    assert stats.withdrawn == 1  # GHSA-qqqq-rrrr-vvvv has "withdrawn" set
    assert stats.other_ecosystem == 1  # the Go advisory
    assert stats.no_version_info == 1  # PYSEC-2099-22 has only a GIT range
    assert ids_of(result.records["jinja2"]) == ["GHSA-2222-3333-4444"]  # withdrawn one dropped
    (jinja,) = result.records["jinja2"]
    assert jinja["aliases"] == ["CVE-2099-0001"]
    assert jinja["ranges"] == [
        {"introduced": "0", "fixed": "3.1.5", "last_affected": None},
        {"introduced": "3.2.0", "fixed": None, "last_affected": "3.2.1"},
    ]
    (urllib3,) = result.records["urllib3"]
    assert urllib3["aliases"] == ["CVE-2099-0011", "GHSA-5555-6666-7777"]
    # no summary in the record: the first line of the details stands in
    assert urllib3["summary"] == "Hand-built test fixture in the PyPA advisory-database format."


def ids_of(entries: list[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in entries]


def test_non_pypi_packages_of_a_mixed_record_are_ignored(vulns: OsvIndex) -> None:
    assert ids(vulns.matches("template-bridge", "2.0.1")) == ["GHSA-8888-9999-cccc"]
    assert vulns.matches("template-bridge", "1.0.0") == []  # the npm range does not apply
    assert vulns.matches("example.invalid/mod", "1.0.0") == []


def test_kind_detection() -> None:
    base: dict[str, Any] = {
        "affected": [{"package": {"ecosystem": "PyPI", "name": "x"}, "versions": ["1"]}]
    }

    def kind(doc: dict[str, Any], **kw: bool) -> str:
        result = convert_record({**base, **doc}, **kw)
        assert result is not None
        return str(result[0][1]["kind"])

    assert kind({"id": "MAL-2024-1"}) == "malicious"
    assert kind({"id": "GHSA-2222-3333-4444"}, under_malicious=True) == "malicious"
    assert kind({"id": "X-1", "database_specific": {"malicious-packages-origins": []}}) == (
        "malicious"
    )
    assert kind({"id": "GHSA-2222-3333-4444", "summary": "Malicious code in x (PyPI)"}) == (
        "malicious"
    )
    assert kind({"id": "GHSA-2222-3333-4444", "summary": "Code injection in x"}) == (
        "vulnerability"
    )
    assert convert_record({"id": "X-2", "affected": [{"package": {"ecosystem": "npm"}}]}) is None


# -- matching ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "version", ["0", "0.0.1.dev0", "1.0", "2.0.0rc1", "9999!1.0", "1.0+local", "not-a-version"]
)
def test_malicious_from_zero_matches_every_version(malicious: OsvIndex, version: str) -> None:
    (match,) = malicious.matches("torchtriton", version)
    assert match.id == "MAL-2022-9001"
    assert match.kind == "malicious"
    assert match.severity is None
    assert match.all_versions


def test_malicious_origin_ranges_are_not_read(malicious: OsvIndex) -> None:
    # the OpenSSF "malicious-packages-origins" copy carries a range ending at 9.9: not used
    assert ids(malicious.matches("torchtriton", "10.0")) == ["MAL-2022-9001"]


def test_name_canonicalisation(malicious: OsvIndex) -> None:
    for spelling in ("Colour.Ama", "colour_ama", "COLOUR-AMA", "colour--ama"):
        assert ids(malicious.matches(spelling, "0.1.6")) == ["MAL-2024-9002"]


def test_explicit_versions_only(malicious: OsvIndex) -> None:
    assert ids(malicious.matches("colour-ama", "0.1.6.0")) == ["MAL-2024-9002"]  # PEP 440 equal
    assert malicious.matches("colour-ama", "0.1.7") == []
    assert malicious.matches("colour-ama", "0.1.5") == []
    assert malicious.matches("colour-ama", "garbage") == []
    assert ids(malicious.matches("litellm", "1.82.7")) == ["MAL-2026-9003"]
    assert ids(malicious.matches("litellm", "1.82.8")) == ["MAL-2026-9003"]
    assert malicious.matches("litellm", "1.82.6") == []
    assert malicious.matches("litellm", "1.82.9") == []
    (match,) = malicious.matches("litellm", None)  # no version: every record of the project
    assert not match.all_versions


def test_malicious_without_version_information_fails_closed(malicious: OsvIndex) -> None:
    for version in ("0.1", "5.0", "weird"):
        assert ids(malicious.matches("no-version-info", version)) == ["MAL-2025-9006"]


def test_malicious_with_unparseable_bound_fails_closed(malicious: OsvIndex) -> None:
    for version in ("build-7", "build-9", "1.0"):
        assert ids(malicious.matches("oddver", version)) == ["MAL-2025-9007"]


@pytest.mark.parametrize(
    ("version", "hit"),
    [
        ("0.1", True),
        ("2.11.3", True),
        ("3.1.4", True),
        ("3.1.5rc1", True),  # a pre-release of the fixed version is still affected
        ("3.1.5", False),  # fixed: exclusive
        ("3.1.6", False),
        ("3.2.0", True),  # second range, introduced: inclusive
        ("3.2.1", True),  # last_affected: inclusive
        ("3.2.1.post1", False),
        ("3.2.2", False),
        ("not-a-version", False),  # vulnerabilities match unparseable versions only by list
    ],
)
def test_vulnerability_ranges(vulns: OsvIndex, version: str, hit: bool) -> None:
    assert bool(vulns.matches("jinja2", version)) is hit


@pytest.mark.parametrize(
    ("version", "hit"),
    [
        ("1.24.1", True),
        ("1.24.2", False),
        ("1.24.3", False),  # only right if the events were sorted before pairing
        ("1.25.0", True),
        ("1.26.4", True),
        ("1.26.5", False),
        ("2.0", False),
    ],
)
def test_events_of_one_range_are_sorted(vulns: OsvIndex, version: str, hit: bool) -> None:
    assert bool(vulns.matches("urllib3", version)) is hit


def test_explicit_versions_list_with_unparseable_entries() -> None:
    doc = {
        "id": "PYSEC-2099-50",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "legacy"},
                "versions": ["2004d", "1.0"],
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "5.0"}]}],
            }
        ],
    }
    converted = convert_record(doc)
    assert converted is not None
    index = OsvIndex.from_document(
        osv_document(dict([(n, [e]) for n, e in converted]), source="t", imported=dt.date.today())
    )
    assert ids(index.matches("legacy", "2004d")) == ["PYSEC-2099-50"]
    assert ids(index.matches("legacy", "1.0.0")) == ["PYSEC-2099-50"]
    assert ids(index.matches("legacy", "7")) == ["PYSEC-2099-50"]  # introduced only: all later
    assert index.matches("legacy", "4.9") == []
    assert index.matches("legacy", "2004e") == []  # not PEP 440: only the list applies


def test_events_to_ranges() -> None:
    assert events_to_ranges([{"introduced": "0"}]) == [
        {"introduced": "0", "fixed": None, "last_affected": None}
    ]
    assert events_to_ranges(
        [{"introduced": "2.0"}, {"fixed": "2.5"}, {"introduced": "0"}, {"last_affected": "1.9"}]
    ) == [
        {"introduced": "0", "fixed": None, "last_affected": "1.9"},
        {"introduced": "2.0", "fixed": "2.5", "last_affected": None},
    ]
    assert events_to_ranges([{"fixed": "1.0"}]) == []  # nothing introduced: nothing affected
    assert events_to_ranges([{"introduced": "1.0"}, {"limit": "2.0"}]) == [
        {"introduced": "1.0", "fixed": None, "last_affected": None}
    ]
    # a version that does not parse: the written order is kept
    assert events_to_ranges([{"introduced": "b"}, {"fixed": "a"}]) == [
        {"introduced": "b", "fixed": "a", "last_affected": None}
    ]


def test_unknown_project_and_fast_path(vulns: OsvIndex) -> None:
    assert vulns.matches("requests", "2.0") == []
    assert vulns.matches("requests", None) == []
    assert vulns.project_count == 5
    assert vulns.record_count == 5


# -- severity ---------------------------------------------------------------------------------


def test_severity_extraction(vulns: OsvIndex) -> None:
    # database_specific.severity wins over the vector (which alone would give LOW, 3.6)
    assert vulns.matches("jinja2", "1.0")[0].severity == "MODERATE"
    assert vulns.matches("urllib3", "1.24.1")[0].severity == "CRITICAL"  # CVSS 3.1 vector: 9.8
    assert vulns.matches("template-bridge", "2.0.0")[0].severity == "MODERATE"  # 6.1; v4 ignored
    assert vulns.matches("v4only", "1.0")[0].severity == "UNKNOWN"  # only a CVSS v4 vector
    assert vulns.matches("pyfiglet-color", "1.0")[0].severity is None  # malicious


def test_severity_labels_and_highest_vector() -> None:
    assert severity_of({"database_specific": {"severity": "medium"}}) == "MODERATE"
    assert severity_of({"database_specific": {"severity": "bogus"}}) == "UNKNOWN"
    assert severity_of({}) == "UNKNOWN"
    low = "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:N/A:N"
    high = "CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H"
    doc = {
        "severity": [{"type": "CVSS_V3", "score": low}],
        "affected": [{"severity": [{"type": "CVSS_V3", "score": high}]}],
    }
    assert severity_of(doc) == "HIGH"


@pytest.mark.parametrize(
    ("vector", "score"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 8.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
        ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4),
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.5),
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:N/A:N", 3.7),
        ("CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:L/I:L/A:N", 3.6),
        ("CVSS:3.0/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C", 9.8),  # temporal ignored
    ],
)
def test_cvss_v3_base_scores(vector: str, score: float) -> None:
    assert base_score(vector) == score


@pytest.mark.parametrize(
    "vector",
    [
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
        "AV:N/AC:L/Au:N/C:P/I:P/A:P",  # CVSS v2
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",  # A missing
        "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "",
    ],
)
def test_cvss_rejects_other_vectors(vector: str) -> None:
    assert base_score(vector) is None
    assert severity_of_vector(vector) is None


def test_cvss_roundup_and_bands() -> None:
    assert roundup(4.02) == 4.1
    assert roundup(4.0) == 4.0
    assert roundup(4.000000000000001) == 4.0  # float noise does not bump the score
    assert [band(s) for s in (0.0, 3.9, 4.0, 6.9, 7.0, 8.9, 9.0, 10.0)] == [
        "LOW", "LOW", "MODERATE", "MODERATE", "HIGH", "HIGH", "CRITICAL", "CRITICAL",
    ]  # fmt: skip


# -- list file --------------------------------------------------------------------------------


def test_match_to_input() -> None:
    match = OsvMatch("GHSA-2222-3333-4444", "vulnerability", "HIGH", "s", ("CVE-2099-1",))
    assert match.to_input() == {
        "id": "GHSA-2222-3333-4444",
        "kind": "vulnerability",
        "severity": "HIGH",
        "summary": "s",
        "aliases": ["CVE-2099-1"],
        "all_versions": False,
    }
    json.dumps(match.to_input())


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"source": "s", "imported": "2026-13-01", "records": {}},
        {"source": "s", "imported": "2026-01-01", "records": []},
        {"source": "s", "imported": "2026-01-01", "records": {"x": [{"id": "A", "kind": "bad"}]}},
        {
            "source": "s",
            "imported": "2026-01-01",
            "records": {"x": [{"id": "A", "kind": "vulnerability", "severity": "SEVERE"}]},
        },
        {
            "source": "s",
            "imported": "2026-01-01",
            "records": {
                "x": [
                    {
                        "id": "A",
                        "kind": "vulnerability",
                        "ranges": [{"introduced": "0", "fixed": "1", "last_affected": "2"}],
                    }
                ]
            },
        },
    ],
)
def test_load_rejects_malformed_documents(doc: Any, tmp_path: Path) -> None:
    path = tmp_path / "osv.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(OsvError, match=str(path)):
        OsvIndex.load(path)


def test_shipped_default_list_is_valid_and_empty() -> None:
    index = OsvIndex.load(REPO / "policies" / "lists" / "osv.json")
    assert index.record_count == 0
    assert index.matches("torchtriton", "1.0") == []


def test_dump_is_one_project_per_line_and_round_trips() -> None:
    records = import_tree(DATA / "openssf").records
    doc = osv_document(records, source="s", imported=dt.date(2026, 1, 2))
    text = dump_osv(doc)
    assert json.loads(text) == doc
    assert len(text.splitlines()) == 4 + len(records) + 2
    assert dump_osv(osv_document({}, source="s", imported=dt.date(2026, 1, 2))).endswith(
        '"records": {}\n}\n'
    )


# -- CLI --------------------------------------------------------------------------------------


def test_cli_import_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "lists" / "osv.json"
    argv = ["osv", "import", str(DATA / "openssf"), "--out", str(out), "--source", "OpenSSF test"]
    assert run(argv) == 0
    printed = capsys.readouterr().out
    assert "read 7 files: kept 5 malicious and 0 vulnerability records for 5 projects" in printed
    assert "skipped 1 withdrawn, 1 without a PyPI package" in printed
    assert out.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in out.parent.iterdir()] == ["osv.json"]  # no temp file left
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["source"] == "OpenSSF test"
    assert doc["imported"] == dt.datetime.now(dt.UTC).date().isoformat()
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
