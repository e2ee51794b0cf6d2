"""``scan_file``: detect a file's format from its content and run the matching checks,
recursing into containers with the same dispatcher."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from . import containers, detect, gguf, hdf5, keras, names, numpy_, onnx, safetensors, wire, zips
from .allowlist import Allowlist, check_entries, load_allowlist
from .model import SCANNER_VERSION, Abort, Context, Limits, ScanResult
from .pickle import scan_pickle, scan_pickle_parts
from .stream import CountingFile, Reader, ReaderIO, size_of, spool

_RANDOM_ACCESS = frozenset({"zip", "hdf5"})
_ReaderFactory = Callable[[], Reader]


def scan_file(
    path: Path,
    *,
    limits: Limits = Limits(),  # noqa: B008 - frozen, so a shared default is safe
    extra_allowed_globals: Iterable[str] = (),
    name: str | None = None,
) -> ScanResult:
    """Scan one file (blocking; run it in a thread).  Raises ``OSError`` if it cannot be read.

    ``name`` (default: the path's own name) is the file's published name: content the scanner
    does not recognise under a model-like name is a finding (:mod:`.names`).  Pass ``""`` for a
    verdict on the content alone (cached per digest; :func:`.names.finding` is applied per name).
    """
    allow = Allowlist([*load_allowlist(), *check_entries(extra_allowed_globals)])
    ctx = Context(limits, allow)
    with path.open("rb", buffering=0) as raw:
        counting = CountingFile(raw)
        with io.BufferedReader(counting, buffer_size=64 << 10) as f:
            try:
                fmt = scan_object(ctx, f, "", 0, size_of(f), True, None)
            except Abort:
                fmt = ctx.top_format
            except RecursionError:
                ctx.add("scan-limit", "structure nests too deeply to scan", "")
                fmt = ctx.top_format
            except OSError:
                raise
            except Exception as e:  # a parser bug or an input nobody foresaw: fail closed
                ctx.add("unscannable", f"the scanner failed ({type(e).__name__}: {e})", "")
                fmt = ctx.top_format
    unrecognised = names.finding(fmt, path.name if name is None else name)
    if unrecognised is not None and not ctx.findings:  # only a clean verdict needs it
        ctx.add(unrecognised.rule, unrecognised.message, unrecognised.location)
    return ScanResult(fmt, tuple(ctx.findings), SCANNER_VERSION, counting.count)


def scan_object(
    ctx: Context,
    f: IO[bytes],
    location: str,
    depth: int,
    size: int | None,
    seekable: bool,
    hint: str | None,
) -> str:
    """Scan the object ``f`` (at its start); returns its format.  The recursive entry point.

    A container member with a model-like name whose content is not recognised is a finding.
    """
    fmt = _scan_object(ctx, f, location, depth, size, seekable, hint)
    unrecognised = names.finding(fmt, location, location) if location else None
    if unrecognised is not None:
        ctx.add(unrecognised.rule, unrecognised.message, location)
    return fmt


def _scan_object(
    ctx: Context,
    f: IO[bytes],
    location: str,
    depth: int,
    size: int | None,
    seekable: bool,
    hint: str | None,
) -> str:
    head = f.read(detect.HEAD)
    if seekable:
        f.seek(0)

    def reader() -> Reader:
        if seekable:
            f.seek(0)
            return Reader(f, seekable=True, size=size)
        return Reader(f, seekable=False, size=size, prefix=head)

    if hint == "pickle!":
        return scan_pickle(ctx, reader(), location, forced=True) or "pickle"
    if hint in ("torch-storages", "torch-tensors"):
        scan_pickle_parts(ctx, reader(), location, hint.removeprefix("torch-"))
        return "pytorch-legacy-part"
    kind = detect.sniff(head, size)
    if depth == 0:
        ctx.top_format = kind if kind not in ("?", "onnx?") else "unknown"
    if kind in detect.OPAQUE:
        return kind
    if kind in detect.CONTAINERS and not ctx.check_depth(depth + 1, location):
        return kind
    if kind in _RANDOM_ACCESS and not seekable:
        spooled = spool(head, f, ctx.limits.max_total_bytes)
        if spooled is None:
            ctx.add("container-bomb", "member is too large to inspect", location)
            return kind
        tmp, tmp_size = spooled
        with tmp:
            return _scan_object(ctx, tmp, location, depth, tmp_size, True, hint)
    if kind == "?" and seekable and size is not None and detect.hdf5_offset(f, size) is not None:
        kind = "hdf5"
    return _dispatch(ctx, kind, f, head, reader, location, depth, size, seekable)


def _dispatch(
    ctx: Context,
    kind: str,
    f: IO[bytes],
    head: bytes,
    reader: _ReaderFactory,
    location: str,
    depth: int,
    size: int | None,
    seekable: bool,
) -> str:
    scan = functools.partial(scan_object, ctx)
    if kind == "zip":
        assert size is not None
        return zips.scan_zip(ctx, f, size, location, depth, scan)
    if kind == "tar":
        src = f if seekable else io.BufferedReader(ReaderIO(reader()))
        return containers.scan_tar(ctx, src, seekable, location, depth, scan)
    if kind in ("gzip", "bz2", "xz", "lzma", "zlib", "joblib-zf"):
        src = f if seekable else io.BufferedReader(ReaderIO(reader()))
        return containers.scan_compressed(ctx, kind, src, location, depth, scan)
    if kind in detect.UNSCANNABLE:
        ctx.add("unscannable", detect.UNSCANNABLE[kind], location)
        return kind
    if kind == "npy":
        return numpy_.scan_npy(ctx, reader(), location)
    if kind == "gguf":
        return gguf.scan_gguf(ctx, reader(), location)
    if kind == "safetensors":
        return safetensors.scan_safetensors(ctx, reader(), location)
    if kind == "hdf5":
        assert size is not None
        return _scan_hdf5(ctx, f, size, location)
    if kind == "onnx?":
        return onnx.scan_onnx(ctx, reader(), location) or _plain(head, reader, seekable)
    if kind == "pickle" or (head[:1] and head[0] in detect.PICKLE_OPCODES):
        return scan_pickle(ctx, reader(), location) or _plain(head, reader, seekable)
    return _plain(head, reader, True)


def _plain(head: bytes, reader: _ReaderFactory, rewind: bool) -> str:
    """What no scanner claimed: ``empty``, a code-free serialisation (if the stream can still
    be read from its start), ``other`` (text) or ``unknown``."""
    if not head:
        return "empty"
    known = wire.identify(reader()) if rewind else None
    if known is not None:
        return known
    return "other" if detect.looks_like_text(head) else "unknown"


def _scan_hdf5(ctx: Context, f: IO[bytes], size: int, location: str) -> str:
    offset = detect.hdf5_offset(f, size)
    if offset is None:
        return "unknown"
    try:
        attrs = hdf5.root_attributes(f, offset, size)
    except (hdf5.H5Error, IndexError) as e:
        ctx.add("unscannable", f"HDF5 root attributes cannot be verified ({e})", location)
        return "hdf5"
    for name, text in attrs.items():
        keras.check_config_text(ctx, text, f"{location}#{name}" if location else name, strict=True)
    return "keras-h5" if "model_config" in attrs else "hdf5"
