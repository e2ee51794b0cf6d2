"""Corpus file format, the ``facts refresh-popular`` verb (round trip through a throwaway
argparse parser, as the main CLI wires it), and the name-folding helpers."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import pytest

from proxy.facts import CorpusError, load_corpus
from proxy.facts.cli import register
from proxy.facts.names import deletes, osa_distance, skeleton, ultranormalize, visual_key

TSV = (
    "name\tversion\tmonth\trank_among_15000_most_downloaded\tsummary\n"
    "unranked-thing\t1.0\t2020-01\t\tnot popular\n"
    "Zeta_Lib\t2.0\t2026-10\t3\tthird\n"
    "alpha\t1.0\t2026-11\t1\tfirst\n"
    'beta.pkg\t0.1\t2026-09\t2\tsecond, with "quotes"\n'
    "gamma\t\t\t4\t\n"
)


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="airlock")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result = args.func(args)
    assert isinstance(result, int)
    return result


def test_refresh_from_catalogue_tsv_round_trip(tmp_path: Path) -> None:
    src, out = tmp_path / "pypi.tsv", tmp_path / "out" / "popular.json"
    src.write_text(TSV, encoding="utf-8")
    argv = ["facts", "refresh-popular", "--from", str(src), "--top", "3", "--out", str(out)]
    assert run([*argv, "--retrieved", "2026-11-20"]) == 0
    ranks, info = load_corpus(out)
    assert ranks == {"alpha": 1, "beta-pkg": 2, "zeta-lib": 3}
    assert info.count == 3
    assert info.retrieved == dt.date(2026, 11, 20)
    assert "download" in info.source
    assert "pypi.tsv" in info.source
    assert "2026-11" in info.source  # latest release month seen in the listing
    assert "1..3" in info.method
    text = out.read_text(encoding="utf-8")
    assert '    ["alpha", 1],\n' in text  # one pair per line: refreshes diff readably
    assert out.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in out.parent.iterdir()] == ["popular.json"]  # no temp file left

    assert run([*argv[:-4], "--out", str(out)]) == 0  # default --top keeps every ranked row
    ranks, info = load_corpus(out)
    assert ranks["gamma"] == 4
    assert info.retrieved == dt.datetime.fromtimestamp(src.stat().st_mtime, tz=dt.UTC).date()


def test_refresh_from_top_packages_json(tmp_path: Path) -> None:
    src, out = tmp_path / "top-pypi-packages.json", tmp_path / "popular.json"
    rows = [
        {"project": "small", "download_count": 10},
        {"project": "Big_One", "download_count": 1000},
        {"project": "middle", "download_count": 500},
    ]
    src.write_text(json.dumps({"last_update": "2026-10-01 07:14:41", "rows": rows}), "utf-8")
    argv = ["facts", "refresh-popular", "--from", str(src), "--out", str(out), "--top", "2"]
    assert run([*argv, "--source", "hand-made test ranking"]) == 0
    ranks, info = load_corpus(out)
    assert ranks == {"big-one": 1, "middle": 2}
    assert info.retrieved == dt.date(2026, 10, 1)
    assert info.source == "hand-made test ranking"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name\tversion\n", "rank_among_15000_most_downloaded"),
        ("name\trank_among_15000_most_downloaded\nx\tseven\n", "not an integer"),
        ('{"rows": [{"project": "x"}]}', "download_count"),
        ('{"rows": 3}', "'rows' list"),
        ("{not json", "invalid JSON"),
    ],
)
def test_refresh_rejects_malformed_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    src, out = tmp_path / "in", tmp_path / "popular.json"
    src.write_text(content, encoding="utf-8")
    assert run(["facts", "refresh-popular", "--from", str(src), "--out", str(out)]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_refresh_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        run(["facts", "refresh-popular"])  # --from is required
    with pytest.raises(SystemExit):
        run(["facts", "refresh-popular", "--from", "x", "--top", "0"])
    with pytest.raises(SystemExit):
        run(["facts"])  # a verb is required
    assert run(["facts", "refresh-popular", "--from", str(tmp_path / "missing")]) == 1


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "top level"),
        ({"retrieved": "2026-01-01", "names": []}, "'source'"),
        ({"source": "s", "retrieved": "yesterday", "names": []}, "not a date"),
        ({"source": "s", "retrieved": "2026-01-01", "names": {}}, "'names'"),
        ({"source": "s", "retrieved": "2026-01-01", "names": [["a", 0]]}, "positive rank"),
        ({"source": "s", "retrieved": "2026-01-01", "names": [["a", True]]}, "positive rank"),
        ({"source": "s", "retrieved": "2026-01-01", "names": [["a", 1], ["A", 2]]}, "duplicate"),
        ({"source": "s", "retrieved": "2026-01-01", "names": [["a", 1], ["b", 1]]}, "unique"),
    ],
)
def test_load_corpus_validates(tmp_path: Path, doc: object, message: str) -> None:
    path = tmp_path / "corpus.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(CorpusError, match=message):
        load_corpus(path)


def test_load_corpus_unreadable(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="cannot read"):
        load_corpus(tmp_path / "absent.json")


def test_name_folding() -> None:
    assert ultranormalize("jellyfish") == ultranormalize("je1lyf-ish")
    assert ultranormalize("colorama") == ultranormalize("c0l0rama")
    assert visual_key("matplotlib") == visual_key("rnatplotlib")
    assert visual_key("wheel") == visual_key("vvheel")
    assert skeleton("Re\u0443uests") == "reyuests"  # Cyrillic u is a look-alike of y
    assert skeleton("\uff21\uff22\uff23") == "abc"  # full width
    assert skeleton("a\u00adb\u200dc") == "abc"  # soft hyphen, zero-width joiner
    assert skeleton("Caf\u00e9_Lib") == "cafe-lib"
    assert skeleton("\u0391\u0392\u0395") == "abe"  # Greek capitals


def test_edit_helpers() -> None:
    assert deletes("abc", 1) == {"abc", "bc", "ac", "ab"}
    assert deletes("abc", 2) == {"abc", "bc", "ac", "ab", "a", "b", "c"}
    assert osa_distance("requests", "reqeusts", 2) == 1
    assert osa_distance("requests", "requets", 2) == 1
    assert osa_distance("requests", "rqeuets", 2) == 2
    assert osa_distance("requests", "flask", 2) == 3  # capped at limit + 1
    assert osa_distance("abc", "abc", 0) == 0
