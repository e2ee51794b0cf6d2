"""Issue #11.4: content the scanner cannot identify in a model file is a finding (fail closed),
and compressed pickle wrappers - joblib's legacy "Z-file" included - are unwrapped (streaming,
bounded) so the pickle inside is scanned.  Payloads are hand-assembled opcodes, never loaded."""

from __future__ import annotations

import bz2
import collections
import gzip
import io
import lzma
import os
import pickle
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import joblib  # type: ignore[import-untyped]
import pytest

from proxy.scan import Limits, scan_file
from proxy.scan.names import model_like
from tests.unit.scan.corpus import call, write
from tests.unit.scan.test_pickle import imports, rules

EVIL = call("os", "system", "echo pwned")
# Ordinary data with an allow-listed global (collections.OrderedDict): clean.
BENIGN = pickle.dumps(collections.OrderedDict(w=[1.0, 2.0], name="tiny"), protocol=2)
NOISE = b"\x80\x02\xf3\x11" + bytes(range(7, 250)) * 20  # starts like a pickle, is not one


def zfile(payload: bytes, *, declared: int | None = None, py2_space: bool = False) -> bytes:
    """joblib < 0.10 ``write_zfile``: ``ZF``, hex length padded to 19 bytes, zlib data."""
    length = f"{len(payload) if declared is None else declared:#x}".ljust(19)
    return b"ZF" + length.encode() + (b" " if py2_space else b"") + zlib.compress(payload, 3)


def lzma_alone(payload: bytes, dict_size: int = 1 << 23) -> bytes:
    filters = [{"id": lzma.FILTER_LZMA1, "dict_size": dict_size}]
    return lzma.compress(payload, format=lzma.FORMAT_ALONE, filters=filters)


WRAPPERS: dict[str, Callable[[bytes], bytes]] = {
    "joblib-zf": zfile,
    "joblib-zf-py2": lambda p: zfile(p, py2_space=True),
    "zlib": lambda p: zlib.compress(p, 3),
    "gzip": gzip.compress,
    "bz2": bz2.compress,
    "xz": lambda p: lzma.compress(p, format=lzma.FORMAT_XZ),
    "lzma": lzma_alone,
    "lzma-small-dict": lambda p: lzma_alone(p, 4096),  # 5d 00 10: joblib checks 2 bytes only
}


@pytest.mark.parametrize("wrap", WRAPPERS.values(), ids=WRAPPERS.keys())
def test_wrapped_malicious_pickle_gives_the_plain_pickles_finding(
    tmp_path: Path, wrap: Callable[[bytes], bytes]
) -> None:
    plain = scan_file(write(tmp_path / "plain.pkl", EVIL))
    wrapped = scan_file(write(tmp_path / "clf.joblib", wrap(EVIL)))
    assert wrapped.findings == plain.findings
    assert imports(wrapped) == {"os.system"}
    assert wrapped.format.endswith("+pickle")


@pytest.mark.parametrize("wrap", WRAPPERS.values(), ids=WRAPPERS.keys())
def test_wrapped_benign_pickle_is_clean(tmp_path: Path, wrap: Callable[[bytes], bytes]) -> None:
    result = scan_file(write(tmp_path / "clf.joblib", wrap(BENIGN)))
    assert result.clean, result.findings
    assert result.format.endswith("+pickle")


def test_hand_built_zfile_is_what_joblib_loads(tmp_path: Path) -> None:
    """The layout the tests build really is joblib's legacy format (a benign pickle only)."""
    for i, data in enumerate([zfile(BENIGN), zfile(BENIGN, py2_space=True)]):
        path = write(tmp_path / f"ok{i}.pkl", data)
        with pytest.warns(DeprecationWarning, match="joblib version less than 0.10"):
            loaded = joblib.load(path)
        assert loaded == collections.OrderedDict(w=[1.0, 2.0], name="tiny")
        assert scan_file(path).format == "joblib-zf+pickle"
    small_dict = write(tmp_path / "ok.joblib", lzma_alone(BENIGN, 4096))
    assert joblib.load(small_dict) == collections.OrderedDict(w=[1.0, 2.0], name="tiny")
    assert scan_file(small_dict).format == "lzma+pickle"


def test_real_joblib_zlib_and_lzma_dumps(tmp_path: Path) -> None:
    for method in ("zlib", "lzma"):
        joblib.dump({"w": [1.0, 2.0]}, tmp_path / f"ok.{method}.joblib", compress=(method, 3))
        ok = scan_file(tmp_path / f"ok.{method}.joblib")
        assert ok.clean, ok.findings
        assert ok.format == f"{method}+pickle"


def test_zfile_length_mismatch_and_corruption_are_findings(tmp_path: Path) -> None:
    lying = scan_file(write(tmp_path / "a.pkl", zfile(BENIGN, declared=len(BENIGN) + 1)))
    assert rules(lying) == {"container-malformed"}
    assert "declares" in lying.findings[0].message
    cut = zfile(EVIL + bytes(4096))
    truncated = scan_file(write(tmp_path / "b.pkl", cut[: len(cut) // 2]))
    assert {"container-malformed", "pickle-malformed"} <= rules(truncated)
    assert imports(truncated) == {"os.system"}  # imports before the break are still reported


def test_zfile_bomb_is_bounded(tmp_path: Path) -> None:
    # 64 MiB of zeros in ~64 KiB: stopped by the ratio bound while streaming, not by memory.
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(bytes(1 << 20)) for _ in range(64)) + comp.flush()
    data = b"ZF" + f"{64 << 20:#x}".ljust(19).encode() + body
    result = scan_file(write(tmp_path / "bomb.pkl", data))
    assert rules(result) == {"container-bomb"}
    assert result.format == "joblib-zf"
    small = scan_file(
        write(tmp_path / "b2.pkl", zfile(bytes(3 << 20))), limits=Limits(max_total_bytes=1 << 20)
    )
    assert rules(small) == {"container-bomb"}


# -- unrecognised content under model-like names ------------------------------------------------

MODEL_NAMES = [
    "pytorch_model.bin", "model.pt", "model.pth", "last.ckpt", "clf.pkl", "clf.pickle",
    "clf.joblib", "clf.dill", "clf.sav", "arr.npy", "arr.npz", "tf_model.h5", "w.hdf5",
    "m.keras", "saved_model.pb", "flax_model.msgpack", "spiece.model", "handler.mar",
    "sub/dir/MODEL.BIN", "clf.pkl.gz", "clf.joblib.xz", "model.safetensors", "model.onnx",
]  # fmt: skip
OTHER_NAMES = ["README.md", "config.json", "notes.txt", "image.png", "blob", "data.arrow", ".bin"]


def test_model_like_names() -> None:
    assert all(model_like(n) for n in MODEL_NAMES)
    assert not any(model_like(n) for n in OTHER_NAMES)
    assert not model_like("archive.gz")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_unknown_bytes_in_a_model_file_are_a_finding(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    result = scan_file(write(path, NOISE))
    assert rules(result) == {"unrecognised"}
    assert "unrecognised content in a model file" in result.findings[0].message


@pytest.mark.parametrize("name", OTHER_NAMES)
def test_unknown_bytes_elsewhere_keep_the_content_verdict(tmp_path: Path, name: str) -> None:
    result = scan_file(write(tmp_path / name, NOISE))
    assert (result.format, result.clean) == ("unknown", True)


def test_name_can_be_given_or_left_out(tmp_path: Path) -> None:
    path = write(tmp_path / "blob", NOISE)
    assert rules(scan_file(path, name="weights/model.bin")) == {"unrecognised"}
    assert scan_file(write(tmp_path / "x.bin", NOISE), name="").clean  # content only


def test_text_and_wrapped_noise_in_a_model_file(tmp_path: Path) -> None:
    text = scan_file(write(tmp_path / "model.pkl", b"just some words\n"))
    assert (text.format, rules(text)) == ("other", {"unrecognised"})
    assert text.findings[0].message.startswith("text in a model file")
    for wrap in (gzip.compress, zfile):
        wrapped = scan_file(write(tmp_path / "clf.pkl", wrap(NOISE)))
        assert rules(wrapped) == {"unrecognised"}, wrapped.format
    assert scan_file(write(tmp_path / "empty.bin", b"")).clean


def test_container_members_with_model_names(tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("weights/model.pkl", NOISE)
        zf.writestr("weights/raw.dat", NOISE)
        zf.writestr("README.md", "hello")
    result = scan_file(path)
    assert rules(result) == {"unrecognised"}
    assert {f.location for f in result.findings} == {"weights/model.pkl"}


# -- code-free formats are recognised, so they are not "unrecognised" ---------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _pb_len(field: int, data: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def sentencepiece_like(pieces: int) -> bytes:
    out = io.BytesIO()
    for i in range(pieces):
        piece = _pb_len(1, f"tok{i}".encode()) + b"\x15" + struct.pack("<f", -i / 7) + b"\x18\x01"
        out.write(_pb_len(1, piece))
    out.write(_pb_len(2, b"\x08\x01\x10\x80\x02"))  # trainer spec
    return out.getvalue()


def msgpack_like() -> bytes:
    """A Flax state dict: {"params": {"w": ext(1, <array bytes>), "n": [1, -2, 3.5]}}."""
    arr = bytes(300)
    ext = b"\xc8" + struct.pack(">H", len(arr)) + b"\x01" + arr
    inner = b"\x82" + b"\xa1w" + ext + b"\xa1n" + b"\x93\x01\xfe\xcb" + struct.pack(">d", 3.5)
    return b"\x81\xa6params" + inner


def test_protobuf_msgpack_and_ggml_are_recognised(tmp_path: Path) -> None:
    spm = scan_file(write(tmp_path / "tokenizer.model", sentencepiece_like(500)))
    assert (spm.format, spm.clean) == ("protobuf", True)
    flax = scan_file(write(tmp_path / "flax_model.msgpack", msgpack_like()))
    assert (flax.format, flax.clean) == ("msgpack", True)
    ggml = scan_file(write(tmp_path / "ggml-base.bin", b"lmgg" + os.urandom(512)))
    assert (ggml.format, ggml.clean) == ("ggml", True)


def test_broken_protobuf_and_msgpack_are_unrecognised(tmp_path: Path) -> None:
    spm = sentencepiece_like(50)
    assert rules(scan_file(write(tmp_path / "a.model", spm[:-3]))) == {"unrecognised"}
    flax = msgpack_like()
    assert rules(scan_file(write(tmp_path / "b.msgpack", flax[:-1]))) == {"unrecognised"}
    assert rules(scan_file(write(tmp_path / "c.msgpack", flax + b"\x00"))) == {"unrecognised"}
    groups = b"\x0b\x0c" * 10  # protobuf start/end group: never in these files
    assert rules(scan_file(write(tmp_path / "d.pb", groups))) == {"unrecognised"}


def test_scanner_bug_in_a_model_file_is_a_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from proxy.scan import wire

    def boom(r: object) -> None:
        raise KeyError("unexpected")

    monkeypatch.setattr(wire, "identify", boom)
    result = scan_file(write(tmp_path / "model.bin", NOISE))
    assert rules(result) == {"unscannable"}
    assert "KeyError" in result.findings[0].message
