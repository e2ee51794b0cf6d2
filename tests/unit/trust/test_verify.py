"""``airlock verify`` inputs (requirements pins, a huggingface_hub cache, files) and the checks on
a verified statement (digest, name, predicate type, decision)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from proxy.cli import main
from proxy.trust.attest import PREDICATE_TYPE, STATEMENT_TYPE
from proxy.trust.verify_cli import (
    Item,
    UsageError,
    _approves,
    file_items,
    hf_cache_items,
    requirement_items,
)
from tests.ports import refusing_port

A, B, C = "a" * 64, "B" * 64, "c" * 64


def test_requirements_pins_with_continuations_and_comments(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text(
        "# comment --hash=sha256:" + C + "\n"
        f"tiny-lib==1.0 \\\n    --hash=sha256:{A} \\\n    --hash=sha256:{B}\n"
        "\n"
        f"tiny-app==2.0 --hash=sha256:{C}  # inline\n"
        "unpinned\n"
    )
    items = requirement_items(req)
    assert [(i.digest, i.group, i.name) for i in items] == [
        (A, "tiny-lib==1.0", None),
        (B.lower(), "tiny-lib==1.0", None),
        (C, "tiny-app==2.0", None),
    ]
    empty = tmp_path / "empty.txt"
    empty.write_text("requests\n")
    with pytest.raises(UsageError, match="no --hash"):
        requirement_items(empty)


def _cache(root: Path, repo: str, commit: str, files: dict[str, bytes]) -> None:
    base = root / repo
    for path, data in files.items():
        digest = hashlib.sha256(data).hexdigest()
        blob = base / "blobs" / digest
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = base / "snapshots" / commit / path
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))


def test_hf_cache_walks_snapshots_through_symlinks(tmp_path: Path) -> None:
    hub = tmp_path / "home" / "hub"
    _cache(
        hub, "models--acme--tiny", "c0ffee" * 6 + "abcd", {"config.json": b"{}", "sub/w.bin": b"w"}
    )
    _cache(hub, "datasets--acme--data", "f" * 40, {"data/train.jsonl": b"x\n"})
    (hub / ".locks").mkdir()
    items = hf_cache_items(tmp_path / "home")  # HF_HOME works as well as HF_HUB_CACHE
    assert {(i.name, i.digest) for i in items} == {
        ("config.json", hashlib.sha256(b"{}").hexdigest()),
        ("sub/w.bin", hashlib.sha256(b"w").hexdigest()),
        ("data/train.jsonl", hashlib.sha256(b"x\n").hexdigest()),
    }
    one = hf_cache_items(hub / "models--acme--tiny")
    assert len(one) == 2
    assert one[0].label.startswith("models--acme--tiny@c0ffeec0ffee/")
    with pytest.raises(UsageError, match="no huggingface_hub snapshots"):
        hf_cache_items(tmp_path)


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        file_items([tmp_path / "nope.whl"])


def _statement(**predicate: Any) -> dict[str, Any]:
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": "f.whl", "digest": {"sha256": A}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"decision": "allow", "project": "tiny-lib", "version": "1.0"} | predicate,
    }


@pytest.mark.parametrize(
    ("statement", "item", "reason"),
    [
        (_statement(), Item("f", A, "f.whl"), ""),
        (_statement(), Item("f", A, None), ""),
        (_statement(decision="monitor-deny"), Item("f", A, "f.whl"), "not an approval"),
        (_statement(), Item("f", C, "f.whl"), "another digest"),
        (_statement(), Item("f", A, "g.whl"), "names 'f.whl', not 'g.whl'"),
        (_statement() | {"predicateType": "x"}, Item("f", A, None), "predicate type"),
        (_statement() | {"_type": "x"}, Item("f", A, None), "in-toto Statement"),
    ],
)
def test_statement_checks(statement: dict[str, Any], item: Item, reason: str) -> None:
    ok, detail = _approves(statement, item)
    assert ok == (not reason)
    assert reason in detail


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--proxy", "http://airlock.invalid"]) == 2
    assert "nothing to verify" in capsys.readouterr().err
    f = tmp_path / "f.whl"
    f.write_bytes(b"x")
    assert main(["verify", str(f), "--proxy", "ftp://x"]) == 2
    assert main(["verify", str(tmp_path / "missing.whl")]) == 2
    with pytest.raises(SystemExit) as e:
        main(["verify", "--bogus"])
    assert e.value.code == 2


def test_unreachable_proxy_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "f.whl"
    f.write_bytes(b"x")
    with refusing_port() as down:
        url = f"http://127.0.0.1:{down}"
        assert main(["verify", str(f), "--proxy", url, "--timeout", "2"]) == 1
    assert "FAIL proxy" in capsys.readouterr().out
