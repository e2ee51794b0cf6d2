"""Simple-API wire formats: parse upstream pages into the model, render the model for clients.

PEP 503 HTML and PEP 691 JSON, with PEP 592 yanked, PEP 658/714 metadata, PEP 700 versions,
size and upload-time, PEP 708 tracks/alternate-locations and PEP 740 provenance kept intact.

Content negotiation (``negotiate``): the client's ``Accept`` is read with q-values.  JSON
(``application/vnd.pypi.simple.v1+json``) or HTML (``…v1+html``, ``text/html``) are served,
``*/*`` or no ``Accept`` gets HTML (what every installer understands), and an ``Accept`` that
names only types we cannot produce gets **406** listing the supported types (the warehouse
fallback to HTML would hide a client bug behind the wrong format).
"""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from typing import Any, Literal
from urllib.parse import urldefrag, urljoin, urlsplit

from .model import File, ProjectDetail, ProjectList

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_V1_TYPE = "application/vnd.pypi.simple.v1+html"
HTML_TYPE = "text/html"
API_VERSION = "1.1"
UPSTREAM_ACCEPT = f"{JSON_TYPE}, {HTML_V1_TYPE};q=0.2, {HTML_TYPE};q=0.01"
# Files one project page may list.  The byte limit (upstream.MAX_PAGE_BYTES) alone does not
# bound the work: 64 MB of minimal JSON entries are over a million files, each parsed, decided,
# rendered and kept in memory (~1 KB) on the event loop.  A page over it is refused, never cut.
MAX_PAGE_FILES = 100_000

Format = Literal["json", "html-v1", "html"]
# Each format with the media types that name it exactly (PEP 691 "latest" aliases included)
# and the wildcard that also covers it.  Listed in tie-break order: on equal q and equal
# specificity HTML wins, as the format every installer understands.
_OFFERS: tuple[tuple[Format, tuple[str, ...], str], ...] = (
    ("html", (HTML_TYPE,), "text/*"),
    ("json", (JSON_TYPE, "application/vnd.pypi.simple.latest+json"), "application/*"),
    ("html-v1", (HTML_V1_TYPE, "application/vnd.pypi.simple.latest+html"), "application/*"),
)


class WireError(ValueError):
    """Upstream sent a page we cannot parse."""


def _parse_accept(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = max(0.0, min(1.0, float(value)))
                except ValueError:
                    q = 0.0
        if media.strip():
            ranges.append((media.strip().lower(), q))
    return ranges


def negotiate(accept: str | None) -> Format | None:
    """Pick the response format for an ``Accept`` header; None means 406.

    Each format takes the q of the most specific range that matches it (exact type, then
    ``type/*``, then ``*/*``); the highest q wins, ties go to the more specific match.
    """
    if not accept or not accept.strip():
        return "html"
    ranges = _parse_accept(accept)
    best: tuple[float, int, Format] | None = None
    for fmt, exact, wildcard in _OFFERS:
        match: tuple[int, float] | None = None
        for media, q in ranges:
            spec = 3 if media in exact else 2 if media == wildcard else 1 if media == "*/*" else 0
            if spec and (match is None or spec > match[0]):
                match = (spec, q)
        if match is None or match[1] <= 0:
            continue
        cand = (match[1], match[0], fmt)
        if best is None or cand[:2] > best[:2]:
            best = cand
    return None if best is None else best[2]


def content_type(fmt: Format) -> str:
    return {"json": JSON_TYPE, "html-v1": HTML_V1_TYPE, "html": f"{HTML_TYPE}; charset=utf-8"}[fmt]


# ----------------------------------------------------------------------------- parsing


def _hashes_from_fragment(url: str) -> tuple[str, dict[str, str]]:
    base, frag = urldefrag(url)
    hashes: dict[str, str] = {}
    if "=" in frag:
        algo, _, value = frag.partition("=")
        hashes[algo.lower()] = value
    return base, hashes


def _filename_from_url(url: str) -> str:
    path = urlsplit(url).path
    name = path.rsplit("/", 1)[-1]
    if not name:
        raise WireError("a file URL has no file name")  # the URL may name an internal host
    from urllib.parse import unquote

    return unquote(name)


def _metadata_attr(value: str | None) -> bool | dict[str, str]:
    if value is None or value.lower() == "false":
        return False
    if value.lower() == "true" or "=" not in value:
        return True
    algo, _, digest = value.partition("=")
    return {algo.lower(): digest}


def _too_many(count: int | None = None) -> WireError:
    listed = f"{count} files" if count is not None else "more files"
    return WireError(f"the page lists {listed}, more than the limit of {MAX_PAGE_FILES}")


class _AnchorParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[dict[str, str | None]] = []
        self.meta: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            if len(self.anchors) >= MAX_PAGE_FILES:
                raise _too_many()  # stops parsing here: the rest is never read
            self.anchors.append(dict(attrs))
        elif tag == "meta":
            a = dict(attrs)
            if a.get("name") and a.get("content") is not None:
                self.meta.setdefault(str(a["name"]), []).append(str(a["content"]))


def parse_html(name: str, body: str, base_url: str) -> ProjectDetail:
    """PEP 503 project page → model; URLs made absolute against *base_url*."""
    p = _AnchorParser()
    try:
        p.feed(body)
        p.close()
    except WireError:
        raise
    except Exception as e:  # html.parser is lenient, but never let a page crash a request
        raise WireError(f"unparseable HTML page: {e}") from e
    files = []
    for a in p.anchors:
        href = a.get("href")
        if not href:
            continue
        url, hashes = _hashes_from_fragment(urljoin(base_url, href))
        yanked: bool | str = False
        if "data-yanked" in a:
            yanked = a["data-yanked"] or True
        meta_attr = a.get("data-core-metadata", a.get("data-dist-info-metadata"))
        gpg = a.get("data-gpg-sig")
        files.append(
            File(
                filename=_filename_from_url(url),
                url=url,
                hashes=hashes,
                requires_python=a.get("data-requires-python") or None,
                yanked=yanked,
                core_metadata=_metadata_attr(meta_attr),
                gpg_sig=None if gpg is None else gpg.lower() == "true",
                provenance=urljoin(base_url, a["data-provenance"])
                if a.get("data-provenance")
                else None,
            )
        )
    return ProjectDetail(
        name=name,
        files=tuple(files),
        tracks=tuple(p.meta.get("pypi:tracks", ())),
        alternate_locations=tuple(p.meta.get("pypi:alternate-locations", ())),
    )


_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?/[A-Za-z0-9._~%!$&'()*+,=:@/-]*\Z")


def _absolute(base_url: str, url: str) -> str:
    """``urldefrag(urljoin(base_url, url))[0]``, without the parsing for the usual case (an
    absolute http(s) URL with neither query nor fragment, which that leaves as it is): a page
    lists thousands of files."""
    if _PLAIN_URL.match(url):
        return url
    return urldefrag(urljoin(base_url, url))[0]


def _opt_str(d: dict[str, Any], key: str) -> str | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise WireError(f"{key} must be a string")
    return v


def _hashes(given: object) -> dict[str, str]:
    """A file's hashes with lower-case algorithm names; the common ``{"sha256": …}`` without
    the general loop."""
    if type(given) is dict and len(given) == 1 and type(given.get("sha256")) is str:
        return {"sha256": given["sha256"]}
    if not isinstance(given, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in given.items()
    ):
        raise WireError("hashes must map strings to strings")
    return {k.lower(): v for k, v in given.items()}


def parse_json(name: str, body: str | bytes, base_url: str) -> ProjectDetail:
    """PEP 691 project page → model.  Raises WireError on any structural problem."""
    try:
        doc = json.loads(body)
        if not isinstance(doc, dict) or not isinstance(doc.get("files"), list):
            raise WireError("PEP 691 page without a files list")
        if len(doc["files"]) > MAX_PAGE_FILES:
            raise _too_many(len(doc["files"]))
        files = []
        for f in doc["files"]:
            if not isinstance(f, dict) or not isinstance(f.get("url"), str):
                raise WireError("file entry without a url")
            hashes = _hashes(f.get("hashes") or {})
            url = _absolute(base_url, f["url"])
            filename = f.get("filename") or _filename_from_url(url)
            meta = f.get("core-metadata", f.get("dist-info-metadata", False))
            yanked = f.get("yanked", False)
            size = f.get("size")
            files.append(
                File(
                    filename=str(filename),
                    url=url,
                    hashes=hashes,
                    requires_python=_opt_str(f, "requires-python") or None,
                    yanked=yanked if isinstance(yanked, str | bool) else bool(yanked),
                    core_metadata=meta if isinstance(meta, dict) else bool(meta),
                    gpg_sig=f.get("gpg-sig") if isinstance(f.get("gpg-sig"), bool) else None,
                    size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                    upload_time=_opt_str(f, "upload-time"),
                    provenance=(
                        urljoin(base_url, str(f["provenance"])) if f.get("provenance") else None
                    ),
                )
            )
        versions = doc.get("versions")
        meta_doc = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
        serial = meta_doc.get("_last-serial") if isinstance(meta_doc, dict) else None
        return ProjectDetail(
            name=name,
            files=tuple(files),
            versions=tuple(str(v) for v in versions) if isinstance(versions, list) else None,
            tracks=tuple(str(t) for t in doc.get("tracks", ()) or ()),
            alternate_locations=tuple(str(t) for t in doc.get("alternate-locations", ()) or ()),
            last_serial=serial if isinstance(serial, int) else None,
        )
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError) as e:
        raise WireError(f"invalid PEP 691 JSON: {e}") from e


def parse_page(name: str, body: bytes, content_type_header: str, base_url: str) -> ProjectDetail:
    media = content_type_header.split(";", 1)[0].strip().lower()
    if media in (JSON_TYPE, "application/json"):
        return parse_json(name, body, base_url)
    if media in (HTML_V1_TYPE, HTML_TYPE, ""):
        charset = "utf-8"
        for param in content_type_header.split(";")[1:]:
            k, _, v = param.strip().partition("=")
            if k.lower() == "charset" and v:
                charset = v.strip('"')
        try:
            text = body.decode(charset, errors="replace")
        except LookupError:
            text = body.decode("utf-8", errors="replace")
        return parse_html(name, text, base_url)
    raise WireError(f"upstream answered with unsupported content type {media!r}")


# ----------------------------------------------------------------------------- rendering


def _file_json(f: File) -> dict[str, Any]:
    out: dict[str, Any] = {"filename": f.filename, "url": f.url, "hashes": f.hashes}
    if f.requires_python is not None:
        out["requires-python"] = f.requires_python
    if f.core_metadata is not False:
        out["core-metadata"] = f.core_metadata
        out["dist-info-metadata"] = f.core_metadata  # PEP 714: older clients read this key
    if f.gpg_sig is not None:
        out["gpg-sig"] = f.gpg_sig
    if f.yanked is not False:
        out["yanked"] = f.yanked
    if f.size is not None:
        out["size"] = f.size
    if f.upload_time is not None:
        out["upload-time"] = f.upload_time
    if f.provenance is not None:
        out["provenance"] = f.provenance
    return out


def render_json(detail: ProjectDetail) -> str:
    doc: dict[str, Any] = {
        "meta": {"api-version": API_VERSION},
        "name": detail.name,
        "files": [_file_json(f) for f in detail.files],
    }
    if detail.versions is not None:
        doc["versions"] = list(detail.versions)
    if detail.tracks:
        doc["tracks"] = list(detail.tracks)
    if detail.alternate_locations:
        doc["alternate-locations"] = list(detail.alternate_locations)
    return json.dumps(doc, separators=(",", ":"))


def _attr(name: str, value: str) -> str:
    return f' {name}="{html.escape(value, quote=True)}"'


def render_html(detail: ProjectDetail) -> str:
    parts = [
        "<!DOCTYPE html>\n<html><head>",
        f'<meta name="pypi:repository-version" content="{API_VERSION}">',
    ]
    parts += [f'<meta name="pypi:tracks"{_attr("content", t)}>' for t in detail.tracks]
    parts += [
        f'<meta name="pypi:alternate-locations"{_attr("content", t)}>'
        for t in detail.alternate_locations
    ]
    parts.append(f"<title>Links for {html.escape(detail.name)}</title></head><body>")
    parts.append(f"<h1>Links for {html.escape(detail.name)}</h1>")
    for f in detail.files:
        href = f.url
        if "sha256" in f.hashes:
            href += f"#sha256={f.hashes['sha256']}"
        elif f.hashes:
            algo, value = next(iter(sorted(f.hashes.items())))
            href += f"#{algo}={value}"
        a = "<a" + _attr("href", href)
        if f.requires_python is not None:
            a += _attr("data-requires-python", f.requires_python)
        if f.yanked is not False:
            a += _attr("data-yanked", f.yanked if isinstance(f.yanked, str) else "")
        if f.core_metadata is not False:
            value = "true"
            if isinstance(f.core_metadata, dict) and f.core_metadata:
                algo, digest = next(iter(sorted(f.core_metadata.items())))
                value = f"{algo}={digest}"
            a += _attr("data-core-metadata", value) + _attr("data-dist-info-metadata", value)
        if f.gpg_sig is not None:
            a += _attr("data-gpg-sig", "true" if f.gpg_sig else "false")
        if f.provenance is not None:
            a += _attr("data-provenance", f.provenance)
        parts.append(f"{a}>{html.escape(f.filename)}</a><br>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def render_list_json(plist: ProjectList) -> str:
    return json.dumps(
        {"meta": {"api-version": API_VERSION}, "projects": [{"name": n} for n in plist.names]},
        separators=(",", ":"),
    )


def render_list_html(plist: ProjectList) -> str:
    links = "\n".join(f'<a href="{html.escape(n)}/">{html.escape(n)}</a><br>' for n in plist.names)
    return (
        "<!DOCTYPE html>\n<html><head>"
        f'<meta name="pypi:repository-version" content="{API_VERSION}">'
        f"<title>Simple index</title></head><body>\n{links}\n</body></html>\n"
    )
