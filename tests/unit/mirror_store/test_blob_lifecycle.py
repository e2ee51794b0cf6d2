"""A published blob's life after commit: found, read, quarantined (fsck) or deleted (gc).

``path`` answering None is what makes the serving layers fetch a blob again instead of sending a
file that is gone, and ``quarantine`` is what takes bad bytes out of the visible tree.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mirror_store.blobs import LocalBlobStore, VerificationError
from mirror_store.digest import Digest


def _put(store: LocalBlobStore, data: bytes) -> Digest:
    w = store.writer({"sha256": hashlib.sha256(data).hexdigest()}, len(data))
    w.write(data)
    return w.commit()


def test_open_reads_the_published_bytes(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    digest = _put(store, b"wheel bytes")
    with store.open(digest) as fh:
        assert fh.read() == b"wheel bytes"
    assert store.blob_path(digest) == store.path(digest)


def test_an_absent_blob_has_no_path(tmp_path: Path) -> None:
    """A digest that was never stored (or was removed) answers None, not a path to nothing."""
    store = LocalBlobStore(tmp_path)
    missing = Digest(hashlib.sha256(b"never stored").hexdigest())
    assert store.path(missing) is None
    assert not store.blob_path(missing).exists()


def test_quarantine_takes_the_blob_out_of_the_visible_tree(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    digest = _put(store, b"bytes that rotted on disk")
    keep = _put(store, b"a neighbour")
    dest = store.quarantine(digest)
    assert dest == tmp_path / "quarantine" / "sha256" / digest
    assert dest.read_bytes() == b"bytes that rotted on disk"
    assert store.path(digest) is None
    assert list(store.digests()) == [keep]


def test_delete_says_whether_the_blob_existed(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    digest = _put(store, b"unreferenced")
    assert store.delete(digest) is True
    assert store.path(digest) is None
    assert list(store.digests()) == []
    assert store.delete(digest) is False


def test_clean_tmp_removes_partial_writes_only(tmp_path: Path) -> None:
    """Partial writes left by a crash go; published blobs and other files stay."""
    store = LocalBlobStore(tmp_path)
    digest = _put(store, b"published")
    for name in ("blob-1.part", "blob-2.part"):  # what mkstemp names a writer's temp file
        (tmp_path / "tmp" / name).write_bytes(b"cut short")
    (tmp_path / "tmp" / "note.txt").write_text("not a partial blob")
    removed = store.clean_tmp()
    assert sorted(t.path.name for t in removed) == ["blob-1.part", "blob-2.part"]
    assert sorted(p.name for p in (tmp_path / "tmp").iterdir()) == ["note.txt"]
    assert store.path(digest) is not None


def test_identical_content_is_published_once(tmp_path: Path) -> None:
    """Write-once: a second commit of the same bytes keeps the first file and leaves no temp."""
    store = LocalBlobStore(tmp_path)
    first = _put(store, b"same")
    inode = (store.path(first) or tmp_path).stat().st_ino
    assert _put(store, b"same") == first
    assert (store.path(first) or tmp_path).stat().st_ino == inode
    assert list((tmp_path / "tmp").iterdir()) == []


def test_digests_lists_only_blobs_named_by_their_digest(tmp_path: Path) -> None:
    """A stray file or a directory in the fan-out is never taken for a blob."""
    store = LocalBlobStore(tmp_path)
    digest = _put(store, b"real")
    fan = tmp_path / "blobs" / "sha256" / digest[:2] / digest[2:4]
    (fan / "notes.txt").write_text("left by an operator")
    (fan / ("0" * 64)).mkdir()  # a digest-named directory is no blob either
    assert list(store.digests()) == [digest]


def test_a_refusal_names_every_problem(tmp_path: Path) -> None:
    """The reason logged for a refused body lists the size and each hash that differ."""
    store = LocalBlobStore(tmp_path)
    w = store.writer({"sha256": "0" * 64}, 100)
    w.write(b"nine byte")
    with pytest.raises(VerificationError) as e:
        w.commit()
    actual = hashlib.sha256(b"nine byte").hexdigest()
    assert str(e.value) == f"size expected 100 got 9; sha256 expected {'0' * 64} got {actual}"
