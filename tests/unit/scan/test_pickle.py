"""Plain pickles: published attack techniques are flagged, ordinary data pickles pass, and
anything ``pickle.load`` could choke on after running a payload is a finding."""

from __future__ import annotations

import builtins
import collections
import importlib
import os
import pickle
import pkgutil
import runpy
import struct
from pathlib import Path

import numpy as np
import pytest

from proxy.scan import Finding, ScanResult, load_allowlist, scan_file
from tests.unit.scan.corpus import (
    MEMOIZE,
    POP,
    PROTO2,
    PROTO4,
    REDUCE,
    STACK_GLOBAL,
    STOP,
    TUPLE1,
    Reduce,
    binget,
    call,
    glob,
    malicious_pickle,
    ustr,
    write,
)


def rules(result: ScanResult) -> set[str]:
    return {f.rule for f in result.findings}


def imports(result: ScanResult) -> set[str]:
    """The dotted names of ``pickle-import`` findings."""
    out = set()
    for f in result.findings:
        if f.rule == "pickle-import" and f.message.startswith("pickle imports "):
            out.add(f.message.split()[2])
    return out


def scan_bytes(tmp_path: Path, data: bytes, name: str = "model.bin") -> ScanResult:
    return scan_file(write(tmp_path / name, data))


@pytest.mark.parametrize("protocol", range(6))
def test_os_system_payload_is_flagged_in_every_protocol(tmp_path: Path, protocol: int) -> None:
    result = scan_bytes(tmp_path, malicious_pickle(protocol))
    assert result.format == "pickle"
    assert imports(result) == {"posix.system"}
    assert not result.clean


@pytest.mark.parametrize("protocol", range(6))
def test_ordinary_data_pickles_are_clean(tmp_path: Path, protocol: int) -> None:
    data = collections.OrderedDict(
        weights=np.arange(12, dtype=np.float32).reshape(3, 4),
        names=["a", "b"],
        meta={"step": 3, "lr": 0.1, "tags": {1, 2}, "blob": b"\x00\x01", "z": 1 + 2j},
    )
    result = scan_bytes(tmp_path, pickle.dumps(data, protocol=protocol))
    assert result == ScanResult("pickle", (), result.scanner_version, result.bytes_scanned)


def test_protocol0_text_payload_without_proto_header(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, b"cos\nsystem\n(S'echo pwned'\ntR.")
    assert (result.format, imports(result)) == ("pickle", {"os.system"})


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (Reduce(builtins.exec, "import os"), {"builtins.exec"}),
        (Reduce(importlib.import_module, "os"), {"importlib.import_module"}),
        (Reduce(pkgutil.resolve_name, "os:system"), {"pkgutil.resolve_name"}),
        (Reduce(runpy.run_path, "/tmp/x.py"), {"runpy.run_path"}),
        (
            Reduce(getattr, Reduce(__import__, "os"), "system"),
            {"builtins.getattr", "builtins.__import__"},
        ),
    ],
    ids=["exec", "import_module", "resolve_name", "runpy", "getattr-chain"],
)
def test_published_gadgets_are_flagged(tmp_path: Path, payload: Reduce, expected: set[str]) -> None:
    result = scan_bytes(tmp_path, pickle.dumps(payload, protocol=4))
    assert imports(result) == expected


def test_pip_main_payload(tmp_path: Path) -> None:
    """CVE-2025-1716: ``pip.main(['install', ...])`` was missing from picklescan's deny-list."""
    data = PROTO2 + glob("pip", "main") + b"]" + ustr("install") + b"a" + ustr("evil") + b"a"
    result = scan_bytes(tmp_path, data + TUPLE1 + REDUCE + STOP)
    assert imports(result) == {"pip.main"}


def test_stack_global_resolved_through_the_memo(tmp_path: Path) -> None:
    """picklescan#22: literal strings right before STACK_GLOBAL are decoys; memo holds the rest."""
    data = (
        PROTO4
        + ustr("os") + MEMOIZE + POP
        + ustr("system") + MEMOIZE + POP
        + ustr("collections") + ustr("OrderedDict") + POP + POP
        + binget(0) + binget(1) + STACK_GLOBAL
        + ustr("id") + TUPLE1 + REDUCE + STOP
    )  # fmt: skip
    result = scan_bytes(tmp_path, data)
    assert imports(result) == {"os.system"}


def test_stack_global_via_long_binput_and_text_put(tmp_path: Path) -> None:
    data = (
        PROTO4
        + ustr("subprocess") + b"r" + struct.pack("<I", 70000)
        + ustr("check_output") + b"p12\n"
        + POP + POP
        + b"j" + struct.pack("<I", 70000) + b"g12\n" + STACK_GLOBAL
        + ustr("id") + TUPLE1 + REDUCE + STOP
    )  # fmt: skip
    assert imports(scan_bytes(tmp_path, data)) == {"subprocess.check_output"}


def test_stack_global_with_computed_operands_is_flagged(tmp_path: Path) -> None:
    """A module name produced by a call cannot be resolved statically: fail closed."""
    inner = glob("builtins", "str") + b"(" + ustr("o") + b"t" + REDUCE
    data = PROTO4 + inner + ustr("system") + STACK_GLOBAL + ustr("id") + TUPLE1 + REDUCE + STOP
    result = scan_bytes(tmp_path, data)
    assert any("computed at load time" in f.message for f in result.findings)
    assert "builtins.str" in imports(result)


def test_stream_broken_right_after_the_payload(tmp_path: Path) -> None:
    """nullifAI: ``pickle.load`` runs the REDUCE, then fails; the scanner must not give up."""
    payload = malicious_pickle(2)[:-1] + b"\x00\x01 garbage that is no pickle"
    result = scan_bytes(tmp_path, payload)
    assert result.format == "pickle"
    assert imports(result) == {"posix.system"}
    assert "pickle-malformed" in rules(result)


@pytest.mark.parametrize(
    "data",
    [
        pickle.dumps({"a": 1}, protocol=2) + b"trailing",
        pickle.dumps({"a": 1}, protocol=4)[:-1],
        pickle.dumps({"a": 1}, protocol=4)[:-1] + b"\xff.",
        PROTO2 + b"}X" + struct.pack("<I", 1000) + b"short" + STOP,
        PROTO4 + b"\x95" + struct.pack("<Q", 1) + b"K\x05" + STOP,
        PROTO2 + b"]e" + STOP,
        PROTO2 + b"}" + binget(5) + STOP,
    ],
    ids=["trailing", "no-stop", "unknown-opcode", "truncated-arg", "frame", "no-mark", "memo"],
)
def test_malformed_pickles_are_findings(tmp_path: Path, data: bytes) -> None:
    result = scan_bytes(tmp_path, data)
    assert result.format == "pickle"
    assert rules(result) == {"pickle-malformed"}


def test_several_pickles_in_one_file_are_all_scanned(tmp_path: Path) -> None:
    benign = pickle.dumps([1, 2, 3], protocol=2)
    assert scan_bytes(tmp_path, benign * 3, "a.bin").clean
    result = scan_bytes(tmp_path, benign + malicious_pickle(4) + benign, "b.bin")
    assert imports(result) == {"posix.system"}


def test_extension_registry_opcodes_are_flagged(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, PROTO2 + b"\x82\x07" + b")" + REDUCE + STOP)
    assert any("copyreg extension 7" in f.message for f in result.findings)


def test_allow_list_can_be_extended(tmp_path: Path) -> None:
    path = write(tmp_path / "x.pkl", call("mypkg.models", "Config", "x") + call("other", "f"))
    assert imports(scan_file(path)) == {"mypkg.models.Config", "other.f"}
    extended = scan_file(path, extra_allowed_globals=["mypkg.models.Config"])
    assert imports(extended) == {"other.f"}
    wildcard = scan_file(path, extra_allowed_globals=["mypkg.models.*", "other.*"])
    assert wildcard.clean
    dunder = write(tmp_path / "y.pkl", call("other", "__init__"))
    assert not scan_file(dunder, extra_allowed_globals=["other.*"]).clean
    with pytest.raises(ValueError, match="invalid allow-list"):
        scan_file(path, extra_allowed_globals=["os.system; rm"])


def test_python2_names_map_to_their_python3_spelling(tmp_path: Path) -> None:
    ok = write(
        tmp_path / "ok.pkl", PROTO2 + glob("__builtin__", "set") + b"])" + TUPLE1 + REDUCE + STOP
    )
    assert scan_file(ok).clean
    bad = write(tmp_path / "bad.pkl", call("__builtin__", "eval", "1"))
    assert imports(scan_file(bad)) == {"__builtin__.eval"}


def test_shipped_allow_list_covers_checkpoints_not_gadgets() -> None:
    allowed = load_allowlist()
    assert {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor_v2",
        "torch.FloatStorage",
    } <= allowed
    assert {"numpy._core.multiarray._reconstruct", "numpy.dtype", "_codecs.encode"} <= allowed
    assert not {"builtins.getattr", "builtins.eval", "os.system", "pip.main"} & allowed


def test_text_and_random_binary_are_not_pickles(tmp_path: Path) -> None:
    text = scan_bytes(tmp_path, b'{"vocab_size": 32000, "model_type": "llama"}\n', "c.json")
    assert (text.format, text.clean) == ("other", True)
    readme = scan_bytes(tmp_path, b"copyright 2024\nall rights reserved\nimport os\n", "README")
    assert (readme.format, readme.clean) == ("other", True)
    for i, lines in enumerate([b"click\nnumpy\nrequests\n", b"isympy\nsympy\n", b"N.\x00\x00"]):
        other = scan_bytes(tmp_path, lines, f"t{i}.txt")
        assert other.clean, lines
    noise = b"\x80\x02\xf3\x11" + os.urandom(2048)
    plain = scan_bytes(tmp_path, noise, "noise")
    assert (plain.format, plain.clean) == ("unknown", True)
    # ... but not clean under a model file's name (fail closed: see test_unrecognised.py)
    assert rules(scan_bytes(tmp_path, noise, "noise.bin")) == {"unrecognised"}


def test_findings_name_the_location_and_read_as_sentences(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, malicious_pickle(2))
    assert result.findings == (
        Finding("pickle-import", "pickle imports posix.system (not on the allow-list)", ""),
    )
