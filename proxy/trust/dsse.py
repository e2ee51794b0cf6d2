"""DSSE (Dead Simple Signing Envelope) v1 with Ed25519: PAE, sign, verify.  Pure: no I/O.

    PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body

LEN is the byte length as ASCII decimal without leading zeros; the signature covers PAE of the
payload type and the *raw* payload bytes (never their base64).  An envelope is

    {"payloadType": TYPE, "payload": base64(body), "signatures": [{"keyid": ID, "sig": b64}]}

A key id here is the sha256 (hex) of the DER SubjectPublicKeyInfo of the public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


class DsseError(Exception):
    """The envelope is malformed or no signature verifies."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """Pre-Authentication Encoding of the DSSE protocol, byte for byte."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def keyid(public_key: Ed25519PublicKey) -> str:
    der = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def sign(
    payload: bytes, key: Ed25519PrivateKey, payload_type: str = IN_TOTO_PAYLOAD_TYPE
) -> dict[str, Any]:
    """An envelope over *payload* with one Ed25519 signature."""
    sig = key.sign(pae(payload_type, payload))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [
            {"keyid": keyid(key.public_key()), "sig": base64.b64encode(sig).decode("ascii")}
        ],
    }


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise DsseError(f"{what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise DsseError(f"{what} is not valid base64") from None


def verify(
    envelope: Mapping[str, Any],
    public_key: Ed25519PublicKey,
    payload_type: str = IN_TOTO_PAYLOAD_TYPE,
) -> bytes:
    """The payload bytes if a signature of *public_key* verifies over PAE; else DsseError.

    Signatures naming another key id are skipped; one without a key id is tried.
    """
    if envelope.get("payloadType") != payload_type:
        raise DsseError(f"payloadType is {envelope.get('payloadType')!r}, not {payload_type!r}")
    payload = _b64(envelope.get("payload"), "payload")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise DsseError("the envelope has no signatures")
    mine = keyid(public_key)
    message = pae(payload_type, payload)
    tried = 0
    for s in signatures:
        if not isinstance(s, Mapping):
            continue
        if s.get("keyid") not in (None, "", mine):
            continue
        tried += 1
        try:
            public_key.verify(_b64(s.get("sig"), "signature"), message)
        except InvalidSignature:
            continue
        return payload
    if not tried:
        raise DsseError(f"no signature by key {mine[:16]}…")
    raise DsseError("the signature does not verify (payload or signature altered, or wrong key)")
