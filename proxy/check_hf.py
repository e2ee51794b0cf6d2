"""``airlock check hf REPO[@REV] [--file PATH]``: the Hub decision with reasons and facts.

Runs the server's own wiring (store, policy, upstream hub) without listening on a port, asks
for the revision (or one file of it) as a client would, and prints every decision made on the
way with the facts behind it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any
from urllib.parse import quote

from aiohttp import web

from .decision import Client, Decision, Subject
from .errors import AirlockError, Denied
from .hf import paths
from .hf import routes as hf_routes
from .hf.sources import Auth
from .settings import Settings

TYPE_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def _raw_path(repo: str, rev: str, repo_type: str, file: str | None) -> str:
    rev_q = quote(rev, safe="")
    if file:
        return f"/hf/{TYPE_PREFIX[repo_type]}{repo}/resolve/{rev_q}/{quote(file)}"
    return f"/hf/api/{repo_type}s/{repo}/revision/{rev_q}"


async def check_hf(
    settings: Settings, spec: str, repo_type: str, file: str | None, as_json: bool
) -> int:
    from .app import create_app

    repo, _, rev = spec.partition("@")
    seen: list[tuple[Subject, Decision]] = []
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()  # builds every layer (cleanup_ctx), listens nowhere
    error: str | None = None
    try:
        service = app[hf_routes.SERVICE]
        service.policy.observer = lambda s, d: seen.append((s, d))
        token, forward = app[hf_routes.AUTH]
        auth = Auth.for_request(None, token, forward)
        client = Client(id="airlock-check")
        route = paths.parse(_raw_path(repo, rev or "main", repo_type, file))
        if isinstance(route, paths.Resolve):
            await service.resolve(route, auth, client)
        elif isinstance(route, paths.Api):
            await service.info(route, [], auth, client)
    except Denied:
        pass  # the observed decision says why
    except AirlockError as e:
        error = e.message
    finally:
        await runner.cleanup()
    return _report(spec, file, seen, error, as_json)


def _report(
    spec: str,
    file: str | None,
    seen: list[tuple[Subject, Decision]],
    error: str | None,
    as_json: bool,
) -> int:
    target = f"{spec} {file}" if file else spec
    denied = [d for _, d in seen if d.blocks or any(d.file_denials.values())]
    if as_json:
        print(
            json.dumps(
                {
                    "target": target,
                    "allowed": not denied and error is None,
                    "error": error,
                    "decisions": [
                        {
                            "endpoint": s.extra.get("endpoint"),
                            "allow": not (d.blocks or d.file_denials),
                            "policy_revision": d.revision,
                            "engine": d.engine,
                            "reasons": [
                                {"rule": r.rule, "message": r.message}
                                for r in d.reasons
                                + tuple(x for v in d.file_denials.values() for x in v)
                            ],
                            "facts": s.extra,
                        }
                        for s, d in seen
                    ],
                },
                indent=2,
                default=str,
            )
        )
    else:
        verdict = "ERROR" if error and not denied else ("DENIED" if denied else "ALLOWED")
        lines = [f"hf {target}: {verdict}"]
        if error:
            lines.append(f"  {error}")
        for s, d in seen:
            lines.append(
                f"  {s.extra.get('endpoint')}: policy revision {d.revision[:12]} ({d.engine})"
            )
            reasons = d.reasons + tuple(x for v in d.file_denials.values() for x in v)
            lines += [f"    deny [{r.rule}] {r.message}" for r in reasons]
            facts: dict[str, Any] = {k: v for k, v in s.extra.items() if v not in (None, [], {})}
            lines.append("    facts: " + json.dumps(facts, sort_keys=True, default=str))
        print("\n".join(lines))
    if denied:
        return 1
    return 2 if error else 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    from .logging import configure_logging

    configure_logging(settings.log.format, "warning")
    return asyncio.run(check_hf(settings, args.spec, args.type, args.file, args.json))


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser], config_arg: Any) -> None:
    hf = verbs.add_parser(
        "hf",
        help="a Hub repo at a revision, optionally one file",
        description="Decide REPO[@REV] (default revision: main) as a client "
        "would ask for it. Exit 0 allowed, 1 denied, 2 error.",
    )
    config_arg(hf)
    hf.add_argument("spec", metavar="REPO[@REV]")
    hf.add_argument("--type", choices=("model", "dataset", "space"), default="model")
    hf.add_argument("--file", default=None, help="a file of the repo: decide its download")
    hf.add_argument("--json", action="store_true", help="machine-readable output")
    hf.set_defaults(func=run)
