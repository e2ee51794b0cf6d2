"""``airlock bom [--client ID] [--since T] [--until T] [-o FILE]``: the AI-BOM as CycloneDX JSON.

Reads the served log in the store's metadata database (safe while the proxy runs: SQLite WAL).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from mirror_store.metadata import SqliteMetadata

from ..progress import Progress, is_terminal
from ..settings import Settings
from .bom import build_bom, parse_filter, to_json
from .records import TrustRecords


def _bom(args: argparse.Namespace, settings: Settings) -> int:
    try:
        where = parse_filter({"client": args.client, "since": args.since, "until": args.until})
    except ValueError as e:
        print(f"airlock bom: {e}", file=sys.stderr)
        return 2
    db = settings.store.path / "metadata.sqlite3"
    if not db.exists():
        print(f"airlock bom: no metadata database at {db} (check store.path)", file=sys.stderr)
        return 2

    async def go() -> tuple[str, str]:
        meta = SqliteMetadata(db)
        try:
            records = await asyncio.to_thread(TrustRecords, meta)
            rows = await records.served(where.client, where.since, where.until)
            with Progress("bom", len(rows), unit="served records") as progress:
                bom = await asyncio.to_thread(build_bom, rows, where, None, progress.advance)
                text = await asyncio.to_thread(to_json, bom)
            return text, f"{len(rows)} served records, {len(bom.components)} components"
        finally:
            await meta.close()

    text, counts = asyncio.run(go())
    to_stdout = args.output is None or str(args.output) == "-"
    if to_stdout:
        sys.stdout.write(text + "\n")
    else:
        args.output.write_text(text + "\n", encoding="utf-8")
    if is_terminal(sys.stderr):  # piped, bom prints nothing but the document, as it always did
        where_to = "stdout" if to_stdout else str(args.output)
        print(f"bom: {counts}, written to {where_to}", file=sys.stderr)
    return 0


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], config_arg: Any
) -> None:
    p = subparsers.add_parser(
        "bom",
        help="AI-BOM (CycloneDX 1.6 JSON) of what the proxy served",
        description="Write a CycloneDX 1.6 JSON document listing every artifact the proxy "
        "served (PyPI files, hub models and datasets with their files), with sha256, purl, "
        "decision, policy revision, scan verdict and the clients that pulled them. "
        "Times are ISO 8601 (2026-01-31, 2026-01-31T12:00:00Z); a time without zone is UTC.",
    )
    config_arg(p)
    p.add_argument("--client", default=None, help="only what this client id pulled")
    p.add_argument("--since", default=None, metavar="T", help="served at or after T")
    p.add_argument("--until", default=None, metavar="T", help="served before T")
    p.add_argument(
        "-o", "--output", type=Path, default=None, help="write to FILE (default: stdout)"
    )
    p.set_defaults(func=_bom)
