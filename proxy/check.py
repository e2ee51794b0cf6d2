"""``airlock check pypi NAME[==VERSION]``: the decision the proxy would make, with its reasons
and the facts behind it, through the same chain the server uses (same store, same policy)."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from typing import Any

from packaging.utils import canonicalize_name

from mirror_store.blobs import LocalBlobStore
from mirror_store.fill import Filler
from mirror_store.metadata import SqliteMetadata

from .decision import Client, Decision
from .errors import AirlockError, Denied
from .policy.factory import create_engine
from .policy.snapshot import PolicyError
from .pypi.filefacts import parse_filename
from .pypi.setup import build_pypi, pypi_upstreams
from .settings import Settings

_SPEC = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==\s*(\S+))?\s*$")


def _reasons(title: str, reasons: Any) -> list[str]:
    return [f"  {title} [{r.rule}] {r.message}" for r in reasons]


async def check_pypi(settings: Settings, spec: str, as_json: bool) -> int:
    m = _SPEC.match(spec)
    if not m:
        print(f"airlock: {spec!r} is not NAME or NAME==VERSION", file=sys.stderr)
        return 2
    name, version = canonicalize_name(m[1]), m[2]
    root = settings.store.path
    blobs = LocalBlobStore(root)
    meta = SqliteMetadata(root / "metadata.sqlite3")
    upstreams = pypi_upstreams(settings)
    try:
        snapshot, engine = await create_engine(settings.policy, {u.name: u.kind for u in upstreams})
    except PolicyError as e:
        print(f"airlock: the policy is invalid: {e}", file=sys.stderr)
        await meta.close()
        return 2
    stack = await build_pypi(settings, meta, blobs, Filler(blobs), engine, snapshot, None)
    try:
        try:
            page, decision = await stack.policy.project(name, Client(id="airlock-check"))
        except Denied as e:  # hide mode raises for a blocked project
            page, decision = await stack.stored.project(name), e.decision
        facts = await stack.facts.project(page, stack.policy.kind_of(page.upstream))
    except AirlockError as e:
        print(f"airlock: {name}: {e.message}", file=sys.stderr)
        return 2
    finally:
        await stack.close()
        await engine.close()
        await meta.close()
    files = [
        f for f in page.detail.files if version is None or parse_filename(f.filename)[0] == version
    ]
    return _report(
        name, version, page.upstream, decision, facts, [f.filename for f in files], as_json
    )


def _report(
    name: str,
    version: str | None,
    upstream: str,
    d: Decision,
    facts: dict[str, Any],
    files: list[str],
    as_json: bool,
) -> int:
    denied_files = {f: d.file_reasons(f) for f in files if d.blocks_file(f)}
    blocked = d.blocks or (version is not None and (not files or len(denied_files) == len(files)))
    if as_json:
        print(
            json.dumps(
                {
                    "project": name,
                    "version": version,
                    "upstream": upstream,
                    "allowed": not blocked,
                    "policy_revision": d.revision,
                    "engine": d.engine,
                    "reasons": [{"rule": r.rule, "message": r.message} for r in d.reasons],
                    "warnings": [{"rule": r.rule, "message": r.message} for r in d.warnings],
                    "monitored": [{"rule": r.rule, "message": r.message} for r in d.monitored],
                    "files": {
                        f: {
                            "allowed": f not in denied_files,
                            "reasons": [
                                {"rule": r.rule, "message": r.message}
                                for r in denied_files.get(f, ())
                            ],
                        }
                        for f in files
                    },
                    "facts": facts,
                },
                indent=2,
            )
        )
        return 1 if blocked else 0
    target = f"{name}=={version}" if version else name
    lines = [
        f"pypi {target}: {'DENIED' if blocked else 'ALLOWED'}",
        f"  upstream {upstream}; policy revision {d.revision[:12]} ({d.engine})",
    ]
    lines += _reasons("deny", d.reasons) + _reasons("warn", d.warnings)
    lines += _reasons("monitor", d.monitored)
    if version is not None and not files:
        lines.append(f"  no files for version {version} upstream")
    shown = files if version is not None else [f for f in files if f in denied_files]
    for f in shown:
        status = "denied" if f in denied_files else "allowed"
        lines.append(f"  {f}: {status}")
        lines += ["  " + r for r in _reasons("", denied_files.get(f, ()))]
    if version is None:
        lines.append(f"  {len(files) - len(denied_files)} of {len(files)} files allowed")
    lines.append("  facts: " + json.dumps(facts, sort_keys=True))
    print("\n".join(lines))
    return 1 if blocked else 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from .logging import configure_logging

    configure_logging(settings.log.format, "warning")  # the report is the output
    return asyncio.run(check_pypi(settings, args.spec, args.json))


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], config_arg: Any
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    check = subparsers.add_parser(
        "check",
        help="show the decision for a package or model, with reasons and facts",
        description="Ask the policy what it would decide, through the same chain as the server.",
    )
    verbs = check.add_subparsers(dest="check_verb", required=True, metavar="ECOSYSTEM")
    pypi = verbs.add_parser(
        "pypi",
        help="a PyPI project, optionally one version",
        description="Decide NAME or NAME==VERSION. Exit 0 allowed, 1 denied, 2 error.",
    )
    config_arg(pypi)
    pypi.add_argument("spec", metavar="NAME[==VERSION]")
    pypi.add_argument("--json", action="store_true", help="machine-readable output")
    pypi.set_defaults(func=_run)
    from .check_hf import register as register_hf

    register_hf(verbs, config_arg)
    return verbs
