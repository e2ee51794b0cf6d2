"""Namespace-reuse findings: id, creation time, author, and where a name redirects."""

from __future__ import annotations

from proxy.hf.identity import findings
from proxy.hf.model import Identity, RepoRef

REF = RepoRef("model", "acme/tiny")
APPROVED = Identity("65e2f6a0" + "0" * 16, "acme", "2024-03-02T10:00:00.000Z", "acme/tiny")


def kinds(recorded: Identity, current: Identity, ref: RepoRef = REF) -> list[str]:
    return [f.kind for f in findings(ref, recorded, current)]


def test_same_identity__no_findings() -> None:
    assert kinds(APPROVED, APPROVED) == []


def test_recreated_repo__new_id_and_newer_creation() -> None:
    fresh = Identity("67000000" + "1" * 16, "acme", "2025-04-01T00:00:00.000Z", "acme/tiny")
    found = findings(REF, APPROVED, fresh)
    assert [f.kind for f in found] == ["id-changed", "recreated"]
    assert "acme/tiny is a different repository" in found[0].message


def test_author_change() -> None:
    other = Identity(APPROVED.object_id, "mallory", APPROVED.created_at, "acme/tiny")
    assert kinds(APPROVED, other) == ["author-changed"]


def test_redirect_vanished_and_changed() -> None:
    old = RepoRef("model", "acme/old-tiny")
    via_redirect = Identity(APPROVED.object_id, "acme", APPROVED.created_at, "acme/tiny")
    taken_over = Identity(APPROVED.object_id, "acme", APPROVED.created_at, "acme/old-tiny")
    assert kinds(via_redirect, taken_over, old) == ["redirect-vanished"]
    elsewhere = Identity(APPROVED.object_id, "acme", APPROVED.created_at, "other/tiny")
    assert kinds(via_redirect, elsewhere, old) == ["redirect-changed"]


def test_case_only_canonicalisation_is_not_a_redirect_change() -> None:
    upper = RepoRef("model", "ACME/TINY")
    assert kinds(APPROVED, APPROVED, upper) == []


def test_missing_fields_are_not_compared() -> None:
    partial = Identity(None, None, None, "acme/tiny")
    assert kinds(APPROVED, partial) == []
