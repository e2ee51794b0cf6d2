"""The popularity corpus: which project names are popular, and how popular (rank 1 = most used).

Shipped as ``policies/facts/pypi-popular.json``::

    {"source": "...", "retrieved": "YYYY-MM-DD", "method": "...", "count": N,
     "names": [["boto3", 1], ["packaging", 2], ...]}

Ship size: every ranked name (ranks 1..15,000; 14,985 names in the 2026-11 listing).  A
larger corpus only helps: its members are never reported, and the tail weighs little because
findings are scaled by the target's popularity (see :mod:`proxy.facts.scoring`).  The
false-positive budget is measured on a 12,000-name corpus against the held-out ranks
12,001..15,000 (``python -m proxy.facts.evaluate``), i.e. on popular projects the corpus in use
does not contain, which is the situation of every project outside the shipped top 15,000.

It is rebuilt by ``airlock facts refresh-popular`` from one of two input layouts:

* a tab-separated package catalogue with the header
  ``name, version, month, rank_among_15000_most_downloaded, summary`` (rows without a rank are
  skipped), or
* the common "top packages" JSON layout ``{"last_update": ..., "rows": [{"project": ...,
  "download_count": ...}, ...]}`` (rank = position after sorting by download count).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

TSV_RANK_COLUMN = "rank_among_15000_most_downloaded"


class CorpusError(ValueError):
    """A corpus or ranking file is malformed."""


@dataclass(frozen=True, slots=True)
class CorpusInfo:
    source: str  # where the ranking came from, in words
    retrieved: dt.date  # when the ranking was taken
    count: int  # number of names in the corpus
    method: str = ""  # how ranks were derived


@dataclass(frozen=True, slots=True)
class Ranking:
    """A ranking read from an input file, before it is cut to the top N and written."""

    ranks: dict[str, int]
    retrieved: dt.date | None
    source: str
    method: str


def load_corpus(path: Path) -> tuple[dict[str, int], CorpusInfo]:
    """Read a corpus JSON file; names are canonicalised, ranks must be positive and unique."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorpusError(f"{path}: cannot read corpus: {e}") from e
    return corpus_from_doc(doc, str(path))


def corpus_from_doc(doc: object, path: str) -> tuple[dict[str, int], CorpusInfo]:
    """Validate an already-parsed corpus document (*path* names it in errors)."""
    if not isinstance(doc, dict):
        raise CorpusError(f"{path}: top level must be an object")
    source, retrieved, entries = doc.get("source"), doc.get("retrieved"), doc.get("names")
    if not isinstance(source, str) or not source:
        raise CorpusError(f"{path}: 'source' must be a non-empty string")
    if not isinstance(retrieved, str):
        raise CorpusError(f"{path}: 'retrieved' must be a YYYY-MM-DD string")
    try:
        day = dt.date.fromisoformat(retrieved)
    except ValueError as e:
        raise CorpusError(f"{path}: 'retrieved' is not a date: {retrieved!r}") from e
    if not isinstance(entries, list):
        raise CorpusError(f"{path}: 'names' must be a list of [name, rank] pairs")
    ranks: dict[str, int] = {}
    for i, entry in enumerate(entries):
        if (
            not isinstance(entry, list)
            or len(entry) != 2
            or not isinstance(entry[0], str)
            or type(entry[1]) is not int
            or entry[1] < 1
        ):
            raise CorpusError(f"{path}: names[{i}] must be [name, positive rank], got {entry!r}")
        name = canonicalize_name(entry[0])
        if name in ranks:
            raise CorpusError(f"{path}: names[{i}]: duplicate name {name!r}")
        ranks[name] = entry[1]
    if len(set(ranks.values())) != len(ranks):
        raise CorpusError(f"{path}: ranks must be unique")
    method = doc.get("method", "")
    info = CorpusInfo(
        source=source,
        retrieved=day,
        count=len(ranks),
        method=method if isinstance(method, str) else "",
    )
    return ranks, info


def read_ranking(path: Path, on_row: Callable[[], object] = lambda: None) -> Ranking:
    """Read a ranking in either supported layout (detected from the content); call *on_row*
    for each row read (the CLI's progress line)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(64).lstrip()
    except OSError as e:
        raise CorpusError(f"{path}: cannot read: {e}") from e
    if head.startswith(b"{"):
        return _read_top_packages_json(path, on_row)
    return _read_catalogue_tsv(path, on_row)


def _read_catalogue_tsv(path: Path, on_row: Callable[[], object]) -> Ranking:
    csv.field_size_limit(sys.maxsize)
    ranks: dict[str, int] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None or "name" not in header or TSV_RANK_COLUMN not in header:
            raise CorpusError(f"{path}: expected a header with 'name' and {TSV_RANK_COLUMN!r}")
        name_col, rank_col = header.index("name"), header.index(TSV_RANK_COLUMN)
        month_col = header.index("month") if "month" in header else None
        latest_month = ""
        for lineno, row in enumerate(reader, start=2):
            on_row()
            if len(row) <= rank_col or not row[rank_col].strip():
                continue
            try:
                rank = int(row[rank_col])
            except ValueError as e:
                raise CorpusError(
                    f"{path}:{lineno}: rank {row[rank_col]!r} is not an integer"
                ) from e
            name = canonicalize_name(row[name_col])
            if rank < 1:
                raise CorpusError(f"{path}:{lineno}: rank must be positive")
            ranks[name] = min(rank, ranks.get(name, rank))
            if month_col is not None and len(row) > month_col:
                latest_month = max(latest_month, row[month_col])
    if not ranks:
        raise CorpusError(f"{path}: no ranked rows")
    mtime = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC).date()
    month = f", latest release month in the listing {latest_month}" if latest_month else ""
    return Ranking(
        ranks=ranks,
        retrieved=mtime,
        source=(
            "PyPI download ranking (top 15,000 projects by downloads), as listed in the "
            f"workplace package catalogue ({path.name}, column {TSV_RANK_COLUMN}{month})"
        ),
        method=(
            f"rank = the catalogue's {TSV_RANK_COLUMN} value; names canonicalised (PEP 503); "
            "rows without a rank skipped; retrieved = the catalogue file's date"
        ),
    )


def _read_top_packages_json(path: Path, on_row: Callable[[], object]) -> Ranking:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorpusError(f"{path}: invalid JSON: {e}") from e
    rows = doc.get("rows") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise CorpusError(f"{path}: expected an object with a 'rows' list")
    counts: dict[str, int] = {}
    for i, row in enumerate(rows):
        on_row()
        if not isinstance(row, dict):
            raise CorpusError(f"{path}: rows[{i}] is not an object")
        project, count = row.get("project"), row.get("download_count")
        if not isinstance(project, str) or type(count) is not int:
            raise CorpusError(f"{path}: rows[{i}] needs 'project' (str), 'download_count' (int)")
        name = canonicalize_name(project)
        counts[name] = max(count, counts.get(name, count))
    if not counts:
        raise CorpusError(f"{path}: no rows")
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return Ranking(
        ranks={name: i for i, (name, _) in enumerate(ordered, start=1)},
        retrieved=_parse_day(doc.get("last_update")),
        source=f"PyPI top projects by download count ({path.name}, 'top packages' JSON layout)",
        method=(
            "rank = position by download_count, descending (ties by name); names canonicalised "
            "(PEP 503); retrieved = the file's last_update"
        ),
    )


def _parse_day(value: Any) -> dt.date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def top_n(ranks: Mapping[str, int], n: int | None) -> list[tuple[str, int]]:
    """The names ranked ``1..n`` (all when ``n`` is None), best first, ranks kept as given."""
    ordered = sorted(ranks.items(), key=lambda kv: (kv[1], kv[0]))
    return [(name, rank) for name, rank in ordered if n is None or rank <= n]


def corpus_document(
    names: Iterable[tuple[str, int]], *, source: str, retrieved: dt.date, method: str
) -> dict[str, Any]:
    pairs = [[name, rank] for name, rank in names]
    return {
        "source": source,
        "retrieved": retrieved.isoformat(),
        "method": method,
        "count": len(pairs),
        "names": pairs,
    }


def dump_corpus(doc: Mapping[str, Any]) -> str:
    """JSON with one ``[name, rank]`` pair per line, so refreshes diff readably."""
    head = {k: v for k, v in doc.items() if k != "names"}
    lines = [json.dumps(pair, ensure_ascii=True) for pair in doc["names"]]
    body = json.dumps(head, indent=2, ensure_ascii=True)[:-2]  # drop the closing "\n}"
    return body + ',\n  "names": [\n    ' + ",\n    ".join(lines) + "\n  ]\n}\n"
