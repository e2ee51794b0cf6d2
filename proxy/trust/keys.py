"""The proxy's attestation signing key: Ed25519, created once under the store, kept forever.

    <store>/keys/                          mode 0700
    <store>/keys/attestation-ed25519.pem   mode 0600, PKCS#8 PEM (unencrypted)

Creation is atomic and exclusive: the key is written and fsynced under a temporary name
(``O_CREAT | O_EXCL``, 0600) and hard-linked to its final name, which fails if it exists, so
two processes starting at once end up with one key and nobody ever reads a half-written file.
A key file that group or others may read or write is refused (the proxy does not start): a
leaked key would let anyone forge approvals.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from .dsse import keyid

KEY_DIR = "keys"
KEY_FILE = "attestation-ed25519.pem"


class KeyFileError(Exception):
    """The key file is unusable (wrong type, unsafe permissions, unreadable)."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    private: Ed25519PrivateKey
    keyid: str  # sha256 hex of the DER SubjectPublicKeyInfo
    path: Path

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def public_pem(self) -> bytes:
        return self.public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def key_path(store: Path) -> Path:
    return store / KEY_DIR / KEY_FILE


def load_or_create(store: Path) -> SigningKey:
    """The store's signing key, created on first use.  Blocking: call off the event loop."""
    directory = store / KEY_DIR
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(directory.stat().st_mode) & 0o077:
        os.chmod(directory, 0o700)
    path = directory / KEY_FILE
    if not path.exists():
        _create(path)
    return load(path)


def load(path: Path) -> SigningKey:
    st = path.stat()
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise KeyFileError(
            f"{path} is accessible to group or others (mode {stat.S_IMODE(st.st_mode):o}); "
            f"run: chmod 600 {path}"
        )
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as e:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key: {e}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 key")
    return SigningKey(key, keyid(key.public_key()), path)


def _create(path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # another process created it first
            os.link(tmp, path)  # atomic, and never replaces an existing key
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
