"""The hub side of the hostile-upstream tests: one repo with one file per attack, the client
snippet that downloads them all, and the checks of what the client and the store kept.

Files that must show the resume bug are a little over 10 MiB: hub clients write in 10 MiB
chunks, so a transfer cut near its end leaves exactly 10 MiB in `.incomplete` and the resume
asks for `bytes=10485760-` (docs: hf-hub-protocol §5).  Every tampered byte lies in that head.
"""

from __future__ import annotations

import asyncio
import hashlib
import pickle
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mirror_store.blobs import LocalBlobStore
from proxy.store_admin import fsck
from tests.fakes.hf_blobs import GeneratedBlob
from tests.fakes.hf_client import ClientRun, hf0_python, hf1_python, hf_env, run_hf
from tests.fakes.hf_repos import GITATTRIBUTES, Repo, build_repo
from tests.fakes.hostile import Tamper, evil_pickle

REPO = "hostile/files"
MIB = 1024 * 1024
BIG = 10 * MIB + 300_000  # over one client chunk
SMALL = 400_000


def _text(size: int) -> bytes:
    line = b"a regular (non-LFS) file, verified by its git blob sha1\n"
    return (line * (size // len(line) + 1))[:size]


def benign_pickle() -> bytes:
    """What a pickled checkpoint looks like to the scanner: no globals, one big bytes value."""
    return pickle.dumps({"weights": bytes(range(256)) * (BIG // 256)}, protocol=4)


def hostile_repo() -> Repo:
    files: dict[str, Any] = {
        ".gitattributes": GITATTRIBUTES,
        "swap.bin": benign_pickle(),  # swapped for a same-length malicious pickle, first fetch
        "flip.parquet": GeneratedBlob(seed=2, length=BIG),  # one byte flipped, first fetch
        "wrong3.parquet": GeneratedBlob(seed=3, length=BIG),  # wrong for the first 3 fetches
        "longer.parquet": GeneratedBlob(seed=4, length=BIG),  # wrong head and 4 KB too long
        "shorter.parquet": GeneratedBlob(seed=5, length=SMALL),  # 1000 bytes short
        "regular.txt": _text(BIG),  # regular file: bytes do not match the git blob sha1
        "cut.parquet": GeneratedBlob(seed=6, length=SMALL),  # cut at a third
        "stall.parquet": GeneratedBlob(seed=7, length=SMALL),  # slowloris after 1000 bytes
        "gzip.parquet": GeneratedBlob(seed=8, length=SMALL),  # gzip although identity asked
    }
    return build_repo("model", REPO, [files], created_at=datetime(2024, 5, 1, tzinfo=UTC))


def hostile_rules() -> list[Tamper]:
    return [
        Tamper("/swap.bin", swap=evil_pickle(len(benign_pickle()))),
        Tamper("/flip.parquet", flip_at=1000),
        Tamper("/wrong3.parquet", flip_at=5000, times=3),
        Tamper("/longer.parquet", flip_at=7, extend=b"x" * 4096),
        Tamper("/shorter.parquet", truncate=1000),
        Tamper("/regular.txt", flip_at=123),
        Tamper("/cut.parquet", cut_at=SMALL // 3),
        Tamper("/stall.parquet", stall_at=1000),
        Tamper("/gzip.parquet", gzip=True),
    ]


FILES = [r.match.lstrip("/") for r in hostile_rules()]
# modes where the upstream never delivered the right bytes on the first fetch
WRONG_CONTENT = {"swap.bin", "flip.parquet", "wrong3.parquet", "longer.parquet", "regular.txt"}

SNIPPET = """
import glob, hashlib

def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()

files = {}
for name in FILES:
    try:
        path = download(REPO, name, revision=COMMIT)
    except Exception as e:
        files[name] = ["error", type(e).__name__, str(e)[:300]]
    else:
        files[name] = ["ok", sha256(path)]
blobs = {}
for path in glob.glob(os.path.join(cache_dir, "**", "blobs", "*"), recursive=True):
    blobs[os.path.basename(path)] = [sha256(path), os.path.getsize(path)]
result = {"version": hf.__version__, "files": files, "blobs": blobs}
"""


def client_python(generation: str) -> str:
    return {"2": sys.executable, "1": hf1_python(), "0": hf0_python()}[generation]


async def download_all(
    endpoint: str, home: Path, generation: str, commit: str, files: list[str] = FILES
) -> dict[str, Any]:
    snippet = f"REPO, COMMIT, FILES = {REPO!r}, {commit!r}, {files!r}\n" + SNIPPET
    run: ClientRun = await run_hf(
        snippet, hf_env(endpoint, home), python=client_python(generation), timeout=240
    )
    out: dict[str, Any] = run.ok()
    assert out["version"].startswith(f"{generation}."), out["version"]
    return out


@dataclass(frozen=True)
class Truth:
    """The right content of every file, by name and by the client's blob name (etag)."""

    sha256: dict[str, str]  # file name -> sha256
    by_etag: dict[str, tuple[str, int]]  # etag -> (sha256, size)

    @classmethod
    def of(cls, repo: Repo) -> Truth:
        files = repo.head.files
        return cls(
            {n: f.sha256 for n, f in files.items()},
            {f.etag: (f.sha256, f.size) for f in files.values()},
        )


def wrong_kept(out: dict[str, Any], truth: Truth) -> list[str]:
    """Everything the client kept that is not the right content (empty when all is well):
    a download that returned wrong bytes, or a complete blob in the cache with wrong bytes."""
    bad = [
        f"{name}: returned {result[1]}, expected {truth.sha256[name]}"
        for name, result in out["files"].items()
        if result[0] == "ok" and result[1] != truth.sha256[name]
    ]
    for blob, (digest, size) in out["blobs"].items():
        if blob.endswith(".incomplete"):
            continue
        want = truth.by_etag.get(blob)
        if want is None or want != (digest, size):
            bad.append(f"cache blob {blob}: sha256 {digest} size {size}, expected {want}")
    return bad


async def store_problems(store: Path, allowed: set[str]) -> list[str]:
    """Blobs in the proxy's store that are not right content (`allowed` sha256s), leftovers in
    tmp/, and what `airlock store fsck --dry-run` finds."""
    blobs = LocalBlobStore(store)
    problems = []
    for d in blobs.digests():
        if d not in allowed:
            problems.append(f"stored blob {d} is not any file's right content")
        if hashlib.sha256(blobs.blob_path(d).read_bytes()).hexdigest() != d:
            problems.append(f"stored blob {d} does not hash to its name")
    leftovers = list((store / "tmp").iterdir()) if (store / "tmp").exists() else []
    problems += [f"leftover temp file {p.name}" for p in leftovers]
    if await asyncio.to_thread(fsck, store, dry_run=True) != 0:
        problems.append("airlock store fsck reported problems")
    return problems
