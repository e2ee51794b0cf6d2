"""OSV facts: import of hand-built OSV records (OpenSSF malicious-packages layout and an OSV
vulnerability export), version matching, severity extraction, the list file and the CLI verbs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from proxy.facts.osv import OsvError, OsvIndex, OsvMatch, osv_document
from proxy.facts.osv_import import convert_record, events_to_ranges, import_tree
from tests.unit.facts.osv_support import DATA, REPO, ids

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


# -- CLI --------------------------------------------------------------------------------------
