"""Non-torch formats: NumPy, joblib, safetensors, GGUF, Keras (.keras and .h5) and ONNX, each
written by its real library where one exists."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import gguf
import h5py  # type: ignore[import-untyped]
import joblib  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
import onnx
import pytest
import safetensors.numpy
from onnx import TensorProto, external_data_helper, helper, numpy_helper

from proxy.scan import scan_file
from tests.unit.scan.corpus import (
    CHATML,
    GET_FILE_LAYER,
    KERAS_DENSE,
    LAMBDA_LAYER,
    LLAMA3,
    MISTRAL,
    OS_FUNCTION_LAYER,
    SSTI,
    Reduce,
    keras_with,
    keras_zip,
    safetensors_bytes,
    write,
)
from tests.unit.scan.test_pickle import imports, rules

# -- NumPy ------------------------------------------------------------------------------------


def test_numeric_npy_and_npz_are_clean(tmp_path: Path) -> None:
    structured = np.zeros(3, dtype=[("a", "<f4"), ("b", "<i8", (2,)), ("t", "<M8[ns]")])
    np.save(tmp_path / "a.npy", np.arange(12, dtype=np.float64).reshape(3, 4))
    np.save(tmp_path / "s.npy", structured)
    np.savez(tmp_path / "b.npz", x=np.ones(3), y=np.array(["a", "b"]), s=structured)
    np.savez_compressed(tmp_path / "c.npz", x=np.zeros(1000, np.int16))
    assert [scan_file(tmp_path / n).format for n in ("a.npy", "s.npy")] == ["npy", "npy"]
    for name in ("a.npy", "s.npy", "b.npz", "c.npz"):
        assert scan_file(tmp_path / name).clean, name
    assert scan_file(tmp_path / "b.npz").format == "npz"


def test_object_arrays_are_findings(tmp_path: Path) -> None:
    np.save(tmp_path / "o.npy", np.array([1, "a", None], dtype=object), allow_pickle=True)
    assert rules(scan_file(tmp_path / "o.npy")) == {"numpy-object"}
    evil = np.array([Reduce(os.system, "id")], dtype=object)
    np.savez(tmp_path / "e.npz", ok=np.ones(2), evil=evil)
    result = scan_file(tmp_path / "e.npz")
    assert rules(result) == {"numpy-object", "pickle-import"}
    assert {f.location for f in result.findings} == {"evil.npy"}


def test_unparseable_npy_header(tmp_path: Path) -> None:
    header = b"{'descr': __import__('os').system('id'), 'shape': (1,)}"
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header
    assert rules(scan_file(write(tmp_path / "x.npy", data))) == {"numpy-malformed"}


# -- joblib -----------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3)])
def test_joblib_dumps(tmp_path: Path, compress: object) -> None:
    arrays = {"w": np.random.default_rng(0).random((64, 8)), "i": np.arange(7), "s": "x"}
    joblib.dump(arrays, tmp_path / "ok.joblib", compress=compress)
    ok = scan_file(tmp_path / "ok.joblib")
    assert ok.clean, ok.findings
    assert ok.format.endswith("joblib")
    joblib.dump(
        {**arrays, "model": Reduce(os.system, "id")}, tmp_path / "evil.joblib", compress=compress
    )
    assert imports(scan_file(tmp_path / "evil.joblib")) == {"posix.system"}


def test_joblib_object_array_payload(tmp_path: Path) -> None:
    evil = np.array([Reduce(os.system, "id"), 1], dtype=object)
    joblib.dump({"a": np.ones(3), "o": evil, "b": np.zeros(4)}, tmp_path / "j.pkl")
    assert imports(scan_file(tmp_path / "j.pkl")) == {"posix.system"}


# -- safetensors --------------------------------------------------------------------------------


def test_real_safetensors_file_is_clean(tmp_path: Path) -> None:
    tensors: dict[str, npt.NDArray[Any]] = {
        "a": np.zeros((3, 4), np.float32),
        "b": np.arange(5, dtype=np.int64),
        "c": np.ones((2, 2), np.float16),
        "empty": np.zeros((0, 3), np.uint8),
    }
    safetensors.numpy.save_file(tensors, tmp_path / "m.safetensors", metadata={"format": "np"})
    result = scan_file(tmp_path / "m.safetensors")
    assert (result.format, result.findings) == ("safetensors", ())


GOOD: dict[str, object] = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}


@pytest.mark.parametrize(
    ("header", "data", "reason"),
    [
        (
            {**GOOD, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},
            bytes(12),
            "overlaps",
        ),
        ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(8), "outside"),
        ({**GOOD, "b": {"dtype": "U8", "shape": [2], "data_offsets": [10, 12]}}, bytes(12), "gap"),
        (GOOD, bytes(16), "data section has 16"),
        ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8), "needs 12"),
        ({"a": {"dtype": "PY_OBJECT", "shape": [1], "data_offsets": [0, 8]}}, bytes(8), "dtype"),
        ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, bytes(8), "shape"),
        ({**GOOD, "__metadata__": {"x": 1}}, bytes(8), "__metadata__"),
    ],
    ids=["overlap", "out-of-bounds", "gap", "size", "length", "dtype", "shape", "metadata"],
)
def test_bad_safetensors_headers(
    tmp_path: Path, header: dict[str, object], data: bytes, reason: str
) -> None:
    result = scan_file(write(tmp_path / "m.safetensors", safetensors_bytes(header, data)))
    assert result.format == "safetensors"
    assert [f.rule for f in result.findings] == ["safetensors-header"]
    assert reason in result.findings[0].message


def test_safetensors_duplicate_keys_and_truncation(tmp_path: Path) -> None:
    raw = b'{"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "a": {}}'
    dup = write(tmp_path / "d.st", struct.pack("<Q", len(raw)) + raw + b"\x00")
    assert "duplicate key" in scan_file(dup).findings[0].message
    cut = write(tmp_path / "c.st", safetensors_bytes(GOOD, bytes(8))[:-3])
    assert "outside the data" in scan_file(cut).findings[0].message
    inside_header = write(tmp_path / "h.st", safetensors_bytes(GOOD, bytes(8))[:20])
    assert scan_file(inside_header).format == "unknown"  # no longer claims to be safetensors


def test_big_safetensors_reads_only_the_header(tmp_path: Path) -> None:
    size = 256 << 20
    header = {"w": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}}
    path = write(tmp_path / "big.safetensors", safetensors_bytes(header, b""))
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size + size)  # sparse: costs no disk
    result = scan_file(path)
    assert result.clean
    assert result.bytes_scanned < 1 << 20


# -- GGUF ---------------------------------------------------------------------------------------


def write_gguf(path: Path, template: str | None, **named: str) -> Path:
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_name("tiny")
    writer.add_token_list(["<s>", "</s>", "hello"])
    if template is not None:
        writer.add_chat_template(template)
    for name, text in named.items():
        writer.add_string(f"tokenizer.chat_template.{name}", text)
    writer.add_tensor("tok_embd", np.zeros((4, 32), np.float32))
    writer.add_tensor("out", np.ones((2, 32), np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize(
    "template", [None, CHATML, LLAMA3, MISTRAL], ids=["none", "chatml", "llama3", "mistral"]
)
def test_gguf_with_ordinary_templates_is_clean(tmp_path: Path, template: str | None) -> None:
    result = scan_file(write_gguf(tmp_path / "m.gguf", template))
    assert (result.format, result.findings) == ("gguf", ())


@pytest.mark.parametrize("name", sorted(SSTI))
def test_gguf_with_sandbox_escaping_template(tmp_path: Path, name: str) -> None:
    result = scan_file(write_gguf(tmp_path / "m.gguf", SSTI[name]))
    assert result.format == "gguf"
    assert rules(result) == {"gguf-template"}


def test_gguf_named_template_is_checked_too(tmp_path: Path) -> None:
    result = scan_file(write_gguf(tmp_path / "m.gguf", CHATML, tool_use=SSTI["class-mro"]))
    assert rules(result) == {"gguf-template"}
    assert "tokenizer.chat_template.tool_use" in result.findings[0].message


def test_malformed_gguf(tmp_path: Path) -> None:
    data = write_gguf(tmp_path / "m.gguf", CHATML).read_bytes()
    assert rules(scan_file(write(tmp_path / "cut.gguf", data[:-64]))) == {"gguf-malformed"}
    huge = data[:16] + struct.pack("<Q", 1 << 40) + data[24:]  # absurd metadata count
    assert rules(scan_file(write(tmp_path / "huge.gguf", huge))) == {"gguf-malformed"}


# -- Keras --------------------------------------------------------------------------------------


def test_keras_zip(tmp_path: Path) -> None:
    ok = scan_file(keras_zip(tmp_path / "ok.keras", KERAS_DENSE))
    assert (ok.format, ok.findings) == ("keras", ())
    lam = scan_file(keras_zip(tmp_path / "l.keras", keras_with(LAMBDA_LAYER)))
    assert rules(lam) == {"keras-lambda"}
    assert {f.location for f in lam.findings} == {"config.json"}
    mod = scan_file(keras_zip(tmp_path / "m.keras", keras_with(OS_FUNCTION_LAYER)))
    assert rules(mod) == {"keras-unsafe-config"}
    assert "module os" in mod.findings[0].message
    fetch = scan_file(keras_zip(tmp_path / "f.keras", keras_with(GET_FILE_LAYER)))
    assert rules(fetch) == {"keras-unsafe-config"}


def _h5(path: Path, config: dict[str, object] | None, options: dict[str, object]) -> Path:
    vlen = options.get("vlen", False)
    with h5py.File(path, "w", **{k: v for k, v in options.items() if k != "vlen"}) as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        if config is not None:
            text = json.dumps({"class_name": "Sequential", "config": config})
            f.attrs["model_config"] = text if vlen else text.encode()
        f.create_dataset("model_weights/dense/kernel", data=np.zeros((4, 2), np.float32))
    return path


@pytest.mark.parametrize(
    "options",
    [{}, {"vlen": True}, {"libver": "latest"}, {"userblock_size": 1024}],
    ids=["fixed", "vlen", "v2-headers", "userblock"],
)
def test_keras_h5(tmp_path: Path, options: dict[str, object]) -> None:
    legacy_lambda = {"class_name": "Lambda", "config": {"function": ["4wEA", None, None]}}
    ok = scan_file(_h5(tmp_path / "ok.h5", {"layers": [{"class_name": "Dense"}]}, options))
    assert (ok.format, ok.findings) == ("keras-h5", ())
    bad = scan_file(_h5(tmp_path / "bad.h5", {"layers": [legacy_lambda]}, options))
    assert (bad.format, rules(bad)) == ("keras-h5", {"keras-lambda"})


def test_plain_hdf5_weights_are_clean(tmp_path: Path) -> None:
    result = scan_file(_h5(tmp_path / "w.h5", None, {}))
    assert (result.format, result.findings) == ("hdf5", ())


# -- ONNX ---------------------------------------------------------------------------------------


def write_onnx(path: Path, location: str | None) -> Path:
    weight = numpy_helper.from_array(np.ones((2, 2), np.float32), "w")
    if location is not None:
        external_data_helper.set_external_data(weight, location=location, offset=0, length=16)
        weight.data_location = TensorProto.EXTERNAL
        weight.ClearField("raw_data")
    then = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "then",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])],
        initializer=[weight],
    )  # the external tensor sits in a subgraph of an If node
    node = helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=then)
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])],
    )
    onnx.save_model(helper.make_model(graph), str(path))
    return path


@pytest.mark.parametrize("location", [None, "weights.bin", "sub/dir/w.bin"])
def test_onnx_models_are_clean(tmp_path: Path, location: str | None) -> None:
    result = scan_file(write_onnx(tmp_path / "m.onnx", location))
    assert (result.format, result.findings) == ("onnx", ())


@pytest.mark.parametrize(
    "location", ["../../etc/passwd", "/etc/shadow", "C:\\secrets.bin", "a/../../b"]
)
def test_onnx_external_data_escaping_the_folder(tmp_path: Path, location: str) -> None:
    result = scan_file(write_onnx(tmp_path / "m.onnx", location))
    assert (result.format, rules(result)) == ("onnx", {"onnx-external-path"})


def test_hdf5_dense_root_attributes_fail_closed(tmp_path: Path) -> None:
    """Dense (fractal-heap) attribute storage is not parsed, so model_config could hide there."""
    with h5py.File(tmp_path / "d.h5", "w", libver="latest") as f:
        for i in range(12):
            f.attrs[f"attr{i}"] = i
    result = scan_file(tmp_path / "d.h5")
    assert (result.format, rules(result)) == ("hdf5", {"unscannable"})
    assert "dense storage" in result.findings[0].message
