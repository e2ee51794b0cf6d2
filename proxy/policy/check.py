"""Validate a policy snapshot in a child process: ``python -m proxy.policy.check < snapshot.json``.

A native crash of the embedded engine while compiling a bad policy must not take the server
down, so new revisions are parsed, built and canary-evaluated here first.  Exit 0 = valid;
otherwise stderr holds the reason.
"""

from __future__ import annotations

import asyncio
import sys

from ..decision import FileFacts, Subject
from .rego import RegopyEngine, compile_snapshot
from .snapshot import PolicyError, Snapshot

CANARIES = {
    "pypi": Subject(
        "pypi",
        "page",
        "canary",
        "canary",
        files=(FileFacts("canary-1.0-py3-none-any.whl", "1.0", "wheel"),),
    ),
    "hf": Subject(
        "hf",
        "file",
        "canary/canary",
        "canary",
        files=(FileFacts("config.json"),),
        extra={"revision": "0" * 40},
    ),
}


async def canary_check(engine: RegopyEngine, entrypoints: frozenset[str]) -> None:
    """Every entrypoint must answer with a well-formed decision (allow or deny, no error)."""
    for ecosystem, subject in CANARIES.items():
        if f"airlock/{ecosystem}/decision" not in entrypoints:
            continue
        decision = await engine.decide(subject)
        if decision.error is not None:
            raise PolicyError(
                f"canary evaluation of airlock.{ecosystem}.decision: {decision.error}"
            )


def main() -> int:
    try:
        snapshot = Snapshot.from_json(sys.stdin.read())
        compiled = compile_snapshot(snapshot)
        engine = RegopyEngine(compiled, workers=1)
        asyncio.run(canary_check(engine, compiled.entrypoints))
    except PolicyError as e:
        print(str(e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
