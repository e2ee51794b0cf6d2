"""Fixtures of the facts tests: OSV indexes built from the hand-made records."""

from __future__ import annotations

import pytest

from proxy.facts.osv import OsvIndex
from tests.unit.facts.osv_support import DATA, index_of


@pytest.fixture(scope="module")
def malicious() -> OsvIndex:
    return index_of(DATA / "openssf")


@pytest.fixture(scope="module")
def vulns() -> OsvIndex:
    return index_of(DATA / "export")
