"""Containers: bombs are stopped by the limits (never by running out of memory), nesting is
followed and bounded, compressed streams are scanned, and undecodable formats fail closed."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest

from proxy.scan import Limits, scan_file
from tests.unit.scan.corpus import malicious_pickle, safetensors_bytes, write
from tests.unit.scan.test_pickle import imports, rules

MiB = 1 << 20


def zeros_zip(path: Path, mib: int, *, name: str = "zeros.bin") -> Path:
    chunk = bytes(MiB)
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf,
        zf.open(name, "w") as f,
    ):
        for _ in range(mib):
            f.write(chunk)
    return path


def test_compression_ratio_bomb(tmp_path: Path) -> None:
    path = zeros_zip(tmp_path / "bomb.zip", 64)
    assert path.stat().st_size < MiB
    result = scan_file(path)
    assert rules(result) == {"container-bomb"}
    assert "expands" in result.findings[0].message


def test_total_size_bound(tmp_path: Path) -> None:
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(3):
            zf.writestr(f"part{i}.raw", os.urandom(2 * MiB))
    assert scan_file(path).clean
    result = scan_file(path, limits=Limits(max_total_bytes=5 * MiB))
    assert rules(result) == {"container-bomb"}


def test_entry_count_bound(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(50):
            zf.writestr(f"f{i}.txt", "x")
    assert scan_file(path, limits=Limits(max_entries=50)).clean
    assert rules(scan_file(path, limits=Limits(max_entries=49))) == {"container-bomb"}


def test_nesting_depth_bound(tmp_path: Path) -> None:
    data = malicious_pickle(2)
    for level in range(5):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(f"level{level}.bin", data)
        data = buf.getvalue()
    path = write(tmp_path / "nested.zip", data)
    deep = scan_file(path)
    assert imports(deep) == {"posix.system"}
    assert deep.findings[0].location == "level4.bin!/level3.bin!/level2.bin!/level1.bin!/level0.bin"
    shallow = scan_file(path, limits=Limits(max_depth=3))
    assert rules(shallow) == {"container-bomb"}


def _local(name: bytes, data: bytes) -> bytes:
    return struct.pack(
        "<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0, zlib.crc32(data), len(data), len(data),
        len(name), 0,
    ) + name + data  # fmt: skip


def _central(name: bytes, data: bytes, offset: int) -> bytes:
    return struct.pack(
        "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, zlib.crc32(data), len(data),
        len(data), len(name), 0, 0, 0, 0, 0, offset,
    ) + name  # fmt: skip


def test_overlapping_entries_bomb(tmp_path: Path) -> None:
    """Fifield's non-recursive bomb: entries whose data ranges share bytes."""
    inner = _local(b"b.txt", b"hello")
    outer = _local(b"a.bin", inner)
    cd = _central(b"a.bin", inner, 0) + _central(b"b.txt", b"hello", 30 + 5)
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 2, 2, len(cd), len(outer), 0)
    path = write(tmp_path / "overlap.zip", outer + cd + eocd)
    assert rules(scan_file(path)) == {"container-bomb"}


def test_gzip_bomb_is_stopped_while_streaming(tmp_path: Path) -> None:
    path = tmp_path / "bomb.gz"
    with gzip.open(path, "wb") as f:
        for _ in range(64):
            f.write(bytes(MiB))
    result = scan_file(path)
    assert rules(result) == {"container-bomb"}


@pytest.mark.parametrize(
    "compress",
    [gzip.compress, bz2.compress, lzma.compress, zlib.compress],
    ids=["gzip", "bz2", "xz", "zlib"],
)
def test_compressed_pickles_are_scanned(tmp_path: Path, compress: object) -> None:
    assert callable(compress)
    result = scan_file(write(tmp_path / "x.pkl.z", compress(malicious_pickle(4))))
    assert imports(result) == {"posix.system"}
    assert result.format.endswith("+pickle")


def test_truncated_compressed_pickle(tmp_path: Path) -> None:
    data = gzip.compress(malicious_pickle(2)[:-1] + bytes(4096))
    result = scan_file(write(tmp_path / "x.gz", data[: len(data) // 2 + 30]))
    assert imports(result) == {"posix.system"}
    assert {"pickle-malformed", "container-malformed"} <= rules(result)


def test_checkpoint_inside_tar_gz(tmp_path: Path) -> None:
    ckpt = io.BytesIO()
    with zipfile.ZipFile(ckpt, "w") as zf:
        zf.writestr("evil/data.pkl", malicious_pickle(2))
        zf.writestr("evil/version", "3\n")
    path = tmp_path / "bundle.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("models/evil.pt")
        info.size = len(ckpt.getvalue())
        tar.addfile(info, io.BytesIO(ckpt.getvalue()))
        readme = b"just text\n"
        info = tarfile.TarInfo("README.md")
        info.size = len(readme)
        tar.addfile(info, io.BytesIO(readme))
    result = scan_file(path)
    assert result.format == "gzip+tar"
    assert imports(result) == {"posix.system"}
    assert {f.location for f in result.findings} == {"models/evil.pt!/evil/data.pkl"}


def test_tar_member_escaping_the_folder(tmp_path: Path) -> None:
    path = tmp_path / "a.tar"
    with tarfile.open(path, "w") as tar:
        link = tarfile.TarInfo("innocent")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
        info = tarfile.TarInfo("../outside.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    result = scan_file(path)
    assert rules(result) == {"archive-path"}
    assert {f.location for f in result.findings} == {"innocent", "../outside.txt"}


@pytest.mark.parametrize(
    ("magic", "kind"),
    [
        (b"7z\xbc\xaf\x27\x1c\x00\x04", "7z"),
        (b"\x28\xb5\x2f\xfd", "zstd"),
        (b"\x04\x22\x4d\x18", "lz4"),
    ],
)
def test_undecodable_containers_fail_closed(tmp_path: Path, magic: bytes, kind: str) -> None:
    result = scan_file(write(tmp_path / "blob", magic + os.urandom(64)))
    assert (result.format, rules(result)) == (kind, {"unscannable"})


def test_corrupt_gzip_is_a_finding(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(b"some text " * 1000))
    data[20:30] = b"\xff" * 10
    assert rules(scan_file(write(tmp_path / "x.gz", bytes(data)))) == {"container-malformed"}


def test_plain_text_and_random_data_are_clean(tmp_path: Path) -> None:
    tokenizer = b'{"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0}}}'
    assert scan_file(write(tmp_path / "tokenizer.json", tokenizer)).format == "other"
    for i in range(20):
        assert scan_file(write(tmp_path / f"r{i}", os.urandom(4096))).clean
    assert scan_file(write(tmp_path / "empty", b"")).clean


def test_scanner_bugs_fail_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from proxy.scan import safetensors as st

    def boom(header: object, size: int) -> None:
        raise KeyError("unexpected")

    monkeypatch.setattr(st, "check_header", boom)
    header = {"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}
    path = write(tmp_path / "m.safetensors", safetensors_bytes(header, b"\x00"))
    result = scan_file(path)
    assert (result.format, rules(result)) == ("safetensors", {"unscannable"})
    assert "KeyError" in result.findings[0].message


def test_bomb_keeps_the_top_level_format(tmp_path: Path) -> None:
    result = scan_file(zeros_zip(tmp_path / "bomb.zip", 4), limits=Limits(max_total_bytes=MiB))
    assert (result.format, rules(result)) == ("zip", {"container-bomb"})
