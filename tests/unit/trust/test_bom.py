"""The AI-BOM builder: CycloneDX 1.6 that validates, one component per artifact with its purl,
sha256 and airlock properties; hub repos with a file sub-component each; filters and times."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from proxy.trust.bom import BomFilter, build_bom, hf_purl, parse_filter, parse_time, to_json
from proxy.trust.records import Served

W1, W2, F1, F2, F3 = ("1" * 64, "2" * 64, "3" * 64, "4" * 64, "5" * 64)
COMMIT = "0123456789abcdef0123456789abcdef01234567"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def _row(**kw: Any) -> Served:
    base: dict[str, Any] = dict(
        client="ci",
        ecosystem="pypi",
        project="tiny-lib",
        version="1.0",
        filename="tiny_lib-1.0-py3-none-any.whl",
        digest=W1,
        upstream="fake",
        policy_revision="rev1",
        extra={"decision": "allow"},
        at=T0,
    )
    return Served(**(base | kw))


def _hf(repo: str, repo_type: str, path: str, digest: str, **kw: Any) -> Served:
    return _row(
        ecosystem="hf",
        project=f"{repo_type}s/{repo}",
        version=COMMIT,
        filename=path,
        digest=digest,
        upstream="hf",
        scan_verdict="clean",
        extra={"repo_type": repo_type, "repo": repo, "decision": "allow"},
        **kw,
    )


ROWS = [
    _row(),
    _row(client="dev", at=T0 + 60),
    _row(
        client="dev",
        version="1.1",
        filename="tiny_lib-1.1-py3-none-any.whl",
        digest=W2,
        rules=("cooldown",),
        extra={"decision": "monitor-deny"},
    ),
    _hf("acme/tiny-model", "model", "config.json", F1),
    _hf("acme/tiny-model", "model", "model.safetensors", F2, client="dev"),
    _hf("acme/tiny-data", "dataset", "data/train.jsonl", F3),
]


def _doc(rows: list[Served], where: BomFilter | None = None) -> dict[str, Any]:
    text = to_json(build_bom(rows, where or BomFilter()))
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    doc: dict[str, Any] = json.loads(text)
    return doc


def _props(c: dict[str, Any], name: str) -> list[str]:
    return sorted(p["value"] for p in c.get("properties", []) if p["name"] == f"airlock:{name}")


def test_bom_validates_and_lists_each_artifact() -> None:
    doc = _doc(ROWS, BomFilter(client=None, since=T0 - 1))
    assert (doc["bomFormat"], doc["specVersion"]) == ("CycloneDX", "1.6")
    assert doc["serialNumber"].startswith("urn:uuid:")
    tool = doc["metadata"]["tools"]["components"][0]
    assert tool["name"] == "airlock"
    assert tool["version"]
    assert _props(doc["metadata"], "filter:since") == ["2025-12-31T23:59:59.000Z"]
    by_purl = {c["purl"]: c for c in doc["components"]}
    assert set(by_purl) == {
        "pkg:pypi/tiny-lib@1.0?file_name=tiny_lib-1.0-py3-none-any.whl",
        "pkg:pypi/tiny-lib@1.1?file_name=tiny_lib-1.1-py3-none-any.whl",
        f"pkg:huggingface/acme/tiny-model@{COMMIT}",
        f"pkg:huggingface/acme/tiny-data@{COMMIT}?repository_url=https://huggingface.co/datasets",
    }
    lib = by_purl["pkg:pypi/tiny-lib@1.0?file_name=tiny_lib-1.0-py3-none-any.whl"]
    assert lib["type"] == "library"
    assert (lib["name"], lib["version"]) == ("tiny-lib", "1.0")
    assert lib["hashes"] == [{"alg": "SHA-256", "content": W1}]
    assert _props(lib, "client") == ["ci", "dev"]
    assert _props(lib, "decision") == ["allow"]
    assert _props(lib, "policy_revision") == ["rev1"]
    assert _props(lib, "first_served") == ["2026-01-01T00:00:00.000Z"]
    assert _props(lib, "last_served") == ["2026-01-01T00:01:00.000Z"]
    assert _props(lib, "downloads") == ["2"]
    new = by_purl["pkg:pypi/tiny-lib@1.1?file_name=tiny_lib-1.1-py3-none-any.whl"]
    assert (_props(new, "rule"), _props(new, "decision")) == (["cooldown"], ["monitor-deny"])

    model = by_purl[f"pkg:huggingface/acme/tiny-model@{COMMIT}"]
    assert model["type"] == "machine-learning-model"
    assert (model["group"], model["name"], model["version"]) == ("acme", "tiny-model", COMMIT)
    assert _props(model, "client") == ["ci", "dev"]
    assert _props(model, "repo_type") == ["model"]
    files = {f["name"]: f for f in model["components"]}
    assert set(files) == {"config.json", "model.safetensors"}
    assert files["model.safetensors"]["hashes"] == [{"alg": "SHA-256", "content": F2}]
    assert files["model.safetensors"]["type"] == "file"
    assert _props(files["model.safetensors"], "client") == ["dev"]
    assert _props(files["config.json"], "scan_verdict") == ["clean"]
    data = next(c for c in doc["components"] if c["name"] == "tiny-data")
    assert data["type"] == "data"


def test_empty_bom_validates() -> None:
    assert "components" not in _doc([], BomFilter(client="nobody"))


def test_purls_for_legacy_and_space_repos() -> None:
    assert hf_purl("model", "gpt2", "ABC").to_string() == "pkg:huggingface/gpt2@abc"
    assert (
        hf_purl("space", "acme/app", None).to_string()
        == "pkg:huggingface/acme/app?repository_url=https://huggingface.co/spaces"
    )


def test_same_file_name_with_new_content_gets_its_own_component() -> None:
    doc = _doc([_row(), _row(digest=W2, at=T0 + 5)])
    refs = sorted(c["bom-ref"] for c in doc["components"])
    assert len(refs) == 2
    assert refs[1].endswith("#sha256=" + W2)


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2026-01-01", T0),
        ("2026-01-01T00:00:00Z", T0),
        ("2026-01-01T02:00:00+02:00", T0),
        ("2026-01-01T00:00:30", T0 + 30),
    ],
)
def test_parse_time(text: str, epoch: float) -> None:
    assert parse_time(text) == epoch


def test_parse_filter_rejects_bad_times() -> None:
    assert parse_filter({"client": " ci ", "since": "", "until": "2026-01-01"}) == BomFilter(
        "ci", None, T0
    )
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_filter({"since": "yesterday"})


def test_timestamp_is_set() -> None:
    now = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
    doc = json.loads(to_json(build_bom(ROWS[:1], BomFilter(), now)))
    assert doc["metadata"]["timestamp"].startswith("2026-02-03T04:05:06")
