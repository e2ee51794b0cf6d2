"""``airlock quarantine list | approve SHA256 | deny SHA256``: admin decisions on scanned files.

An approval is recorded with its reason, who and when; it shows in every later decision on that
digest (``input.facts.scan.approval``) and in the admin API.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import time
from typing import Any

from mirror_store.digest import is_digest
from mirror_store.metadata import SqliteMetadata

from .settings import Settings
from .trust.records import TrustRecords


async def _with_records(settings: Settings, fn: Any) -> int:
    meta = SqliteMetadata(settings.store.path / "metadata.sqlite3")
    try:
        records = await asyncio.to_thread(TrustRecords, meta)
        return int(await fn(records))
    finally:
        await meta.close()


def _list(args: argparse.Namespace, settings: Settings) -> int:
    async def go(records: TrustRecords) -> int:
        rows = await records.quarantined()
        if not rows:
            print("no scanned file has findings")
        for verdict, approval in rows:
            state = (
                f"{approval.verdict} by {approval.by}: {approval.reason}"
                if approval
                else "quarantined"
            )
            print(f"{verdict.digest}  {verdict.format}  {state}")
            for f in verdict.findings:
                where = f" [{f.get('location')}]" if f.get("location") else ""
                print(f"    {f['rule']}: {f['message']}{where}")
        return 0

    return asyncio.run(_with_records(settings, go))


def _decide(args: argparse.Namespace, settings: Settings) -> int:
    digest = args.digest.lower()
    if not is_digest(digest):
        print("airlock: expected a sha256 (64 hex digits)", file=sys.stderr)
        return 2

    async def go(records: TrustRecords) -> int:
        try:
            a = await records.set_approval(digest, args.verb, args.reason, args.by)
        except ValueError as e:
            print(f"airlock: {e}", file=sys.stderr)
            return 2
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(a.at))
        print(f"{a.verdict}d {digest} ({a.reason}) by {a.by} at {when}")
        return 0

    return asyncio.run(_with_records(settings, go))


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], config_arg: Any
) -> None:
    q = subparsers.add_parser(
        "quarantine",
        help="list, approve or deny files the model scanner flagged",
        description="Admin decisions on scanned files, recorded with a reason.",
    )
    verbs = q.add_subparsers(dest="quarantine_verb", required=True, metavar="VERB")
    lst = verbs.add_parser("list", help="files with findings and their approvals")
    config_arg(lst)
    lst.set_defaults(func=_list)
    for verb, text in (
        ("approve", "let a flagged file be served"),
        ("deny", "refuse a file whatever the policy says"),
    ):
        p = verbs.add_parser(verb, help=text, description=f"{text.capitalize()} (by sha256).")
        config_arg(p)
        p.add_argument("digest", metavar="SHA256")
        p.add_argument("--reason", required=True, help="why (recorded and shown in decisions)")
        p.add_argument("--by", default=getpass.getuser(), help="who decides (default: you)")
        p.set_defaults(func=_decide, verb=verb)
