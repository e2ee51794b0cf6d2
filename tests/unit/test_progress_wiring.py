"""Each long verb advances its progress line once per item (issue #13): run in-process with a
terminal for stderr and no throttling, so every step is drawn."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

import proxy.progress
from mirror_store.blobs import LocalBlobStore
from mirror_store.metadata import SqliteMetadata
from proxy.cli import main
from proxy.store_admin import gc
from proxy.trust.records import Served, TrustRecords
from tests.unit.facts.osv_support import DATA
from tests.unit.test_progress import FakeStream


def _terminal(monkeypatch: pytest.MonkeyPatch) -> FakeStream:
    """stderr is a terminal and nothing is throttled (in the test body: pytest's capture
    replaces sys.stderr once fixtures are set up)."""
    stream = FakeStream(tty=True)
    monkeypatch.setattr("sys.stderr", stream)
    monkeypatch.setattr(proxy.progress, "INTERVAL", 0.0)
    for name in list(os.environ):
        if name.startswith("AIRLOCK_"):
            monkeypatch.delenv(name)
    return stream


def _steps(stream: FakeStream, label: str) -> list[str]:
    return [p for p in stream.getvalue().split("\r") if p.startswith(label + ":")]


def test_gc_counts_every_blob(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _terminal(monkeypatch)
    store = LocalBlobStore(tmp_path)
    for data in (b"a", b"b"):
        w = store.writer({})
        w.write(data)
        w.commit()
    assert gc(tmp_path, dry_run=True, min_age=0) == 0
    shown = [f"gc: {n}/2 blobs looked at ({50 * n}%)" for n in (0, 0, 1, 1, 2)]
    summary = "gc: 2 unreferenced blobs, 2 bytes (dry run); 0 abandoned temp files (0 bytes)"
    # each step redrawn under its "would remove" line; the summary after the erased line
    assert _steps(terminal, "gc") == [
        *shown,
        summary + " to remove (dry run); 0 downloads in progress left alone\n",
    ]


def test_osv_import_counts_every_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _terminal(monkeypatch)
    assert main(["osv", "import", str(DATA / "openssf"), "--out", str(tmp_path / "o.json")]) == 0
    assert _steps(terminal, "osv import") == [f"osv import: {n} files read" for n in range(8)]


@pytest.mark.parametrize("layout", ["tsv", "json"])
def test_facts_refresh_counts_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    terminal = _terminal(monkeypatch)
    src = tmp_path / "ranking"
    if layout == "tsv":
        src.write_text("name\trank_among_15000_most_downloaded\na\t1\nb\t2\n", encoding="utf-8")
    else:
        rows = [{"project": p, "download_count": 9} for p in "ab"]
        src.write_text(json.dumps({"rows": rows}), encoding="utf-8")
    argv = ["facts", "refresh-popular", "--from", str(src), "--out", str(tmp_path / "p.json")]
    assert main(argv) == 0
    label = "facts refresh-popular"
    assert _steps(terminal, label) == [f"{label}: {n} rows read" for n in range(3)]


async def _fill(store: Path) -> None:
    meta = SqliteMetadata(store / "metadata.sqlite3")
    records = await asyncio.to_thread(TrustRecords, meta)
    for i, name in enumerate(["a", "b", "a"]):
        await records.record_served(
            Served("ci", "pypi", name, "1", f"{name}-1.whl", f"{i:064x}", "up", "r1")
        )
    await meta.close()


def test_bom_counts_every_served_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _terminal(monkeypatch)
    asyncio.run(_fill(tmp_path))
    monkeypatch.setenv("AIRLOCK_STORE__PATH", str(tmp_path))
    out = tmp_path / "bom.json"
    assert main(["bom", "-o", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["bomFormat"] == "CycloneDX"
    steps = [f"bom: {n}/3 served records ({100 * n // 3}%)" for n in range(4)]
    assert _steps(terminal, "bom") == [
        *steps,
        f"bom: 3 served records, 3 components, written to {out}\n",
    ]


def test_bom_piped_prints_nothing_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _terminal(monkeypatch)
    piped = FakeStream(tty=False)
    monkeypatch.setattr("sys.stderr", piped)
    asyncio.run(_fill(tmp_path))
    monkeypatch.setenv("AIRLOCK_STORE__PATH", str(tmp_path))
    assert main(["bom", "-o", str(tmp_path / "bom.json")]) == 0
    assert piped.getvalue() == ""
