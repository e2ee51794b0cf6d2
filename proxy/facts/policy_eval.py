"""Deny-level evaluation of the typo-squat rule through the production decision path.

Each name gets a neutral project page (one wheel per release, with upload times), the facts
the proxy computes for it (:func:`proxy.pypi.facts.squat_input`, :func:`history_facts`) and a
decision from the shipped Rego policy on the embedded engine.  Only *denials by the typosquat
rule* count: a warning lets ``pip install`` go through, so it is not a catch.

Scenarios (ages are taken from the catalogue's date, ``CATALOGUE_DATE``, and laid out before
the engine's clock, so results do not depend on the day the evaluation runs):

* ``as published``: one release, first upload 29 days ago (the oldest a new squat is here);
* ``name only``: an established-looking page, 12 releases, first upload 3 years ago;
* legitimate projects: their catalogue history at its worst: a single release in the month of
  their latest release (the first day of it), so never younger than it really is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..decision import Client, Subject
from ..policy.rego import RegopyEngine, compile_snapshot
from ..policy.snapshot import load_snapshot
from ..pypi.facts import squat_input
from ..pypi.history import history_facts
from ..pypi.model import File, ProjectDetail
from .typosquat import TyposquatDetector

CATALOGUE_DATE = dt.date(2026, 11, 29)
DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class History:
    age_days: float  # first upload, days before now
    releases: int


AS_PUBLISHED = History(29, 1)
NAME_ONLY = History(3 * 365, 12)


def legit_history(month: str) -> History:
    first = dt.date.fromisoformat(month + "-01")
    return History((CATALOGUE_DATE - first).days, 1)


def page(name: str, history: History, now: dt.datetime | None = None) -> ProjectDetail:
    """One wheel per release, the first ``age_days`` ago, then one a week (not past now)."""
    now = now or dt.datetime.now(dt.UTC)
    first = now - history.age_days * DAY
    files = []
    for i in range(history.releases):
        at = min(first + 7 * i * DAY, now)
        stem = name.replace("-", "_")
        files.append(
            File(
                f"{stem}-1.{i}-py3-none-any.whl",
                f"https://files.invalid/{stem}-1.{i}-py3-none-any.whl",
                {"sha256": "0" * 64},
                upload_time=at.isoformat().replace("+00:00", "Z"),
            )
        )
    return ProjectDetail(name, tuple(files))


class PolicyJudge:
    """Decides names the way the proxy does, with the policy folder at ``policies``."""

    def __init__(self, detector: TyposquatDetector, policies: Path) -> None:
        self._detector = detector
        self._engine = RegopyEngine(compile_snapshot(load_snapshot(policies)), workers=1)

    async def close(self) -> None:
        await self._engine.close()

    async def denied(self, name: str, history: History) -> str | None:
        """The typosquat denial's message, or None when the rule does not deny."""
        squats = squat_input(self._detector.check(name))
        if not squats:
            return None
        detail = page(name, history)
        subject = Subject(
            "pypi",
            "page",
            name,
            "public",
            client=Client(id="evaluate"),
            files=(),  # the page's files are not what this rule looks at
            extra={
                "typosquat": squats,
                "history": history_facts(detail),
                "identity": [],
                "internal_errors": [],
                "previously_internal": False,
                "stale": False,
                "upstream_kind": "public",
            },
        )
        decision = await self._engine.decide(subject)
        if decision.error is not None:
            return f"error: {decision.error}"  # fail closed, as served
        for reason in decision.reasons:
            if reason.rule == "typosquat":
                return reason.message
        return None

    async def rate(self, names: Iterable[str], history: History) -> tuple[int, int, list[str]]:
        """(denied, total, denied names)."""
        hits, total = [], 0
        for name in names:
            total += 1
            if await self.denied(name, history) is not None:
                hits.append(name)
        return len(hits), total, hits
