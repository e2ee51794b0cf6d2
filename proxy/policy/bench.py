"""Decision latency through the production path: ``python -m proxy.policy.bench [N] [ENGINE]``.

Evaluates N varied single-file PyPI subjects (the download decision), N/4 page subjects of 20
files and N/40 of 1,000 files against the shipped policies with the engine the settings would
build (``auto`` unless named: ``regopy``, ``opa-embedded``), sequentially, and prints median,
p90, p99 and max.  Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

from ..decision import Client, FileFacts, Subject
from ..runtime import tune_gc
from ..settings import PolicySettings
from .batch import decide_chunked
from .engine import PolicyEngine
from .factory import create_engine

POLICIES = Path(__file__).resolve().parents[2] / "policies"
FACTS = {
    "typosquat": [],
    "identity": [],
    "internal_errors": [],
    "previously_internal": False,
    "stale": False,
    "upstream_kind": "public",
}


def _subjects(n: int, files: int, seed: int = 7) -> list[Subject]:
    rnd = random.Random(seed)  # noqa: S311 - reproducible benchmark data, not secrets
    now = time.time_ns()
    out = []
    for i in range(n):
        name = f"pkg{rnd.randint(0, 5000)}"
        facts = tuple(
            FileFacts(
                f"{name}-{v}.{k}-py3-none-any.whl",
                f"1.{v}",
                "wheel",
                {"sha256": f"{rnd.getrandbits(256):064x}"},
                rnd.randint(1, 10**7),
                now - rnd.randint(0, 30 * 86400) * 10**9,
                rnd.random() < 0.02,
            )
            for v, k in ((j, i) for j in range(files))
        )
        squat = (
            []
            if rnd.random() < 0.9
            else [
                {
                    "target": "requests",
                    "method": "edit-distance",
                    "score": 0.7,
                    "score_text": "0.70",
                }
            ]
        )
        out.append(
            Subject(
                "pypi",
                "file" if files == 1 else "page",
                name,
                "public",
                Client(id="bench", groups=("ci",) if rnd.random() < 0.3 else ()),
                facts,
                FACTS | {"typosquat": squat},
            )
        )
    return out


async def _measure(engine: PolicyEngine, subjects: list[Subject]) -> list[float]:
    times = []
    for s in subjects:
        t = time.perf_counter()
        d = await decide_chunked(engine, s)
        times.append((time.perf_counter() - t) * 1e6)
        if d.error:
            raise SystemExit(f"evaluation error: {d.error}")
    return sorted(times)


def _line(label: str, t: list[float]) -> str:
    return (
        f"{label:<24} n={len(t)} median={statistics.median(t):.0f}us "
        f"p90={t[int(0.9 * len(t))]:.0f}us p99={t[int(0.99 * len(t))]:.0f}us "
        f"max={t[-1]:.0f}us"
    )


async def main(n: int, engine_name: str) -> None:
    settings = PolicySettings(path=POLICIES, engine=engine_name)  # type: ignore[arg-type]
    _, engine = await create_engine(settings, {"public": "public"})
    tune_gc()  # as airlock serve does once it has started
    try:
        print(f"engine: {engine.name}")
        await _measure(engine, _subjects(50, 1, seed=1))  # warm-up
        print(_line("download (1 file)", await _measure(engine, _subjects(n, 1))))
        print(_line("page (20 files)", await _measure(engine, _subjects(n // 4, 20))))
        print(_line("page (1,000 files)", await _measure(engine, _subjects(n // 40, 1000))))
    finally:
        await engine.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(int(args[0]) if args else 2000, args[1] if len(args) > 1 else "auto"))
