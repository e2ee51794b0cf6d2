"""The attestation key: created once (0600 in a 0700 directory), the same after a restart, one
key when two processes race, and refused when others may read it."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from proxy.trust.keys import KeyFileError, key_path, load, load_or_create


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_created_private_and_stable(tmp_path: Path) -> None:
    first = load_or_create(tmp_path / "store")
    path = key_path(tmp_path / "store")
    assert first.path == path
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    again = load_or_create(tmp_path / "store")
    assert again.keyid == first.keyid
    assert again.public_pem() == first.public_pem()
    assert again.public_pem().startswith(b"-----BEGIN PUBLIC KEY-----")


def test_racing_creators_agree_on_one_key(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: load_or_create(tmp_path).keyid, range(16)))
    assert len(set(keys)) == 1
    assert load(key_path(tmp_path)).keyid == keys[0]


def test_a_key_others_can_read_is_refused(tmp_path: Path) -> None:
    load_or_create(tmp_path)
    path = key_path(tmp_path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_or_create(tmp_path)


def test_a_key_of_another_type_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    path = key_path(tmp_path)
    path.parent.mkdir(mode=0o700)
    pem = generate_private_key(SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, pem)
    os.close(fd)
    with pytest.raises(KeyFileError, match="not an Ed25519 key"):
        load_or_create(tmp_path)
