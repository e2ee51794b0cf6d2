"""DSSE: PAE byte for byte (the spec's worked example), Ed25519 envelopes that verify, and every
kind of tampering refused."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from proxy.trust.dsse import IN_TOTO_PAYLOAD_TYPE, DsseError, keyid, pae, sign, verify

# RFC 8032 §7.1, test 1: a fixed key, so the envelope below is a known answer.
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"


def test_pae_matches_the_spec_example() -> None:
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_and_keeps_the_body_verbatim() -> None:
    assert pae("", b"") == b"DSSEv1 0  0 "
    assert pae("é", b"a b\n\x00") == b"DSSEv1 2 \xc3\xa9 5 a b\n\x00"
    body = b"x" * 1234
    assert pae(IN_TOTO_PAYLOAD_TYPE, body) == b"DSSEv1 28 application/vnd.in-toto+json 1234 " + body


def test_rfc8032_key_signs_over_pae_with_the_der_keyid() -> None:
    key = Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET)
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert raw.hex() == RFC8032_PUBLIC
    der = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert keyid(key.public_key()) == hashlib.sha256(der).hexdigest()

    env = sign(b"hello world", key, "http://example.com/HelloWorld")
    assert env["payloadType"] == "http://example.com/HelloWorld"
    assert base64.b64decode(env["payload"]) == b"hello world"
    [s] = env["signatures"]
    assert s["keyid"] == keyid(key.public_key())
    # The signature is over PAE, not the bare payload (Ed25519 is deterministic).
    expected = key.sign(b"DSSEv1 29 http://example.com/HelloWorld 11 hello world")
    assert base64.b64decode(s["sig"]) == expected
    assert verify(env, key.public_key(), "http://example.com/HelloWorld") == b"hello world"


@pytest.fixture
def signed() -> tuple[Ed25519PrivateKey, dict[str, object]]:
    key = Ed25519PrivateKey.generate()
    payload = json.dumps({"_type": "https://in-toto.io/Statement/v1", "n": 1}).encode()
    return key, sign(payload, key)


def _tamper_payload(env: dict[str, object]) -> None:
    body = base64.b64decode(str(env["payload"])).replace(b'"n": 1', b'"n": 2')
    env["payload"] = base64.b64encode(body).decode()


def _tamper_signature(env: dict[str, object]) -> None:
    sigs = env["signatures"]
    assert isinstance(sigs, list)
    raw = bytearray(base64.b64decode(sigs[0]["sig"]))
    raw[0] ^= 1
    sigs[0]["sig"] = base64.b64encode(bytes(raw)).decode()


def _retype(env: dict[str, object]) -> None:
    env["payloadType"] = "application/json"


def _unsigned(env: dict[str, object]) -> None:
    env["signatures"] = []


def _bad_base64(env: dict[str, object]) -> None:
    env["payload"] = "not base64!"


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (_tamper_payload, "does not verify"),
        (_tamper_signature, "does not verify"),
        (_retype, "payloadType"),
        (_unsigned, "no signatures"),
        (_bad_base64, "base64"),
    ],
)
def test_tampered_envelopes_are_refused(
    signed: tuple[Ed25519PrivateKey, dict[str, object]],
    tamper: Callable[[dict[str, object]], None],
    message: str,
) -> None:
    key, env = signed
    assert verify(env, key.public_key())  # the untouched one verifies
    bad = copy.deepcopy(env)
    tamper(bad)
    with pytest.raises(DsseError, match=message):
        verify(bad, key.public_key())


def test_another_key_does_not_verify(signed: tuple[Ed25519PrivateKey, dict[str, object]]) -> None:
    _, env = signed
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(DsseError, match="no signature by key"):
        verify(env, other)
    sigs = env["signatures"]
    assert isinstance(sigs, list)
    sigs[0]["keyid"] = keyid(other)  # a forged key id does not help
    with pytest.raises(DsseError, match="does not verify"):
        verify(env, other)
