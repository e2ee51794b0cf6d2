"""Exact pins from pip requirements files (``name==version --hash=sha256:...``).

The reader follows pip's own preprocessing (``pip._internal.req.req_file``): lines ending in a
backslash are joined with the next one unless that line is a comment; then ``#`` comments
(at the start of a line or after whitespace) and blank lines are dropped.  A line starting with
``-`` holds options: ``-r/--requirement`` and ``-c/--constraint`` files are read too (paths
relative to the including file; a constraints file pins just as well), index and install
options (``--index-url``, ``--require-hashes``, ...) are ignored, anything else is an error.
Other lines are a PEP 508 requirement followed by per-requirement options, of which ``--hash``
is kept (sha256 only; other algorithms are noted) and ``--config-settings``/``--global-option``
are ignored.  Extras are dropped and environment markers are kept for reference but do not
limit the pin.

Every line that is not an exact pin (``==`` or ``===`` without a wildcard) is an error: editable
installs, direct references (``name @ URL``), bare paths or URLs, ranges.  All such lines are
collected and reported together in one :class:`~proxy.facts.pins.PinsError`; nothing is pinned
from a file that has any.  ``${VAR}`` environment references are not expanded.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from .pins import SHA256_HEX, Pin, PinFile, PinsError

_COMMENT = re.compile(r"(^|\s+)#.*$")
_INCLUDES = {"-r", "--requirement", "-c", "--constraint"}
_EDITABLE = {"-e", "--editable"}
_GLOBAL_WITH_VALUE = {
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "--trusted-host",
    "--only-binary",
    "--no-binary",
    "--use-feature",
}
_GLOBAL_FLAGS = {"--no-index", "--pre", "--prefer-binary", "--require-hashes"}
_PER_REQUIREMENT_IGNORED = {"-C", "--config-settings", "--global-option", "--install-option"}
MAX_ERRORS_SHOWN = 50


@dataclass(slots=True)
class _Reader:
    pins: list[Pin] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    done: set[Path] = field(default_factory=set)


def parse_requirements(path: Path) -> PinFile:
    """Every exact pin in ``path`` and the files it includes; :class:`PinsError` otherwise."""
    reader = _Reader()
    _read_file(reader, path, chain=())
    if reader.errors:
        shown = reader.errors[:MAX_ERRORS_SHOWN]
        more = len(reader.errors) - len(shown)
        tail = f"\n  ... and {more} more" if more > 0 else ""
        raise PinsError(
            f"{path}: {len(reader.errors)} problem(s); only exact '==' pins can be imported:\n  "
            + "\n  ".join(shown)
            + tail
        )
    return PinFile("requirements", tuple(reader.files), tuple(reader.pins), tuple(reader.notes))


def logical_lines(text: str) -> list[tuple[int, str]]:
    """``(first physical line number, text)`` of each non-empty logical line, as pip sees it."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    first = 0

    def emit(number: int, line: str) -> None:
        line = _COMMENT.sub("", line).strip()
        if line:
            out.append((number, line))

    for number, physical in enumerate(text.splitlines(), start=1):
        is_comment = _COMMENT.match(physical) is not None
        if physical.endswith("\\") and not is_comment:
            if not pending:
                first = number
            pending.append(physical[:-1])
            continue
        # a leading space keeps a comment recognisable (and dropped) once joined
        line = " " + physical if is_comment else physical
        if pending:
            pending.append(line)
            emit(first, "".join(pending))
            pending = []
        else:
            emit(number, line)
    if pending:
        emit(first, "".join(pending))
    return out


def _read_file(reader: _Reader, path: Path, chain: tuple[Path, ...]) -> None:
    resolved = path.resolve()
    if resolved in reader.done:
        return  # included twice (diamond): its pins are already in
    reader.done.add(resolved)
    reader.files.append(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        reader.errors.append(f"{path}: cannot read: {e}")
        return
    for number, line in logical_lines(text):
        where = f"{path}:{number}"
        if line.startswith("-"):
            _option_line(reader, path, where, line, (*chain, resolved))
        else:
            _requirement_line(reader, where, line)


def _split_option(token: str) -> tuple[str, str | None]:
    if token.startswith("--"):
        name, eq, value = token.partition("=")
        return name, value if eq else None
    return token[:2], token[2:] or None


def _option_line(
    reader: _Reader, path: Path, where: str, line: str, chain: tuple[Path, ...]
) -> None:
    try:
        tokens = shlex.split(line)
    except ValueError as e:
        reader.errors.append(f"{where}: {line!r}: {e}")
        return
    i = 0
    while i < len(tokens):
        name, value = _split_option(tokens[i])
        takes_value = name in _INCLUDES or name in _GLOBAL_WITH_VALUE or name in _EDITABLE
        if takes_value and value is None and i + 1 < len(tokens):
            i += 1
            value = tokens[i]
        if name in _EDITABLE:
            reader.errors.append(f"{where}: {line!r}: an editable install is not a pin")
            return
        if name in _INCLUDES:
            if not value:
                reader.errors.append(f"{where}: {line!r}: {name} needs a file")
                return
            _include(reader, path, where, value, chain)
        elif name in _GLOBAL_WITH_VALUE:
            if value is None:
                reader.errors.append(f"{where}: {line!r}: {name} needs a value")
                return
        elif name not in _GLOBAL_FLAGS:
            reader.errors.append(f"{where}: {line!r}: unsupported option {name}")
            return
        i += 1


def _include(reader: _Reader, path: Path, where: str, target: str, chain: tuple[Path, ...]) -> None:
    if "://" in target:
        reader.errors.append(f"{where}: remote include {target!r} is not supported")
        return
    included = path.parent / target
    if included.resolve() in chain:
        reader.errors.append(f"{where}: include cycle through {included}")
        return
    if not included.is_file():
        reader.errors.append(f"{where}: included file {included} does not exist")
        return
    _read_file(reader, included, chain)


def _requirement_line(reader: _Reader, where: str, line: str) -> None:
    tokens = line.split()
    args: list[str] = []
    for token in tokens:
        if token.startswith("-"):
            break
        args.append(token)
    text = " ".join(args)
    try:
        options = shlex.split(" ".join(tokens[len(args) :]))
    except ValueError as e:
        reader.errors.append(f"{where}: {line!r}: {e}")
        return
    hashes = _hashes(reader, where, line, options)
    if hashes is None:
        return
    try:
        req = Requirement(text)
    except InvalidRequirement as e:
        reason = str(e).splitlines()[0] if str(e) else "invalid"
        reader.errors.append(f"{where}: {line!r}: not a requirement ({reason})")
        return
    if req.url:
        reader.errors.append(f"{where}: {line!r}: a direct reference is not a pin")
        return
    specs = list(req.specifier)
    if len(specs) != 1 or specs[0].operator not in ("==", "===") or "*" in specs[0].version:
        reader.errors.append(f"{where}: {line!r}: not an exact '==' pin")
        return
    sha256 = tuple(h for algo, h in hashes if algo == "sha256")
    others = sorted({algo for algo, _ in hashes if algo != "sha256"})
    if others:
        reader.notes.append(
            f"{where}: ignored {', '.join(others)} hash(es) of {req.name} (only sha256 is kept)"
        )
    reader.pins.append(
        Pin(
            name=canonicalize_name(req.name),
            version=specs[0].version,
            sha256=sha256,
            origin=where,
            marker=str(req.marker) if req.marker else None,
        )
    )


def _hashes(
    reader: _Reader, where: str, line: str, options: list[str]
) -> list[tuple[str, str]] | None:
    """``(algorithm, lowercase hex)`` of each ``--hash``; None (error recorded) if malformed."""
    hashes: list[tuple[str, str]] = []
    i = 0
    while i < len(options):
        name, value = _split_option(options[i])
        if name != "--hash" and name not in _PER_REQUIREMENT_IGNORED:
            reader.errors.append(f"{where}: {line!r}: unsupported option {name}")
            return None
        if value is None and i + 1 < len(options):
            i += 1
            value = options[i]
        i += 1
        if name != "--hash":
            continue
        algo, sep, digest = (value or "").partition(":")
        digest = digest.lower()
        if not sep or not algo or not re.fullmatch(r"[0-9a-f]+", digest):
            reader.errors.append(f"{where}: {line!r}: malformed --hash {value!r}")
            return None
        if algo == "sha256" and not SHA256_HEX.match(digest):
            reader.errors.append(f"{where}: {line!r}: sha256 digest must be 64 hex digits")
            return None
        hashes.append((algo, digest))
    return hashes
