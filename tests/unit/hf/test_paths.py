"""Raw-path routing: encoded revisions and tree paths, 1- and 2-segment ids, repo types."""

from __future__ import annotations

import pytest

from proxy.errors import BadRequest, NotFound
from proxy.hf.model import RepoRef
from proxy.hf.paths import Api, Resolve, Static, parse


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "/hf/acme/tiny/resolve/main/config.json",
            Resolve(RepoRef("model", "acme/tiny"), "main", "config.json"),
        ),
        (
            "/hf/acme/tiny/resolve/refs%2Fpr%2F1/sub/dir/notes%20v1.txt",
            Resolve(RepoRef("model", "acme/tiny"), "refs/pr/1", "sub/dir/notes v1.txt"),
        ),
        (
            "/hf/gpt2/resolve/main/config.json",
            Resolve(RepoRef("model", "gpt2"), "main", "config.json"),
        ),
        (
            "/hf/datasets/acme/data/resolve/v1.0/data/train.jsonl",
            Resolve(RepoRef("dataset", "acme/data"), "v1.0", "data/train.jsonl"),
        ),
        (
            "/hf/spaces/acme/app/resolve/main/app.py",
            Resolve(RepoRef("space", "acme/app"), "main", "app.py"),
        ),
        ("/hf/api/models/acme/tiny", Api(RepoRef("model", "acme/tiny"), "info")),
        (
            "/hf/api/models/acme/tiny/revision/refs%2Fpr%2F1",
            Api(RepoRef("model", "acme/tiny"), "revision", "refs/pr/1", name="revision"),
        ),
        (
            "/hf/api/datasets/acme/data/tree/main/nested%2Fdir",
            Api(RepoRef("dataset", "acme/data"), "tree", "main", "nested/dir", name="tree"),
        ),
        (
            "/hf/api/models/gpt2/tree/main",
            Api(RepoRef("model", "gpt2"), "tree", "main", name="tree"),
        ),
        (
            "/hf/api/spaces/acme/app/paths-info/main",
            Api(RepoRef("space", "acme/app"), "paths-info", "main", name="paths-info"),
        ),
        (
            "/hf/api/models/acme/tiny/xet-read-token/" + "a" * 40,
            Api(RepoRef("model", "acme/tiny"), "xet-token", "a" * 40, name="xet-read-token"),
        ),
        (
            "/hf/api/models/acme/tiny/refs",
            Api(RepoRef("model", "acme/tiny"), "unsupported", name="refs"),
        ),
        ("/hf/api/agent-harnesses", Static("agent-harnesses")),
    ],
)
def test_parse__routes(raw: str, expected: object) -> None:
    assert parse(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "/hf/acme/tiny/resolve/main/..%2F..%2Fetc/passwd",
        "/hf/acme/tiny/resolve/main/a//b",
        "/hf/acme/tiny/resolve/%2E%2E/x",
        "/hf/ac%00me/tiny/resolve/main/x",
        "/hf/api/models/acme/ti%0any",
    ],
)
def test_parse__rejects_nonsense(raw: str) -> None:
    with pytest.raises(BadRequest):
        parse(raw)


@pytest.mark.parametrize(
    "raw", ["/hf/acme/tiny", "/hf/api/whatever", "/hf/api/models/acme/tiny/revision"]
)
def test_parse__not_served(raw: str) -> None:
    with pytest.raises(NotFound):
        parse(raw)


def test_repo_ref__keys_and_org() -> None:
    assert RepoRef("dataset", "acme/data").key == "datasets/acme/data"
    assert RepoRef("model", "acme/tiny").key == "acme/tiny"
    assert RepoRef("model", "gpt2").org is None
