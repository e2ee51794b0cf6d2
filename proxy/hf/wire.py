"""Wire rules of the Hub side: strip Xet, rebase links, normalise queries, file headers.

Pure functions only.  Clients switch to Xet when a response carries ``X-Xet-Hash`` plus a
refresh route (header or ``Link rel="xet-auth"``), or when a tree entry has ``xetHash``
(docs/hf-hub-protocol.md §7); everything here removes those signals so clients stay on plain
HTTP through the proxy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from .model import FileMeta, is_sha256

_LINK_RE = re.compile(r"<([^>]*)>\s*((?:;\s*[^,;]+)*)")
_REL_RE = re.compile(r';\s*rel\s*=\s*"?([^";]+)"?', re.I)
# Query keys forwarded upstream for each endpoint; anything else is dropped.
INFO_KEYS = ("blobs", "securityStatus", "expand", "files_metadata")
TREE_KEYS = ("recursive", "expand", "cursor", "limit")
BOOL_KEYS = {"blobs", "securityStatus", "recursive", "files_metadata"}
MAX_JSON = 64 * 1024 * 1024
# Entries one tree or paths-info document may list (the hub pages trees by 1,000).  MAX_JSON
# alone lets ~900,000 small entries through, each a file fact recorded in the store.
MAX_LISTING_ENTRIES = 100_000


class WireError(ValueError):
    """An upstream document is not what the hub protocol says."""


def parse_links(value: str) -> list[tuple[str, str]]:
    """``Link`` header → [(url, rel)] (rel "" when absent)."""
    out = []
    for m in _LINK_RE.finditer(value or ""):
        rel = _REL_RE.search(m.group(2) or "")
        out.append((m.group(1).strip(), rel.group(1).strip().lower() if rel else ""))
    return out


def strip_xet_json(value: Any) -> Any:
    """A copy of a JSON value without any ``xetHash`` key, at any depth."""
    if isinstance(value, dict):
        return {k: strip_xet_json(v) for k, v in value.items() if k != "xetHash"}
    if isinstance(value, list):
        return [strip_xet_json(v) for v in value]
    return value


def load_json(body: bytes, what: str) -> Any:
    if len(body) > MAX_JSON:
        raise WireError(f"{what} is larger than {MAX_JSON} bytes")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WireError(f"{what} is not JSON: {e}") from e


def dump_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def normalise_query(pairs: Iterable[tuple[str, str]], keys: Iterable[str]) -> str:
    """The allowed query keys, booleans spelled ``true``/``false`` (0.x sends ``True``)."""
    allowed = set(keys)
    out = []
    for k, v in pairs:
        if k not in allowed:
            continue
        low = v.lower()
        if low in ("true", "false") or (k in BOOL_KEYS and low in ("1", "0")):
            out.append((k, "true" if low in ("true", "1") else "false"))
        else:
            out.append((k, v))
    return urlencode(out)


def query_pairs(raw_query: str) -> list[tuple[str, str]]:
    return parse_qsl(raw_query, keep_blank_values=True)


def file_headers(meta: FileMeta, commit: str, content_type: str) -> dict[str, str]:
    """Every header clients read on /resolve (doc §5); the etag is the hub's own."""
    headers = {
        "X-Repo-Commit": commit,
        "ETag": f'"{meta.etag}"',
        "Content-Type": content_type,
        "Accept-Ranges": "bytes",
        "Access-Control-Expose-Headers": (
            "X-Repo-Commit,X-Request-Id,X-Error-Code,X-Error-Message,ETag,Link,Accept-Ranges,"
            "Content-Range,X-Linked-Size,X-Linked-ETag"
        ),
    }
    if meta.lfs:
        headers["X-Linked-Etag"] = f'"{meta.sha256}"'
        headers["X-Linked-Size"] = str(meta.size)
    return headers


def unquote_etag(value: str | None) -> str | None:
    if not value:
        return None
    return value.strip().removeprefix("W/").strip('"').strip() or None


def int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


def meta_from_tree_entry(entry: Any) -> FileMeta | None:
    """File facts from a tree / paths-info entry (None for folders and odd entries)."""
    if not isinstance(entry, dict) or entry.get("type") != "file":
        return None
    path, oid, size = entry.get("path"), entry.get("oid"), entry.get("size")
    if not isinstance(path, str) or not isinstance(size, int) or size < 0:
        return None
    lfs = entry.get("lfs")
    if isinstance(lfs, dict):
        sha = lfs.get("oid") or lfs.get("sha256")
        lsize = lfs.get("size", size)
        if isinstance(sha, str) and is_sha256(sha) and isinstance(lsize, int):
            return FileMeta(path, lsize, True, sha, None)
        return None
    if isinstance(oid, str) and re.fullmatch(r"[0-9a-f]{40}", oid):
        return FileMeta(path, size, False, None, oid)
    return None


def text_type(path: str) -> str:
    suffixes = (".json", ".txt", ".md", ".py", ".jsonl", ".gitattributes", ".yaml", ".yml", ".csv")
    return "text/plain; charset=utf-8" if path.endswith(suffixes) else "application/octet-stream"


def header_safe(text: str, limit: int = 1000) -> str:
    """One line of printable ASCII: header values must not carry newlines or non-latin-1."""
    return re.sub(r"[^\x20-\x7e]", "?", text)[:limit]
