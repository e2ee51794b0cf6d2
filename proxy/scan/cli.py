"""``airlock scan PATH...``: scan model files and print one line per finding.

Exit status: 0 all clean, 1 some file has findings, 2 usage error or an unreadable file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .allowlist import check_entries, load_allowlist
from .api import scan_file
from .model import ScanResult


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "scan",
        help="scan model files for code execution risks",
        description="Detect each file's format from its content and report findings: pickle "
        "imports off the allow-list, malformed or truncated streams, Lambda layers, unsafe "
        "chat templates, archive bombs. Exit 0 if all files are clean, 1 if any has "
        "findings, 2 on usage errors or unreadable files.",
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files to scan")
    p.add_argument("--json", action="store_true", help="print machine-readable results")
    p.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="GLOBAL",
        help="also allow this pickle global (module.name or module.*); repeatable",
    )
    p.add_argument(
        "--allowlist",
        type=Path,
        default=None,
        metavar="FILE",
        help="also allow the globals of this allow-list JSON file",
    )
    p.add_argument("--config", type=Path, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def _result_json(path: Path, result: ScanResult) -> dict[str, object]:
    return {
        "path": str(path),
        "format": result.format,
        "clean": result.clean,
        "findings": [
            {"rule": f.rule, "message": f.message, "location": f.location} for f in result.findings
        ],
        "scanner_version": result.scanner_version,
        "bytes_scanned": result.bytes_scanned,
    }


def run(args: argparse.Namespace, settings: object = None) -> int:
    try:
        load_allowlist()  # the shipped list must load before any verdict means anything
        extra = check_entries(args.allow)
        if args.allowlist is not None:
            extra += load_allowlist(args.allowlist)
    except (OSError, ValueError) as e:
        print(f"airlock scan: {e}", file=sys.stderr)
        return 2
    status = 0
    records: list[dict[str, object]] = []
    for path in args.paths:
        try:
            if not path.is_file():
                raise IsADirectoryError(f"not a regular file: {path}")
            result = scan_file(path, extra_allowed_globals=extra)
        except OSError as e:
            print(f"airlock scan: cannot read {path}: {e.strerror or e}", file=sys.stderr)
            records.append({"path": str(path), "error": str(e.strerror or e)})
            status = 2
            continue
        if not result.clean:
            status = max(status, 1)
        if args.json:
            records.append(_result_json(path, result))
            continue
        for f in result.findings:
            where = f" [{f.location}]" if f.location else ""
            print(f"{path}: {f.rule}: {f.message}{where}")
    if args.json:
        json.dump(records, sys.stdout, indent=2)
        print()
    return status
