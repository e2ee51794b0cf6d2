"""``airlock osv ...`` verbs.  The main CLI calls :func:`register` with its subparsers.

``airlock osv import DIR [--out PATH] [--source TEXT] [--skip-invalid]`` compiles the OSV
records under DIR (a directory tree or a .zip export; see :mod:`proxy.facts.osv_import`) into
the list file, written atomically, and prints what it kept and skipped.

``airlock osv check NAME [VERSION] [--lists PATH]`` prints the records that affect NAME at
VERSION (every record of NAME without VERSION); exit status 0 = none, 1 = some, 2 = error.

Each verb sets ``func`` (``Callable[[argparse.Namespace], int]``, returning an exit code) on the
parsed namespace.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from ..progress import Progress
from .listfile import write_atomic
from .osv import OsvError, OsvIndex, dump_osv, osv_document
from .osv_import import import_tree

DEFAULT_LISTS = Path("policies/lists")
DEFAULT_OUT = DEFAULT_LISTS / "osv.json"
SHOW_INVALID = 10


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    osv = subparsers.add_parser("osv", help="known-malicious and vulnerable packages (OSV)")
    verbs = osv.add_subparsers(dest="osv_command", metavar="VERB", required=True)
    imp = verbs.add_parser(
        "import",
        help="compile local OSV records into the OSV list",
        description=(
            "Compile the PyPI records of a local OSV tree (OpenSSF malicious-packages layout "
            "osv/malicious/pypi/<name>/MAL-*.json, an OSV export of <ID>.json files, or its "
            ".zip) into the OSV list file.  Withdrawn and non-PyPI records are skipped."
        ),
    )
    imp.add_argument("source_dir", type=Path, metavar="DIR")
    imp.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, metavar="PATH",
        help=f"list file to write (default {DEFAULT_OUT})",
    )  # fmt: skip
    imp.add_argument("--source", default=None, metavar="TEXT", help="describe the source")
    imp.add_argument(
        "--skip-invalid", action="store_true",
        help="write the list even if some files are not OSV records (default: refuse)",
    )  # fmt: skip
    imp.set_defaults(func=osv_import)
    check = verbs.add_parser(
        "check",
        help="show the OSV records that affect a release",
        description="Exit 0 if no record matches, 1 if some do, 2 on error.",
    )
    check.add_argument("name", metavar="NAME")
    check.add_argument("version", nargs="?", default=None, metavar="VERSION")
    check.add_argument(
        "--lists", type=Path, default=DEFAULT_LISTS, metavar="PATH",
        help=f"lists folder or OSV list file (default {DEFAULT_LISTS})",
    )  # fmt: skip
    check.set_defaults(func=osv_check)


def osv_import(args: argparse.Namespace) -> int:
    root: Path = args.source_dir
    try:
        with Progress("osv import", unit="files read") as progress:
            result = import_tree(root, progress.advance)
    except OSError as e:
        print(f"osv import: {e}", file=sys.stderr)
        return 2
    stats = result.stats
    for problem in stats.invalid[:SHOW_INVALID]:
        print(f"osv import: invalid: {problem}", file=sys.stderr)
    if len(stats.invalid) > SHOW_INVALID:
        print(f"osv import: ... and {len(stats.invalid) - SHOW_INVALID} more", file=sys.stderr)
    if stats.invalid and not args.skip_invalid:
        print(
            f"osv import: {len(stats.invalid)} invalid file(s); nothing written "
            "(--skip-invalid to write anyway)",
            file=sys.stderr,
        )
        return 1
    today = dt.datetime.now(dt.UTC).date()
    source = args.source or f"OSV records imported from {root.resolve().name or root}"
    doc = osv_document(result.records, source=source, imported=today)
    out: Path = args.out
    write_atomic(out, dump_osv(doc))
    print(
        f"read {stats.files} files: kept {stats.malicious} malicious and "
        f"{stats.vulnerabilities} vulnerability records for {len(result.records)} projects; "
        f"skipped {stats.withdrawn} withdrawn, {stats.other_ecosystem} without a PyPI package, "
        f"{stats.no_version_info} without version information, {stats.duplicates} duplicates, "
        f"{len(stats.invalid)} invalid; wrote {out}"
    )
    return 0


def osv_check(args: argparse.Namespace) -> int:
    path: Path = args.lists
    if path.is_dir():
        path = path / "osv.json"
    try:
        index = OsvIndex.load(path)
    except OsvError as e:
        print(f"osv check: {e}", file=sys.stderr)
        return 2
    matches = index.matches(args.name, args.version)
    what = args.name if args.version is None else f"{args.name} {args.version}"
    if not matches:
        print(f"{what}: no OSV records (list imported {index.imported.isoformat()})")
        return 0
    for m in matches:
        severity = f" {m.severity}" if m.severity else ""
        aliases = f" ({', '.join(m.aliases)})" if m.aliases else ""
        scope = " [all versions]" if m.all_versions else ""
        print(f"{what}: {m.id}{aliases} {m.kind}{severity}{scope}: {m.summary}")
    return 1
