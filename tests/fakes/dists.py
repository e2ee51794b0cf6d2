"""Tiny real distributions (wheels and sdists) built in the test session, no build backend."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from dataclasses import dataclass


@dataclass(frozen=True)
class Dist:
    filename: str
    data: bytes
    metadata: bytes | None  # the wheel's METADATA (None for sdists)
    requires_python: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _metadata(
    name: str, version: str, requires: tuple[str, ...], requires_python: str | None
) -> bytes:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: test distribution {name}",
    ]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {r}" for r in requires]
    return ("\n".join(lines) + "\n").encode()


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def wheel(
    name: str,
    version: str,
    requires: tuple[str, ...] = (),
    requires_python: str | None = None,
    payload: bytes = b"",
) -> Dist:
    mod = name.replace("-", "_").lower()
    dist_info = f"{mod}-{version}.dist-info"
    meta = _metadata(name, version, requires, requires_python)
    files = {
        f"{mod}/__init__.py": f"__version__ = {version!r}\n".encode(),
        f"{dist_info}/METADATA": meta,
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: airlock-tests\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    if payload:
        files[f"{mod}/payload.bin"] = payload
    record = "".join(f"{p},{_record_hash(d)},{len(d)}\n" for p, d in files.items())
    record += f"{dist_info}/RECORD,,\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zf.writestr(path, data)
        zf.writestr(f"{dist_info}/RECORD", record)
    return Dist(f"{mod}-{version}-py3-none-any.whl", buf.getvalue(), meta, requires_python)


def sdist(name: str, version: str) -> Dist:
    base = f"{name.replace('-', '_').lower()}-{version}"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        data = _metadata(name, version, (), None)
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return Dist(f"{base}.tar.gz", buf.getvalue(), None)
