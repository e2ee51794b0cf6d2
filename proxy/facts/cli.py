"""``airlock facts ...`` verbs.  The main CLI calls :func:`register` with its subparsers.

``airlock facts refresh-popular --from FILE [--top N] [--out PATH]`` rebuilds the popularity
corpus from a catalogue TSV or a "top packages" JSON file (layouts in :mod:`proxy.facts.corpus`)
and records where the ranking came from and when.  ``airlock facts evaluate`` measures the
typo-squat rule at deny level (:mod:`proxy.facts.squat_report`).

Each verb sets ``func`` (``Callable[[argparse.Namespace], int]``, returning an exit code) on the
parsed namespace.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from ..progress import Progress
from .corpus import CorpusError, corpus_document, dump_corpus, read_ranking, top_n
from .listfile import write_atomic

DEFAULT_OUT = Path("policies/facts/pypi-popular.json")
DEFAULT_TOP = 15_000


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    facts = subparsers.add_parser("facts", help="compute and refresh policy facts")
    verbs = facts.add_subparsers(dest="facts_command", metavar="VERB", required=True)
    refresh = verbs.add_parser(
        "refresh-popular",
        help="rebuild the popular-project corpus used by the typo-squat check",
        description=(
            "Rebuild the popular-project corpus JSON from a package catalogue TSV (column "
            "rank_among_15000_most_downloaded) or a 'top packages' JSON file "
            '({"last_update": ..., "rows": [{"project": ..., "download_count": ...}]}).'
        ),
    )
    refresh.add_argument("--from", dest="source_file", type=Path, required=True, metavar="FILE")
    refresh.add_argument(
        "--top", type=_positive_int, default=DEFAULT_TOP, metavar="N",
        help=f"keep the names ranked 1..N (default {DEFAULT_TOP})",
    )  # fmt: skip
    refresh.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, metavar="PATH",
        help=f"corpus file to write (default {DEFAULT_OUT})",
    )  # fmt: skip
    refresh.add_argument(
        "--retrieved", type=dt.date.fromisoformat, default=None, metavar="YYYY-MM-DD",
        help="date the ranking was taken (default: from the input file)",
    )  # fmt: skip
    refresh.add_argument("--source", default=None, metavar="TEXT", help="describe the source")
    refresh.set_defaults(func=refresh_popular)
    from .squat_report import register as register_evaluate

    register_evaluate(verbs)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def refresh_popular(args: argparse.Namespace) -> int:
    try:
        with Progress("facts refresh-popular", unit="rows read") as progress:
            ranking = read_ranking(args.source_file, progress.advance)
    except CorpusError as e:
        print(f"facts refresh-popular: {e}", file=sys.stderr)
        return 1
    retrieved = args.retrieved or ranking.retrieved or dt.datetime.now(dt.UTC).date()
    names = top_n(ranking.ranks, args.top)
    doc = corpus_document(
        names,
        source=args.source or ranking.source,
        retrieved=retrieved,
        method=f"{ranking.method}; kept ranks 1..{args.top}",
    )
    out: Path = args.out
    write_atomic(out, dump_corpus(doc))
    print(f"wrote {len(names)} names ({retrieved.isoformat()}) to {out}")
    return 0
