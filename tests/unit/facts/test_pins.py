"""Pins: requirements / uv.lock / pylock.toml parsing (hand-built fixtures in the real formats),
the pins list (merge, --replace), PinIndex verdicts and the ``allow`` CLI verbs."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from proxy.facts.pins import (
    Pin,
    PinIndex,
    PinsError,
    PinVerdict,
    ProjectPins,
    dump_pins,
    merge_pins,
)
from proxy.facts.pins_cli import register
from proxy.facts.pins_locks import detect_format, parse_pylock, parse_uv_lock, read_pin_file
from proxy.facts.pins_requirements import logical_lines, parse_requirements

DATA = Path(__file__).resolve().parents[2] / "data" / "locks"
REPO = Path(__file__).resolve().parents[3]

ANYIO_SDIST = "fc69e690fbad2057365a97066ae714a373f7310e2b2e8db1ef8b2f3b115bd905"
ANYIO_WHEEL = "2357123aa0a3ad15df276f945d72ca4b1c4fce6b31194a5a7f33ac6197eb3420"
REQUESTS_SDIST = "d3661b32ef71c53e839964f1652bec8ac7b30a882a656a9e5055bbd4043b48f1"
SNIFFIO_SDIST = "62d7e86ad90f79c2f1a854c2271b5d486a2ac08505a078db006c0490566e80cb"
SNIFFIO_WHEEL = "46e2a22ea06682941d022718e2b1385c377f03a4d2a76b11923c07e5a9199927"
ATTRS_WHEEL = "097968485781a30e2bd231a8d653647093f2d6a1b16a1a66f508b197d028b03f"


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="airlock")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result = args.func(args)
    assert isinstance(result, int)
    return result


def by_name(pins: tuple[Pin, ...]) -> dict[str, Pin]:
    out = {pin.name: pin for pin in pins}
    assert len(out) == len(pins)
    return out


# -- requirements files ------------------------------------------------------------------------


def test_requirements_with_hashes_continuations_includes_and_markers() -> None:
    parsed = parse_requirements(DATA / "req" / "requirements.txt")
    assert parsed.format == "requirements"
    assert [p.name for p in parsed.files] == ["requirements.txt", "base.txt", "constraints.txt"]
    pins = by_name(parsed.pins)
    assert sorted(pins) == ["anyio", "certifi", "idna", "requests", "sniffio", "zope-interface"]
    assert pins["anyio"].version == "4.9.0"
    assert pins["anyio"].sha256 == (ANYIO_SDIST, ANYIO_WHEEL)  # from two continuation lines
    assert pins["anyio"].origin.endswith("requirements.txt:8")  # the logical line's first line
    requests = pins["requests"]  # written "Requests[socks]": extras stripped, name canonical
    assert requests.version == "2.32.3"
    assert requests.sha256 == (REQUESTS_SDIST,)  # upper-case hex lowered; comment ends the line
    assert requests.marker == 'python_version >= "3.8"'  # kept, but does not limit the pin
    assert pins["zope-interface"].version == "7.2"  # inline comment dropped
    assert pins["sniffio"].sha256 == (SNIFFIO_SDIST,)  # "--hash VALUE"; "===" accepted
    assert any("sha512" in note for note in parsed.notes)  # other algorithms are noted
    assert pins["idna"].origin.endswith("base.txt:2")  # from "-r base.txt"
    assert pins["certifi"].sha256 == ()  # from "-c"/"--constraint=" (read once: diamond)


def test_requirements_lines_that_are_not_pins_are_all_reported() -> None:
    with pytest.raises(PinsError) as info:
        parse_requirements(DATA / "req" / "not-pinned.txt")
    message = str(info.value)
    assert "7 problem(s)" in message
    for number, text in [
        (3, "flask>=2.0"),
        (4, "-e ./local-project"),
        (5, "mypkg @ https://files.example/mypkg-1.0-py3-none-any.whl"),
        (6, "numpy==2.*"),
        (7, "./wheels/localpkg-1.0-py3-none-any.whl"),
        (8, "httpx"),
        (9, "rich==13.7.1 --hash=md5"),
    ]:
        assert f"not-pinned.txt:{number}: '{text}'" in message
    assert "attrs" not in message  # the good line is not listed


def test_requirements_include_problems(tmp_path: Path) -> None:
    with pytest.raises(PinsError, match="include cycle through"):
        parse_requirements(DATA / "req" / "cycle-a.txt")
    missing = tmp_path / "r.txt"
    missing.write_text("-r nowhere.txt\n-r https://files.example/r.txt\n", encoding="utf-8")
    with pytest.raises(PinsError) as info:
        parse_requirements(missing)
    assert "nowhere.txt does not exist" in str(info.value)
    assert "remote include" in str(info.value)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("--frobnicate", "unsupported option --frobnicate"),
        ("pkg==1.0 --frobnicate", "unsupported option --frobnicate"),
        ("pkg==1.0 --hash=sha256:abc", "64 hex digits"),
        ("pkg==1.0,!=1.1", "not an exact"),
        ("pkg<2,>=1", "not an exact"),
        ("-i", "needs a value"),
        ("-r", "needs a file"),
    ],
)
def test_requirements_rejects(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "r.txt"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(PinsError, match=problem):
        parse_requirements(path)


def test_requirements_options_that_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "r.txt"
    path.write_text(
        "--index-url=https://index.example/simple --pre\n"
        "-f ./wheels\n--no-binary :all:\n"
        "pkg==1.0 --config-settings key=value\n",
        encoding="utf-8",
    )
    assert [(p.name, p.version) for p in parse_requirements(path).pins] == [("pkg", "1.0")]


def test_logical_lines_follow_pip() -> None:
    text = "a==1 \\\n  --hash=sha256:x \\\n# c\nb==2  # note\n\n   # only a comment\nc==3 \\"
    assert logical_lines(text) == [(1, "a==1   --hash=sha256:x"), (4, "b==2"), (7, "c==3")]


# -- lock files --------------------------------------------------------------------------------


def test_uv_lock() -> None:
    parsed = parse_uv_lock(DATA / "uv.lock")
    pins = by_name(parsed.pins)
    assert sorted(pins) == ["anyio", "idna", "sniffio"]  # editable root and git source skipped
    assert pins["anyio"].sha256 == (ANYIO_SDIST, ANYIO_WHEEL)
    assert pins["sniffio"].version == "1.3.1"
    assert pins["sniffio"].sha256 == (SNIFFIO_SDIST, SNIFFIO_WHEEL)  # lowered
    assert any("demo-app (editable source" in n for n in parsed.notes)
    assert any("private-tool (git source" in n for n in parsed.notes)


def test_pylock_toml() -> None:
    parsed = parse_pylock(DATA / "pylock.toml")
    pins = by_name(parsed.pins)
    assert sorted(pins) == ["attrs", "numpy"]
    assert ATTRS_WHEEL in pins["attrs"].sha256
    assert len(pins["attrs"].sha256) == 2
    assert pins["numpy"].version == "2.2.3"
    notes = "\n".join(parsed.notes)
    for skipped in ("in-house (vcs", "local-lib (directory", "vendored (archive"):
        assert skipped in notes


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("lock-version = '2.0'\n", "unsupported lock-version"),
        ("packages = []\n", "not a pylock file"),
        (
            "lock-version = '1.0'\n[[packages]]\nname = 'a'\nversion = '1'\n"
            "wheels = [{ name = 'a-1-py3-none-any.whl', hashes = { sha256 = 'xyz' } }]\n",
            "not a sha256 hex digest",
        ),
        ("lock-version = '1.0'\n[[packages]]\nversion = '1'\n", "'name'"),
        ("lock-version = '1.0\n", "cannot read TOML"),
    ],
)
def test_pylock_rejects(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "pylock.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PinsError, match=problem):
        parse_pylock(path)


def test_uv_lock_rejects(tmp_path: Path) -> None:
    path = tmp_path / "uv.lock"
    path.write_text(
        "version = 1\n[[package]]\nname = 'a'\nversion = '1'\n"
        "source = { registry = 'https://index.example/simple' }\n"
        "sdist = { url = 'https://files.example/a-1.tar.gz', hash = 'nohash' }\n",
        encoding="utf-8",
    )
    with pytest.raises(PinsError, match="malformed hash"):
        parse_uv_lock(path)


def test_format_detection(tmp_path: Path) -> None:
    assert detect_format(Path("x/uv.lock")) == "uv.lock"
    assert detect_format(Path("pylock.toml")) == "pylock"
    assert detect_format(Path("pylock.dev.toml")) == "pylock"
    assert detect_format(Path("requirements-dev.txt")) == "requirements"
    for source, expected in [("uv.lock", "uv.lock"), ("pylock.toml", "pylock")]:
        renamed = tmp_path / f"{source}.copy"
        shutil.copy(DATA / source, renamed)
        assert detect_format(renamed) == expected  # by content
        assert read_pin_file(renamed).format == expected
    plain = tmp_path / "constraints.in"
    plain.write_text("idna==3.10\n", encoding="utf-8")
    assert detect_format(plain) == "requirements"
    with pytest.raises(PinsError, match="no such file"):
        read_pin_file(tmp_path / "absent.txt")


# -- the pins list and its index -------------------------------------------------------------


def index_with(**projects: tuple[list[str], list[str]]) -> PinIndex:
    pins = [
        Pin(name, version, tuple(hashes))
        for name, (versions, hashes) in projects.items()
        for version in versions
    ]
    return PinIndex.from_document(merge_pins(None, pins, []))


def test_check_verdicts() -> None:
    index = index_with(
        anyio=(["4.9.0", "1.0"], [ANYIO_SDIST, ANYIO_WHEEL]), certifi=(["2025.1"], [])
    )
    assert index.check("requests", "2.0", ANYIO_SDIST) == PinVerdict(False, False, None)
    assert index.check("anyio", "4.9.0", ANYIO_WHEEL) == PinVerdict(True, True, True)
    assert index.check("AnyIO", "4.9.0", ANYIO_WHEEL.upper()) == PinVerdict(True, True, True)
    assert index.check("anyio", "1.0.0", None) == PinVerdict(True, True, None)  # 1.0 == 1.0.0
    assert index.check("anyio", "4.9.1", ANYIO_SDIST) == PinVerdict(True, False, True)
    assert index.check("anyio", "4.9.0", REQUESTS_SDIST) == PinVerdict(True, True, False)
    assert index.check("anyio", "4.9.0", "") == PinVerdict(True, True, False)
    assert index.check("anyio", "not a version") == PinVerdict(True, False, None)
    assert index.check("certifi", "2025.1.0", REQUESTS_SDIST) == PinVerdict(True, True, None)
    assert index.check("anyio", "4.9.0", ANYIO_SDIST).to_input() == {
        "pinned_project": True,
        "version_ok": True,
        "hash_ok": True,
    }


def test_for_project() -> None:
    index = index_with(zope_interface=(["7.2"], [ANYIO_SDIST]))
    pins = index.for_project("Zope.Interface")
    assert pins == ProjectPins(frozenset({"7.2"}), frozenset({ANYIO_SDIST}))
    assert pins.allows_version("7.2.0")
    assert not pins.allows_version("7.3")
    assert index.for_project("zope") is None


def test_merge_unions_and_dedupes() -> None:
    first = merge_pins(None, [Pin("a", "1.0", (ANYIO_SDIST,))], [{"file": "x.txt"}])
    second = merge_pins(
        first,
        [Pin("a", "1.0.0", (ANYIO_WHEEL.upper(),)), Pin("a", "0.9"), Pin("b", "2")],
        [{"file": "x.txt", "imported": "later"}, {"file": "y.txt"}],
    )
    assert second["projects"] == {
        "a": {"versions": ["0.9", "1.0"], "sha256": sorted([ANYIO_SDIST, ANYIO_WHEEL])},
        "b": {"versions": ["2"], "sha256": []},
    }
    assert second["sources"] == [{"file": "x.txt", "imported": "later"}, {"file": "y.txt"}]
    assert json.loads(dump_pins(second)) == second


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"sources": [], "projects": []},
        {"sources": {}, "projects": {}},
        {"projects": {"a": {"versions": "1.0"}}},
        {"projects": {"a": {"versions": ["1.0"], "sha256": ["abc"]}}},
    ],
)
def test_load_rejects_malformed(doc: Any, tmp_path: Path) -> None:
    path = tmp_path / "pins.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(PinsError, match=str(path)):
        PinIndex.load(path)


def test_shipped_default_list_is_valid_and_empty() -> None:
    index = PinIndex.load(REPO / "policies" / "lists" / "pins.json")
    assert len(index) == 0
    assert index.check("requests", "2.32.3") == PinVerdict(False, False, None)


# -- CLI --------------------------------------------------------------------------------------


def test_cli_import_merge_then_replace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = dt.datetime.now(dt.UTC).date()  # both imports run after this
    out = tmp_path / "lists" / "pins.json"
    assert run(["allow", "import", str(DATA / "uv.lock"), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "3 pins of 3 projects (uv.lock)" in printed.out
    assert "skipped demo-app" in printed.err
    assert out.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in out.parent.iterdir()] == ["pins.json"]

    argv = ["allow", "import", str(DATA / "pylock.toml"), str(DATA / "req" / "requirements.txt")]
    assert run([*argv, "--out", str(out)]) == 0  # merges into the existing list
    after = dt.datetime.now(dt.UTC).date()  # the run may cross midnight UTC
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert sorted(doc["projects"]) == [
        "anyio", "attrs", "certifi", "idna", "numpy", "requests", "sniffio", "zope-interface",
    ]  # fmt: skip
    assert doc["projects"]["sniffio"]["sha256"] == sorted([SNIFFIO_SDIST, SNIFFIO_WHEEL])
    files = [Path(s["file"]).name for s in doc["sources"]]
    assert files == ["uv.lock", "pylock.toml", "requirements.txt", "base.txt", "constraints.txt"]
    imported = {dt.date.fromisoformat(s["imported"]) for s in doc["sources"]}
    assert all(before <= day <= after for day in imported), imported
    assert "updated" in capsys.readouterr().out

    index = PinIndex.load(out)
    assert index.check("anyio", "4.9.0", ANYIO_WHEEL) == PinVerdict(True, True, True)
    assert index.check("attrs", "25.1", ATTRS_WHEEL) == PinVerdict(True, True, True)

    assert run(["allow", "import", str(DATA / "pylock.toml"), "--out", str(out), "--replace"]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert sorted(doc["projects"]) == ["attrs", "numpy"]
    assert [Path(s["file"]).name for s in doc["sources"]] == ["pylock.toml"]


def test_cli_import_writes_nothing_on_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pins.json"
    argv = ["allow", "import", str(DATA / "uv.lock"), str(DATA / "req" / "not-pinned.txt")]
    assert run([*argv, "--out", str(out)]) == 1
    assert "flask>=2.0" in capsys.readouterr().err
    assert not out.exists()
    out.write_text("{broken", encoding="utf-8")
    assert run(["allow", "import", str(DATA / "uv.lock"), "--out", str(out)]) == 1
    assert out.read_text(encoding="utf-8") == "{broken"


def test_cli_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lists = tmp_path / "lists"
    assert run(["allow", "import", str(DATA / "uv.lock"), "--out", str(lists / "pins.json")]) == 0
    capsys.readouterr()
    assert run(["allow", "list", "--lists", str(lists)]) == 0
    printed = capsys.readouterr().out
    assert "anyio: 4.9.0 (2 sha256)" in printed
    assert "3 pinned projects" in printed
    assert "uv.lock (uv.lock," in printed
    assert run(["allow", "list", "Sniffio", "--lists", str(lists / "pins.json")]) == 0
    printed = capsys.readouterr().out
    assert "sniffio: versions 1.3.1" in printed
    assert f"sha256:{SNIFFIO_WHEEL}" in printed
    assert run(["allow", "list", "flask", "--lists", str(lists)]) == 1
    assert run(["allow", "list", "--lists", str(tmp_path / "none.json")]) == 2
