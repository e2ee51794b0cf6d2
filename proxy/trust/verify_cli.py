"""``airlock verify``: a CI gate that checks local artifacts against the proxy's signed approvals.

    airlock verify [FILE...] [--requirements FILE] [--hf-cache DIR] [--proxy URL] [--key PEM]

For every file: its sha256 → ``GET /attestations/<sha256>?name=<file name>`` → the DSSE
signature must verify over PAE with the proxy's Ed25519 key (``GET /attestations/key``, or a
pinned ``--key``), the in-toto statement's subject must carry that digest and the file's name,
and the predicate's decision must be "allow".  ``--requirements`` checks every
``--hash=sha256:`` pin of a requirements file (no local file needed; ``--any-hash``: a
requirement passes when one of its pins is approved, for lock files listing a hash per wheel).
``--hf-cache`` walks a huggingface_hub cache (``models--org--name/snapshots/<commit>/…``) and
checks every file, named by its path in the repository.

One line per artifact (``OK`` or ``FAIL`` and the reason).  Exit 0: all verified; 1: any
failure; 2: usage error.  ``AIRLOCK_TOKEN`` is sent as a bearer token when set.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from .attest import APPROVED, PREDICATE_TYPE, STATEMENT_TYPE
from .dsse import DsseError, keyid, verify

TOKEN_ENV = "AIRLOCK_TOKEN"  # noqa: S105 - the name of a variable, not a secret
HF_KINDS = ("models", "datasets", "spaces")
_HASH_RE = re.compile(r"--hash[=\s]+sha256:([0-9a-fA-F]{64})\b")
_CHUNK = 1024 * 1024


class UsageError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Item:
    label: str  # what the output line names
    digest: str
    name: str | None  # the subject name the statement must carry (None: any)
    group: str = ""  # a requirement line, for --any-hash


class Proxy:
    def __init__(self, base: str, token: str | None, timeout: float) -> None:
        self.base = base.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout

    def get(self, path: str, accept: str = "application/json") -> tuple[int, bytes]:
        req = urllib.request.Request(  # noqa: S310 - the URL's scheme is checked in _base_url
            self.base + path, headers={**self._headers, "Accept": accept}
        )
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as resp:  # noqa: S310
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as e:
            return int(e.code), bytes(e.read())

    def public_key(self) -> Ed25519PublicKey:
        status, body = self.get("/attestations/key", "application/x-pem-file")
        if status != 200:
            raise OSError(f"GET /attestations/key answered {status}: {_message(body)}")
        return _load_key(body, "the proxy's key")


def _load_key(pem: bytes, what: str) -> Ed25519PublicKey:
    try:
        key = load_pem_public_key(pem)
    except ValueError as e:
        raise OSError(f"{what} is not a PEM public key: {e}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise OSError(f"{what} is not an Ed25519 key")
    return key


def _message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()[:300]
    return str(data.get("error", data)) if isinstance(data, dict) else str(data)[:300]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def check(proxy: Proxy, key: Ed25519PublicKey, item: Item) -> tuple[bool, str]:
    """(verified, detail): the detail is the reason of a failure."""
    path = f"/attestations/{item.digest}"
    if item.name is not None:
        path += "?name=" + quote(item.name, safe="")
    try:
        status, body = proxy.get(path)
    except OSError as e:
        return False, f"cannot reach the proxy: {e}"
    if status != 200:
        return False, f"no approval from the proxy ({status}: {_message(body)})"
    try:
        statement = json.loads(verify(json.loads(body), key))
        return _approves(statement, item)
    except DsseError as e:
        return False, f"bad signature: {e}"
    except (ValueError, AttributeError, TypeError) as e:
        return False, f"malformed attestation: {e}"


def _approves(statement: Any, item: Item) -> tuple[bool, str]:
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        return False, "the signed payload is not an in-toto Statement v1"
    if statement.get("predicateType") != PREDICATE_TYPE:
        return False, f"unexpected predicate type {statement.get('predicateType')!r}"
    subjects = statement.get("subject") or []
    digests = [s for s in subjects if (s.get("digest") or {}).get("sha256") == item.digest]
    if not digests:
        return False, "the statement's subject has another digest"
    if item.name is not None and not any(s.get("name") == item.name for s in digests):
        return False, f"the statement names {digests[0].get('name')!r}, not {item.name!r}"
    predicate: dict[str, Any] = statement.get("predicate") or {}
    if predicate.get("decision") != APPROVED:
        return False, f"the proxy's decision was {predicate.get('decision')!r}, not an approval"
    what = predicate.get("version") or str(predicate.get("commit") or "")[:12]
    rev = str(predicate.get("policyRevision", ""))[:12]
    return True, f"{predicate.get('project')} {what}, policy {rev}, {predicate.get('time')}"


# ---- what to check ---------------------------------------------------------------------------
def file_items(paths: list[Path]) -> list[Item]:
    for p in paths:
        if not p.is_file():
            raise UsageError(f"{p}: no such file")
    return [Item(str(p), sha256_file(p), p.name) for p in paths]


def requirement_items(path: Path) -> list[Item]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path}: {e}") from None
    items = []
    for raw in re.sub(r"\\\r?\n", " ", text).splitlines():
        line = raw.strip()
        hashes = _HASH_RE.findall(line)
        if not hashes or line.startswith("#"):
            continue
        requirement = line.split()[0]
        for h in hashes:
            digest = h.lower()
            items.append(Item(f"{requirement} sha256:{digest[:16]}", digest, None, requirement))
    if not items:
        raise UsageError(f"{path}: no --hash=sha256: pins found")
    return items


def hf_cache_items(root: Path) -> list[Item]:
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory")
    if (root / "hub").is_dir() and not (root / "snapshots").is_dir():
        root = root / "hub"  # HF_HOME
    if (root / "snapshots").is_dir():
        repos = [root]
    else:
        repos = sorted(
            p for p in root.iterdir() if p.is_dir() and p.name.split("--", 1)[0] in HF_KINDS
        )
    items = []
    for repo in repos:
        snapshots = repo / "snapshots"
        if not snapshots.is_dir():
            continue
        for snap in sorted(s for s in snapshots.iterdir() if s.is_dir()):
            for f in sorted(snap.rglob("*")):
                if f.is_file():  # follows the snapshot's symlink into blobs/
                    name = f.relative_to(snap).as_posix()
                    label = f"{repo.name}@{snap.name[:12]}/{name}"
                    items.append(Item(label, sha256_file(f), name))
    if not items:
        raise UsageError(f"{root}: no huggingface_hub snapshots found")
    return items


def _base_url(args: argparse.Namespace) -> str:
    url: str = args.proxy or ""
    if not url:
        from ..settings import SettingsError, load_settings

        env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
        try:
            settings = load_settings(args.config, env)
        except SettingsError as e:
            raise UsageError(str(e)) from None
        server = settings.server
        # A wildcard listen address is reached on loopback from the same machine.
        wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104
        host = wildcard.get(server.host, server.host)
        host = f"[{host}]" if ":" in host else host
        url = server.public_url or f"http://{host}:{server.port}"
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--proxy must be an http(s) URL, got {url!r}")
    return url


def _verify(args: argparse.Namespace) -> int:
    try:
        items = file_items(args.files)
        for req in args.requirements:
            items += requirement_items(req)
        for cache in args.hf_cache:
            items += hf_cache_items(cache)
        if not items:
            raise UsageError("nothing to verify: give FILEs, --requirements or --hf-cache")
        proxy = Proxy(_base_url(args), os.environ.get(TOKEN_ENV) or None, args.timeout)
        pinned = _load_key(args.key.read_bytes(), str(args.key)) if args.key else None
    except (UsageError, OSError) as e:
        print(f"airlock verify: {e}", file=sys.stderr)
        return 2
    try:
        key = pinned or proxy.public_key()
    except OSError as e:
        print(f"FAIL proxy {proxy.base}: cannot get the attestation key: {e}")
        return 1
    print(f"# proxy {proxy.base}, key {keyid(key)}", file=sys.stderr)
    results = [(item, *check(proxy, key, item)) for item in items]
    approved_groups = {i.group for i, ok, _ in results if ok and i.group}
    failures = 0
    for item, ok, detail in results:
        if ok:
            print(f"OK   {item.label}  ({detail})")
        elif args.any_hash and item.group in approved_groups:
            print(f"SKIP {item.label}: {detail}; another pin of {item.group} is approved")
        else:
            failures += 1
            print(f"FAIL {item.label}: {detail}")
    print(f"# {len(results) - failures} of {len(results)} passed", file=sys.stderr)
    return 1 if failures else 0


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], config_arg: Any
) -> None:
    p = subparsers.add_parser(
        "verify",
        help="check local files against the proxy's signed approvals (CI gate)",
        description="Check that every file (or pinned hash) was approved and served by the "
        "proxy: the DSSE envelope at /attestations/<sha256> must verify with the proxy's "
        "Ed25519 key and name the file with decision 'allow'. Exit 0 all verified, 1 any "
        f"failure, 2 usage error. ${TOKEN_ENV} is sent as a bearer token.",
    )
    config_arg(p)
    p.add_argument("files", nargs="*", type=Path, metavar="FILE", help="artifacts to check")
    p.add_argument(
        "-r",
        "--requirements",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="check every --hash=sha256: pin of this requirements file (repeatable)",
    )
    p.add_argument(
        "--any-hash",
        action="store_true",
        help="with --requirements: a requirement passes when one of its pins is approved",
    )
    p.add_argument(
        "--hf-cache",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="check every file of a huggingface_hub cache (HF_HUB_CACHE or HF_HOME; repeatable)",
    )
    p.add_argument(
        "--proxy",
        default=None,
        metavar="URL",
        help="the proxy (default: server.public_url, else http://server.host:server.port)",
    )
    p.add_argument(
        "--key",
        type=Path,
        default=None,
        metavar="PEM",
        help="pin the proxy's public key (PEM) instead of fetching /attestations/key",
    )
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request (30)")
    p.set_defaults(func=_verify)
