"""Parsing and rendering keep every field; HTML and JSON agree."""

from __future__ import annotations

from proxy.pypi.model import File, ProjectDetail
from proxy.pypi.wire import parse_html, parse_json, render_html, render_json

DETAIL = ProjectDetail(
    name="demo",
    files=(
        File(
            "demo-1.0-py3-none-any.whl",
            "http://u/f/demo-1.0-py3-none-any.whl",
            {"sha256": "ab" * 32},
            ">=3.8,<4",
            'bad "build"',
            {"sha256": "cd" * 32},
            True,
            123,
            "2024-01-02T03:04:05Z",
            "http://u/p/demo-1.0-py3-none-any.whl",
        ),
        File("demo-1.0.tar.gz", "http://u/f/demo-1.0.tar.gz", {"sha256": "ef" * 32}),
    ),
    versions=("1.0",),
    tracks=("http://other/simple/demo/",),
    alternate_locations=("http://alt/simple/demo/",),
)


def test_json_round_trip_keeps_everything() -> None:
    assert parse_json("demo", render_json(DETAIL), "http://u/") == DETAIL


def test_html_round_trip_keeps_what_html_carries() -> None:
    back = parse_html("demo", render_html(DETAIL), "http://u/")
    f = back.files[0]
    assert f.hashes == {"sha256": "ab" * 32}
    assert f.requires_python == ">=3.8,<4"
    assert f.yanked == 'bad "build"'
    assert f.core_metadata == {"sha256": "cd" * 32}
    assert f.gpg_sig is True
    assert f.provenance == "http://u/p/demo-1.0-py3-none-any.whl"
    assert back.tracks == DETAIL.tracks
    assert back.alternate_locations == DETAIL.alternate_locations
    assert back.files[1].core_metadata is False


def test_relative_urls_resolve_against_the_page() -> None:
    page = '<a href="../../packages/x/demo-2.0.tar.gz#sha256=aa" data-yanked="">demo-2.0.tar.gz</a>'
    d = parse_html("demo", page, "http://idx/simple/demo/")
    assert d.files[0].url == "http://idx/packages/x/demo-2.0.tar.gz"
    assert d.files[0].yanked is True
    assert d.files[0].hashes == {"sha256": "aa"}


def test_legacy_dist_info_metadata_is_read() -> None:
    page = (
        '<a href="demo-1.whl#sha256=aa" data-dist-info-metadata="sha256=bb">x</a>'
        '<a href="demo-2.whl" data-dist-info-metadata="true">y</a>'
    )
    d = parse_html("demo", page, "http://i/")
    assert d.files[0].core_metadata == {"sha256": "bb"}
    assert d.files[1].core_metadata is True
