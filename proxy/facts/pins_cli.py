"""``airlock allow ...`` verbs.  The main CLI calls :func:`register` with its subparsers.

``airlock allow import FILE... [--out PATH] [--replace] [--format FMT]`` reads exact pins from
requirements files (``*.txt``, with their ``-r``/``-c`` includes), ``uv.lock`` and
``pylock.toml``/``pylock.*.toml`` (format from the name, else the content) and merges them into
the pins list (``--replace``: start from an empty list).  All files are read before anything is
written; one bad file writes nothing.

``airlock allow list [NAME] [--lists PATH]`` prints the pinned projects, or NAME's pins.

Each verb sets ``func`` (``Callable[[argparse.Namespace], int]``, returning an exit code) on the
parsed namespace.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from .listfile import write_atomic
from .pins import PinIndex, PinsError, dump_pins, merge_pins, sorted_versions, source_entry
from .pins_locks import FORMATS, read_pin_file

DEFAULT_LISTS = Path("policies/lists")
DEFAULT_OUT = DEFAULT_LISTS / "pins.json"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    allow = subparsers.add_parser("allow", help="approved versions (pins) per project")
    verbs = allow.add_subparsers(dest="allow_command", metavar="VERB", required=True)
    imp = verbs.add_parser(
        "import",
        help="add the exact pins of requirements / uv.lock / pylock.toml files",
        description=(
            "Read exact pins (name==version and sha256 hashes) from requirements files, "
            "uv.lock or pylock.toml and merge them into the pins list.  Lines that are not "
            "exact pins are reported and nothing is written."
        ),
    )
    imp.add_argument("files", type=Path, nargs="+", metavar="FILE")
    imp.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, metavar="PATH",
        help=f"pins list to update (default {DEFAULT_OUT})",
    )  # fmt: skip
    imp.add_argument("--replace", action="store_true", help="start from an empty list")
    imp.add_argument(
        "--format", choices=FORMATS, default=None,
        help="format of every FILE (default: from the name, else the content)",
    )  # fmt: skip
    imp.set_defaults(func=allow_import)
    lst = verbs.add_parser("list", help="show pinned projects, or one project's pins")
    lst.add_argument("name", nargs="?", default=None, metavar="NAME")
    lst.add_argument(
        "--lists", type=Path, default=DEFAULT_LISTS, metavar="PATH",
        help=f"lists folder or pins list file (default {DEFAULT_LISTS})",
    )  # fmt: skip
    lst.set_defaults(func=allow_list)


def allow_import(args: argparse.Namespace) -> int:
    out: Path = args.out
    today = dt.datetime.now(dt.UTC).date()
    try:
        existing = None if args.replace or not out.exists() else _read_json(out)
        read = [read_pin_file(path, args.format) for path in args.files]
        sources = [source_entry(f, r.format, today) for r in read for f in r.files]
        doc = merge_pins(existing, [pin for r in read for pin in r.pins], sources)
    except PinsError as e:
        print(f"allow import: {e}", file=sys.stderr)
        return 1
    for r in read:
        for note in r.notes:
            print(f"allow import: note: {note}", file=sys.stderr)
    write_atomic(out, dump_pins(doc))
    for r, path in zip(read, args.files, strict=True):
        projects = {pin.name for pin in r.pins}
        unhashed = sum(1 for pin in r.pins if not pin.sha256)
        extra = f" ({unhashed} without a sha256 hash)" if unhashed else ""
        print(f"{path}: {len(r.pins)} pins of {len(projects)} projects ({r.format}){extra}")
    verb = "replaced" if args.replace else "updated"
    print(f"{verb} {out}: {len(doc['projects'])} pinned projects")
    return 0


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PinsError(f"{path}: cannot read pins list: {e}") from e


def allow_list(args: argparse.Namespace) -> int:
    path: Path = args.lists
    if path.is_dir():
        path = path / "pins.json"
    try:
        index = PinIndex.load(path)
    except PinsError as e:
        print(f"allow list: {e}", file=sys.stderr)
        return 2
    if args.name is not None:
        pins = index.for_project(args.name)
        if pins is None:
            print(f"{canonicalize_name(args.name)}: not pinned")
            return 1
        print(
            f"{canonicalize_name(args.name)}: versions {', '.join(sorted_versions(pins.versions))}"
        )
        for digest in sorted(pins.sha256):
            print(f"  sha256:{digest}")
        return 0
    for source in index.sources:
        print(f"# {source.get('file')} ({source.get('format', '?')}, {source.get('imported')})")
    for name in index.names():
        pins = index.for_project(name)
        assert pins is not None
        print(f"{name}: {', '.join(sorted_versions(pins.versions))} ({len(pins.sha256)} sha256)")
    print(f"{len(index)} pinned projects")
    return 0
