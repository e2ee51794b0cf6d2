"""Wire rules: Xet stripping, Link rebasing, query normalisation, tree entries → file facts."""

from __future__ import annotations

from proxy.hf.model import FileMeta
from proxy.hf.wire import (
    file_headers,
    meta_from_tree_entry,
    normalise_query,
    parse_links,
    query_pairs,
    strip_xet_json,
    unquote_etag,
)


def test_parse_links__urls_and_rels() -> None:
    value = (
        '<http://hub.invalid/api/models/a/b/tree/main?cursor=x>; rel="next", '
        '<http://cas.invalid/v1/reconstructions/abc>; rel="xet-reconstruction-info", </x>'
    )
    assert parse_links(value) == [
        ("http://hub.invalid/api/models/a/b/tree/main?cursor=x", "next"),
        ("http://cas.invalid/v1/reconstructions/abc", "xet-reconstruction-info"),
        ("/x", ""),
    ]
    assert parse_links("</rel/x>; rel=next") == [("/rel/x", "next")]


def test_strip_xet_json__at_any_depth() -> None:
    doc = [{"path": "a", "xetHash": "f" * 64, "lfs": {"oid": "1", "xetHash": "x"}}, {"path": "b"}]
    assert strip_xet_json(doc) == [{"path": "a", "lfs": {"oid": "1"}}, {"path": "b"}]


def test_normalise_query__0x_and_newer_spellings_agree() -> None:
    old = normalise_query(
        query_pairs("recursive=True&expand=False&junk=1"), ("recursive", "expand")
    )
    new = normalise_query(query_pairs("recursive=true&expand=false"), ("recursive", "expand"))
    assert old == new == "recursive=true&expand=false"
    assert normalise_query(query_pairs("expand=a&expand=b"), ("expand",)) == "expand=a&expand=b"


def test_meta_from_tree_entry__regular_lfs_and_folders() -> None:
    sha1, sha256 = "1" * 40, "2" * 64
    assert meta_from_tree_entry({"type": "file", "path": "c.json", "oid": sha1, "size": 5}) == (
        FileMeta("c.json", 5, False, None, sha1)
    )
    lfs = {
        "type": "file",
        "path": "w.bin",
        "oid": sha1,
        "size": 9,
        "lfs": {"oid": sha256, "size": 9},
    }
    assert meta_from_tree_entry(lfs) == FileMeta("w.bin", 9, True, sha256, None)
    assert meta_from_tree_entry({"type": "directory", "path": "d", "oid": sha1, "size": 0}) is None
    assert meta_from_tree_entry({"type": "file", "path": "x", "oid": "zz", "size": 1}) is None


def test_file_headers__every_header_clients_read() -> None:
    lfs = FileMeta("w.bin", 9, True, "2" * 64, None)
    headers = file_headers(lfs, "c" * 40, "application/octet-stream")
    assert headers["X-Repo-Commit"] == "c" * 40
    assert headers["ETag"] == headers["X-Linked-Etag"] == f'"{"2" * 64}"'
    assert headers["X-Linked-Size"] == "9"
    regular = file_headers(FileMeta("c.json", 5, False, None, "1" * 40), "c" * 40, "text/plain")
    assert regular["ETag"] == f'"{"1" * 40}"'
    assert "X-Linked-Etag" not in regular
    assert unquote_etag('W/"abc"') == "abc"
