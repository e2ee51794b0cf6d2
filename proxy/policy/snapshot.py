"""A policy snapshot: every ``.rego`` module and data file of the policy folder, read once.

Layout of the policy folder::

    *.rego, lib/*.rego        modules (``*_test.rego`` are tests, never loaded for serving)
    data/<name>.json          admin-edited data, mounted at ``data.airlock.config.<name>``
    lists/<name>.json         large lists kept in Python (pins, OSV records); facts providers
    facts/<name>.json         query them per request and pass only the slice to the policy

The revision is a sha256 over the sorted paths and contents, so every decision can name the
exact policy it was made under.  All later steps (validate, build, serve) use the snapshot,
never the live folder: a file half-written during an editor save is simply an invalid snapshot.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENTRYPOINTS = ("airlock/pypi/decision", "airlock/hf/decision")


class PolicyError(Exception):
    """The policy folder cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    modules: dict[str, str]  # relative path -> source (tests excluded)
    tests: dict[str, str]  # relative path -> source of *_test.rego
    data: dict[str, Any]  # already nested under {"airlock": {"config": {...}}}
    revision: str  # covers modules, data and lists
    lists: dict[str, Any] = field(default_factory=dict)  # "lists/osv" -> parsed JSON
    list_digests: dict[str, str] = field(default_factory=dict)  # "lists/osv" -> sha256 of file

    def entrypoints(self) -> list[str]:
        """Entrypoints whose package some module declares."""
        out = []
        for ep in ENTRYPOINTS:
            pkg = ".".join(ep.split("/")[:-1])
            if any(
                re.search(rf"^package\s+{re.escape(pkg)}\s*$", s, re.M)
                for s in self.modules.values()
            ):
                out.append(ep)
        return out

    def to_json(self) -> str:
        return json.dumps({"modules": self.modules, "data": self.data, "revision": self.revision})

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        d = json.loads(text)
        return cls(d["modules"], {}, d["data"], d["revision"])


def _is_editor_junk(name: str) -> bool:
    return name.startswith((".", "#", "~")) or name.endswith(("~", ".swp", ".tmp"))


def _hidden(path: Path, root: Path) -> bool:
    """Inside a hidden folder (``.git``, or the ``..2024_…`` copies a Kubernetes ConfigMap
    volume keeps next to its files), or an editor's temporary file."""
    rel = path.relative_to(root).parts
    return any(part.startswith(".") for part in rel[:-1]) or _is_editor_junk(rel[-1])


def policy_files(root: Path) -> list[Path]:
    """The files that make up a snapshot, in a stable order."""
    files = [p for p in root.rglob("*.rego") if not _hidden(p, root)]
    for sub in ("data", "lists", "facts"):
        d = root / sub
        if d.is_dir():
            files += [p for p in d.glob("*.json") if not _is_editor_junk(p.name)]
    return sorted(files)


def load_snapshot(root: Path) -> Snapshot:
    """Read the folder.  Raises PolicyError for unreadable, non-UTF-8 or malformed files."""
    if not root.is_dir():
        raise PolicyError(f"policy folder {root} does not exist")
    modules: dict[str, str] = {}
    tests: dict[str, str] = {}
    data: dict[str, Any] = {}
    lists: dict[str, Any] = {}
    list_digests: dict[str, str] = {}
    h = hashlib.sha256()
    for path in policy_files(root):
        rel = path.relative_to(root).as_posix()
        try:
            raw = path.read_bytes()
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise PolicyError(f"{rel}: cannot read as UTF-8: {e}") from e
        h.update(rel.encode() + b"\0" + raw + b"\0")
        if path.suffix == ".json":
            try:
                value = json.loads(text)
            except json.JSONDecodeError as e:
                raise PolicyError(f"{rel}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from e
            if path.parent.name == "data":
                data[path.stem] = value
            else:
                lists[f"{path.parent.name}/{path.stem}"] = value
                list_digests[f"{path.parent.name}/{path.stem}"] = hashlib.sha256(raw).hexdigest()
        elif path.name.endswith("_test.rego"):
            tests[rel] = text
        else:
            problems = lint(text)
            if problems:
                raise PolicyError(f"{rel}: " + "; ".join(problems))
            modules[rel] = text
    if not modules:
        raise PolicyError(f"policy folder {root} has no .rego modules")
    return Snapshot(
        modules, tests, {"airlock": {"config": data}}, h.hexdigest(), lists, list_digests
    )


# Constructs the embedded engine gets wrong or cannot run (see README, "Policy engine"):
# refusing them at load keeps a policy from silently failing open.
_FORBIDDEN = (
    (re.compile(r"%q"), "sprintf '%q' is not supported by the embedded engine; use concat"),
    (re.compile(r"\bhttp\.send\b"), "http.send is not allowed: policies are I/O-free"),
    (re.compile(r"\bnet\.\w+"), "net.* built-ins are not available"),
    (
        re.compile(r"\bwith\s+input\s+as\b"),
        "'with input as' is unsafe in the embedded engine; "
        "override input.<key> with literal values",
    ),
    (
        re.compile(r"\btime\.parse_rfc3339_ns\b"),
        "time.parse_rfc3339_ns is unreliable; use the *_ns integer facts",
    ),
)


def lint(source: str) -> list[str]:
    code = "\n".join(line.split("#", 1)[0] for line in source.splitlines())
    problems = []
    for rx, message in _FORBIDDEN:
        m = rx.search(code)
        if m:
            line = code.count("\n", 0, m.start()) + 1
            problems.append(f"line {line}: {message}")
    if not re.search(r"^import rego\.v1\s*$", code, re.M) and not re.search(
        r"^package\s", code, re.M
    ):
        problems.append("no package declaration")
    return problems


def fingerprint(root: Path) -> tuple[tuple[str, int, int], ...]:
    """Cheap change detector: (path, mtime_ns, size) of every policy file."""
    out = []
    for p in policy_files(root):
        try:
            st = p.stat()
        except OSError:
            continue
        out.append((p.as_posix(), st.st_mtime_ns, st.st_size))
    return tuple(out)
