"""Shared fixtures and helpers of the OSV tests."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from proxy.facts.osv import OsvIndex, OsvMatch, osv_document
from proxy.facts.osv_cli import register
from proxy.facts.osv_import import import_tree

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


def ids(matches: list[OsvMatch]) -> list[str]:
    return [m.id for m in matches]
