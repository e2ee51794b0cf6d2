"""Issue #13, fault 8: every document the project cites is in the repository (``docs/``), and
nothing points outside it (no ``../shared`` paths)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TREES = ("README.md", "Makefile", "docs", "proxy", "policies", "deploy", "mirror_store", "bench")
SUFFIXES = {".md", ".py", ".rego", ".sh", ".toml", ".yaml", ".yml", ".json", ".txt", ""}
HERE = Path(__file__).resolve()


def _texts() -> dict[Path, str]:
    out: dict[Path, str] = {}
    for name in (*TREES, "tests"):
        root = REPO / name
        paths = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in paths:
            if not path.is_file() or path.suffix not in SUFFIXES or path == HERE:
                continue
            if any(part in ("__pycache__", "golden") for part in path.parts):
                continue
            try:
                out[path] = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
    return out


def test_nothing_refers_outside_the_repository() -> None:
    outside = [
        f"{p.relative_to(REPO)}: {m.group(0)}"
        for p, text in _texts().items()
        for m in re.finditer(r"\.\./shared\b\S*", text)
    ]
    assert outside == []


def test_every_cited_document_exists() -> None:
    cited: set[str] = set()
    for text in _texts().values():
        cited |= set(re.findall(r"\bdocs/([A-Za-z0-9_-]+\.md)", text))
        cited |= {f"{m}.md" for m in re.findall(r"\b(hf-hub-protocol|supply-chain)\b", text)}
    assert cited >= {"hf-hub-protocol.md", "supply-chain.md", "rego-engines.md", "testing.md"}
    missing = sorted(name for name in cited if not (REPO / "docs" / name).is_file())
    assert missing == []


def test_cited_sections_exist() -> None:
    """``docs/hf-hub-protocol.md §6`` and ``supply-chain.md section 2f`` name real headings."""
    sections = {
        name: set(re.findall(r"^#+ (\d+[a-z]?)\.", (REPO / "docs" / name).read_text(), re.M))
        for name in ("hf-hub-protocol.md", "supply-chain.md")
    }
    wanted: list[tuple[str, str, Path]] = []
    pattern = r"(hf-hub-protocol|supply-chain)(?:\.md)?\)?,?\s+(?:§|section )(\d+[a-z]?)"
    for path, text in _texts().items():
        for doc, section in re.findall(pattern, text):
            wanted.append((f"{doc}.md", section, path))
    assert wanted
    missing = [
        f"{p.relative_to(REPO)}: {doc} §{sec}" for doc, sec, p in wanted if sec not in sections[doc]
    ]
    assert missing == []
