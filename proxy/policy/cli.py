"""``airlock policy test`` and ``airlock policy eval`` (``policy check`` lives in proxy/cli.py).

airlock policy test [DIR] [--engine auto|regopy|opa]
airlock policy eval --input FILE [--ecosystem pypi|hf] [--config FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any, cast

from ..decision import Action, Client, Decision, Ecosystem, FileFacts, Reason, Subject
from ..settings import Settings

FILE_FIELDS = ("filename", "version", "kind", "hashes", "size", "upload_time_ns", "yanked")


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML settings file (default: $AIRLOCK_CONFIG, else built-in defaults)",
    )


def register_policy_verbs(policy_subparsers: argparse._SubParsersAction[Any]) -> None:
    test = policy_subparsers.add_parser(
        "test",
        help="run the *_test.rego tests of the policy folder",
        description="Run every test_* rule of DIR/**/*_test.rego, one child process per file, "
        "and report PASS/FAIL/ERROR per test like 'opa test'. Exit 0 if all pass, 1 on any "
        "failure or error, 2 if there are no tests.",
    )
    _config_arg(test)
    test.add_argument("dir", nargs="?", type=Path, help="policy folder (default: policy.path)")
    test.add_argument(
        "--engine",
        choices=("auto", "regopy", "opa"),
        default="auto",
        help="opa = real OPA (opa-golib); regopy = the embedded engine; "
        "auto (default) = opa when installed",
    )
    test.set_defaults(func=_test)

    ev = policy_subparsers.add_parser(
        "eval",
        help="decide one request from a JSON file, as the server would",
        description="Evaluate one subject (JSON: action, project, upstream, client, files, "
        "facts) with the configured engine and policy folder, through the production path, "
        "and print the decision as JSON. Exit 0 allow, 1 deny, 2 unusable input or policy.",
    )
    _config_arg(ev)
    ev.add_argument("--input", required=True, type=Path, help="subject JSON file ('-' = stdin)")
    ev.add_argument("--ecosystem", choices=("pypi", "hf"), default=None, help="default: pypi")
    ev.set_defaults(func=_eval)


def _test(args: argparse.Namespace, settings: Settings) -> int:
    from .testing import run

    return run(args.dir or settings.policy.path, args.engine)


def subject_from_json(d: dict[str, Any], ecosystem: str | None = None) -> Subject:
    """A Subject from the JSON ``policy eval`` reads (unknown file keys become file facts)."""
    files = tuple(
        FileFacts(
            filename=f["filename"],
            version=f.get("version"),
            kind=f.get("kind", "other"),
            hashes=dict(f.get("hashes", {})),
            size=f.get("size"),
            upload_time_ns=f.get("upload_time_ns"),
            yanked=bool(f.get("yanked", False)),
            requires_python=f.get("requires_python"),
            extra={k: v for k, v in f.items() if k not in (*FILE_FIELDS, "requires_python")},
        )
        for f in d.get("files", [])
    )
    c = d.get("client", {})
    client = Client(
        id=c.get("id", "anonymous"), groups=tuple(c.get("groups", ())), address=c.get("address", "")
    )
    eco, action = ecosystem or d.get("ecosystem", "pypi"), d.get("action", "page")
    if eco not in ("pypi", "hf") or action not in ("page", "file", "metadata"):
        raise ValueError(f"unknown ecosystem {eco!r} or action {action!r}")
    return Subject(
        cast(Ecosystem, eco),
        cast(Action, action),
        d["project"],
        d.get("upstream", "default"),
        client=client,
        files=files,
        extra=dict(d.get("facts", {})),
    )


def decision_json(d: Decision) -> dict[str, Any]:
    def reasons(rs: tuple[Reason, ...]) -> list[dict[str, str]]:
        return [{"rule": r.rule, "message": r.message} for r in rs]

    return {
        "allow": d.allow,
        "reasons": reasons(d.reasons),
        "file_denials": {k: reasons(v) for k, v in sorted(d.file_denials.items())},
        "warnings": reasons(d.warnings),
        "monitored": reasons(d.monitored),
        "revision": d.revision,
        "engine": d.engine,
        "error": d.error,
    }


async def _decide(settings: Settings, subject: Subject) -> Decision:
    from .batch import decide_chunked
    from .factory import create_engine

    kinds = {u.name: u.kind for u in settings.pypi.upstreams}
    _, engine = await create_engine(settings.policy, kinds)
    try:
        return await decide_chunked(engine, subject)
    finally:
        await engine.close()


def _eval(args: argparse.Namespace, settings: Settings) -> int:
    from .snapshot import PolicyError

    try:
        text = sys.stdin.read() if str(args.input) == "-" else args.input.read_text()
        subject = subject_from_json(json.loads(text), args.ecosystem)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        print(f"airlock: cannot read a subject from {args.input}: {e!r}", file=sys.stderr)
        return 2
    try:
        decision = asyncio.run(_decide(settings, subject))
    except PolicyError as e:
        print(f"invalid policy in {settings.policy.path}:\n  {e}", file=sys.stderr)
        return 2
    print(json.dumps(decision_json(decision), indent=2))
    return 0 if decision.allow else 1
