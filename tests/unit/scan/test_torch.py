"""PyTorch checkpoints: real ``torch.save`` output passes, payloads in ``data.pkl`` are found
whatever the wrapping (zip, deflate, legacy formats, broken streams), and zip tricks that made
other scanners skip members are findings."""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import tarfile
import warnings
import zipfile
from pathlib import Path

import py7zr
import pytest
import torch

from proxy.scan import scan_file
from tests.unit.scan.corpus import (
    PROTO2,
    STOP,
    Reduce,
    glob,
    malicious_pickle,
    rezip,
    ustr,
    write,
)
from tests.unit.scan.test_pickle import imports, rules


def state_dict() -> dict[str, object]:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    optim = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 4)).sum().backward()
    optim.step()
    return {
        "model": model.state_dict(),
        "optim": optim.state_dict(),
        "epoch": 3,
        "extra": collections.OrderedDict(
            half=torch.ones(2, dtype=torch.float16),
            bf16=torch.ones(2, dtype=torch.bfloat16),
            ints=torch.arange(5),
            flags=torch.tensor([True, False]),
            cplx=torch.ones(2, dtype=torch.complex64),
            view=torch.arange(10.0)[2:6],
            param=torch.nn.Parameter(torch.zeros(3)),
            size=torch.Size([2, 3]),
            blob=b"\x00\x01",
        ),
    }


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    torch.save(state_dict(), path)
    return path


@pytest.fixture(scope="module")
def evil_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("evil") / "evil.pt"
    torch.save({"w": torch.zeros(2), "hook": Reduce(os.system, "echo pwned")}, path)
    return path


def test_real_torch_save_is_clean(checkpoint: Path) -> None:
    result = scan_file(checkpoint)
    assert (result.format, result.findings) == ("pytorch-zip", ())


def test_legacy_torch_save_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "legacy.bin"
    torch.save(state_dict(), path, _use_new_zipfile_serialization=False)
    result = scan_file(path)
    assert (result.format, result.findings) == ("pytorch-legacy", ())


def test_payload_in_data_pkl_is_found_with_its_location(evil_checkpoint: Path) -> None:
    result = scan_file(evil_checkpoint)
    assert result.format == "pytorch-zip"
    assert imports(result) == {"posix.system"}
    assert {f.location for f in result.findings} == {"evil/data.pkl"}


def test_payload_in_legacy_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "legacy.bin"
    torch.save(
        {"w": torch.zeros(2), "x": Reduce(os.system, "id")},
        path,
        _use_new_zipfile_serialization=False,
    )
    result = scan_file(path)
    assert (result.format, imports(result)) == ("pytorch-legacy", {"posix.system"})


def test_legacy_checkpoint_with_bad_storage_size(tmp_path: Path) -> None:
    path = tmp_path / "legacy.bin"
    torch.save({"w": torch.zeros(4)}, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    assert scan_file(path).clean
    write(path, data[:-8])  # last storage cut short
    assert rules(scan_file(path)) == {"pickle-malformed"}


def test_text_protocol_payload_in_data_pkl(checkpoint: Path, tmp_path: Path) -> None:
    evil = rezip(checkpoint, tmp_path / "m.pt", {"/data.pkl": b"cos\nsystem\n(S'id'\ntR."})
    assert imports(scan_file(evil)) == {"os.system"}


def test_broken_data_pkl_is_reported_even_without_imports(checkpoint: Path, tmp_path: Path) -> None:
    evil = rezip(checkpoint, tmp_path / "m.pt", {"/data.pkl": b"\x80\x02}q\x00(X\x01"})
    assert rules(scan_file(evil)) == {"pickle-malformed"}


def test_nullifai_broken_pickle_in_checkpoint(checkpoint: Path, tmp_path: Path) -> None:
    broken = malicious_pickle(2)[:-1] + b"\x00\xff\xfe"
    result = scan_file(rezip(checkpoint, tmp_path / "m.pt", {"/data.pkl": broken}))
    assert imports(result) == {"posix.system"}
    assert "pickle-malformed" in rules(result)


def test_checkpoint_recompressed_with_deflate(evil_checkpoint: Path, tmp_path: Path) -> None:
    path = tmp_path / "deflated.pt"
    with zipfile.ZipFile(evil_checkpoint) as zin, zipfile.ZipFile(path, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info), compress_type=zipfile.ZIP_DEFLATED)
    assert imports(scan_file(path)) == {"posix.system"}


def test_checkpoint_wrapped_in_7z_is_unscannable(evil_checkpoint: Path, tmp_path: Path) -> None:
    path = tmp_path / "model.bin"  # nullifAI: a torch file compressed with 7z, odd extension
    with py7zr.SevenZipFile(path, "w") as archive:
        archive.write(evil_checkpoint, "evil.pt")
    result = scan_file(path)
    assert (result.format, rules(result)) == ("7z", {"unscannable"})


def test_torchscript_archive_is_flagged(tmp_path: Path) -> None:
    path = tmp_path / "scripted.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # jit is deprecated, still loadable
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    result = scan_file(path)
    assert result.format == "torchscript"
    assert "torchscript-code" in rules(result)


def _legacy_tar(path: Path, main_pickle: bytes) -> Path:
    """A v0.1.1 checkpoint (torch can no longer write these): one float storage, one tensor."""
    storage_record = (
        PROTO2 + ustr("0") + ustr("cpu") + glob("torch", "FloatStorage") + b"\x87" + STOP
    )
    tensor_record = PROTO2 + ustr("t0") + ustr("0") + glob("torch", "FloatTensor") + b"\x87" + STOP
    members = {
        "sys_info": pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2),
        "pickle": main_pickle,
        "storages": pickle.dumps(1, protocol=2) + storage_record + struct.pack("<q", 3)
        + struct.pack("<3f", 1, 2, 3) + pickle.dumps([], protocol=2),
        "tensors": pickle.dumps(1, protocol=2) + tensor_record
        + struct.pack("<ii", 1, 0) + struct.pack("<qqq", 3, 1, 0),
    }  # fmt: skip
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_legacy_tar_checkpoint(tmp_path: Path) -> None:
    main = PROTO2 + b"}" + ustr("w") + ustr("t0") + b"Qs" + STOP
    clean = scan_file(_legacy_tar(tmp_path / "a.tar", main))
    assert (clean.format, clean.findings) == ("pytorch-legacy-tar", ())
    evil = scan_file(_legacy_tar(tmp_path / "b.tar", malicious_pickle(2)))
    assert imports(evil) == {"posix.system"}
    assert {f.location for f in evil.findings} == {"pickle"}


def _patch(path: Path, member: str, offset: int, new: bytes, *, data: bool = False) -> Path:
    """Overwrite bytes of a member's local header (or of its data) in place."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    raw = bytearray(path.read_bytes())
    start = info.header_offset
    if data:
        nlen, elen = struct.unpack("<HH", raw[start + 26 : start + 30])
        start += 30 + nlen + elen
    raw[start + offset : start + offset + len(new)] = new
    return write(path, bytes(raw))


def _copy(src: Path, dst: Path) -> Path:
    return write(dst, src.read_bytes())


def test_zip_header_tricks_are_findings(checkpoint: Path, tmp_path: Path) -> None:
    mismatch = _patch(_copy(checkpoint, tmp_path / "a.pt"), "model/data.pkl", 30, b"MODEL")
    assert rules(scan_file(mismatch)) == {"container-malformed"}
    flagged = _patch(_copy(checkpoint, tmp_path / "b.pt"), "model/data.pkl", 6, b"\x01")
    assert rules(scan_file(flagged)) == {"unscannable"}
    with zipfile.ZipFile(checkpoint) as zf:
        pkl = zf.read("model/data.pkl")
    at = pkl.index(b"epoch")
    crc = _patch(_copy(checkpoint, tmp_path / "c.pt"), "model/data.pkl", at, b"EPOCH", data=True)
    assert rules(scan_file(crc)) == {"container-malformed"}


def test_duplicate_and_escaping_member_names(tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.txt", "one")
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("a.txt", "two")
        zf.writestr("../../etc/cron.d/x", "* * * * * root id")
    assert rules(scan_file(path)) == {"container-malformed", "archive-path"}


def test_large_checkpoint_is_not_read_in_full(tmp_path: Path) -> None:
    path = tmp_path / "big.pt"
    torch.save({"w": torch.zeros(16 << 20)}, path)  # 64 MiB of tensor data
    result = scan_file(path)
    assert result.clean
    assert result.bytes_scanned < 1 << 20
