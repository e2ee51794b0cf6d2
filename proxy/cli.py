"""The ``airlock`` command: argv → Settings → the verb.  Logging is configured here, once.

airlock serve [--config FILE] [--host H] [--port P]
airlock store fsck [--config FILE] [--dry-run]
airlock store gc [--config FILE] [--dry-run]
airlock policy check [--config FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .settings import Settings, SettingsError, load_settings


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML settings file (default: $AIRLOCK_CONFIG, else built-in defaults)",
    )


async def _tune_gc(_app: object) -> None:
    from .runtime import tune_gc

    tune_gc()  # after the app's own start: what it built lives for good


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from .app import create_app
    from .logging import configure_logging
    from .policy.snapshot import PolicyError
    from .serve import serve

    configure_logging(settings.log.format, settings.log.level)
    from mirror_store.storelock import StoreInUse, lock_store

    try:  # before anything opens or cleans the store
        store_lock = lock_store(settings.store.path)
    except StoreInUse as e:
        print(f"airlock: {e}", file=sys.stderr)
        return 1
    app = create_app(settings)
    app.on_startup.append(_tune_gc)
    try:
        return asyncio.run(serve(app, settings.server.host, settings.server.port))
    except PolicyError as e:
        print(
            f"airlock: cannot start: the policy in {settings.policy.path} is invalid:\n  {e}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        store_lock.release()


def _serve_overrides(args: argparse.Namespace) -> dict[str, str]:
    """--host/--port as settings variables: validated exactly like the config file's values."""
    env = {}
    if args.host is not None:
        env["AIRLOCK_SERVER__HOST"] = json.dumps(args.host)  # a TOML string, whatever it holds
    if args.port is not None:
        env["AIRLOCK_SERVER__PORT"] = args.port  # an integer if it parses as one
    return env


def _fsck(args: argparse.Namespace, settings: Settings) -> int:
    from .store_admin import fsck

    return fsck(settings.store.path, dry_run=args.dry_run, verbose=args.verbose)


def _gc(args: argparse.Namespace, settings: Settings) -> int:
    from .store_admin import gc

    return gc(settings.store.path, dry_run=args.dry_run, min_age=args.min_age, verbose=args.verbose)


def _policy_check(args: argparse.Namespace, settings: Settings) -> int:
    from .policy.manager import load_compiled
    from .policy.snapshot import PolicyError

    try:
        _, compiled = asyncio.run(load_compiled(settings.policy.path))
    except PolicyError as e:
        print(f"invalid policy in {settings.policy.path}:\n  {e}", file=sys.stderr)
        return 1
    print(
        f"policy OK: revision {compiled.revision}, entrypoints "
        f"{', '.join(sorted(compiled.entrypoints))}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airlock",
        description="Policy-enforcing mirror proxy for Python packages and model hubs.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    serve = verbs.add_parser(
        "serve", help="run the proxy", description="Run the proxy (default 127.0.0.1:8080)."
    )
    _config_arg(serve)
    serve.add_argument("--host", default=None, help="listen address (overrides server.host)")
    serve.add_argument(
        "--port", default=None, help="listen port (overrides server.port; 0 = any free port)"
    )
    serve.set_defaults(func=_serve, overrides=_serve_overrides)

    store = verbs.add_parser(
        "store",
        help="maintain the artifact store",
        description="Maintain the content-addressed artifact store.",
    )
    store_verbs = store.add_subparsers(dest="store_verb", required=True, metavar="VERB")
    fsck = store_verbs.add_parser(
        "fsck",
        help="re-hash every blob; quarantine any that do not match",
        description="Re-hash every stored blob. A blob whose bytes no longer match its sha256 "
        "is moved to quarantine/ and forgotten, so the next request re-fetches it. "
        "Exit 1 if any blob was bad.",
    )
    _config_arg(fsck)
    fsck.add_argument("--dry-run", action="store_true", help="report only; move nothing")
    fsck.add_argument("-v", "--verbose", action="store_true", help="list the temp files")
    fsck.set_defaults(func=_fsck)
    gc = store_verbs.add_parser(
        "gc",
        help="remove blobs nothing refers to",
        description="Remove blobs that no metadata record refers to, and temp files a "
        "stopped server left behind (a running download's are left alone).",
    )
    _config_arg(gc)
    gc.add_argument("--dry-run", action="store_true", help="report only; delete nothing")
    gc.add_argument("-v", "--verbose", action="store_true", help="list the temp files")
    gc.add_argument(
        "--min-age",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="keep unreferenced blobs and temp files younger than this (default 3600: "
        "a download may be recording its metadata right now)",
    )
    gc.set_defaults(func=_gc)

    policy = verbs.add_parser(
        "policy", help="work with the Rego policies", description="Work with the Rego policies."
    )
    policy_verbs = policy.add_subparsers(dest="policy_verb", required=True, metavar="VERB")
    check = policy_verbs.add_parser(
        "check",
        help="validate the policy folder",
        description="Parse, build and canary-evaluate the policy folder as the server would.",
    )
    _config_arg(check)
    check.set_defaults(func=_policy_check)
    from .policy.cli import register_policy_verbs

    register_policy_verbs(policy_verbs)

    from .facts.cli import register as register_facts
    from .facts.osv_cli import register as register_osv
    from .facts.pins_cli import register as register_pins
    from .scan.cli import register as register_scan

    register_scan(verbs)
    register_facts(verbs)
    register_osv(verbs)
    register_pins(verbs)
    from .check import register as register_check
    from .quarantine_cli import register as register_quarantine

    register_check(verbs, _config_arg)
    register_quarantine(verbs, _config_arg)
    from .admin.cli import register as register_admin

    register_admin(verbs, _config_arg)
    from .trust import bom_cli, verify_cli

    bom_cli.register(verbs, _config_arg)
    verify_cli.register(verbs, _config_arg)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = args.func
    # Verbs from sub-packages may take only the arguments (they need no settings).
    if len(inspect.signature(func).parameters) == 1:
        return int(func(args))
    overrides = getattr(args, "overrides", None)
    env = {**os.environ, **overrides(args)} if overrides is not None else None
    try:
        settings = load_settings(getattr(args, "config", None), env)
    except SettingsError as e:
        print(f"airlock: {e}", file=sys.stderr)
        return 2
    return int(func(args, settings))


if __name__ == "__main__":
    sys.exit(main())
