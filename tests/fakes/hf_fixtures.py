"""The repos, users and aliases every fake hub starts with (names are constants for tests)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tests.fakes.hf_blobs import Blob, SafetensorsBlob
from tests.fakes.hf_repos import (
    GITATTRIBUTES,
    HUB_CREATED_FLOOR,
    Repo,
    RepoType,
    build_repo,
    object_id,
    safetensors_bytes,
)

MODEL = "acme/tiny-model"
DATASET = "acme/tiny-data"
SPACE = "acme/tiny-space"
BIG_MODEL = "acme/big-model"
GATED_MODEL = "acme/gated-model"
PRIVATE_MODEL = "acme/private-model"
LEGACY_MODEL = "gpt-mini"  # one-segment legacy id; the hub redirects it to LEGACY_CANONICAL
LEGACY_CANONICAL = "acme/gpt-mini"
RENAMED_MODEL = "acme/old-tiny-model"  # transferred repo: old name redirects to MODEL
BIG_FILE = "model.safetensors"
READER = "reader"  # user name granted access to the gated and the private repo
READ_TOKEN = "hf_fake_reader_0123456789abcdef"  # token of READER
OTHER_TOKEN = "hf_fake_outsider_0123456789abcd"  # a valid user without any grant
TOKENS = {READ_TOKEN: READER, OTHER_TOKEN: "outsider"}
# (type, legacy or old id) -> canonical id: the hub answers /resolve there with a relative 307.
ALIASES: dict[tuple[RepoType, str], str] = {
    ("model", LEGACY_MODEL): LEGACY_CANONICAL,
    ("model", RENAMED_MODEL): MODEL,
}
DEFAULT_LARGE_FILE_SIZE = 200 * 1024 * 1024 + 12_345  # > 200 MB, last chunk partial on purpose


def _config(model_type: str, generation: int, **extra: object) -> bytes:
    body: dict[str, object] = {"architectures": ["TinyLM"], "model_type": model_type}
    body.update(extra)
    if generation:
        body["generation"] = generation
    return json.dumps(body, indent=2).encode() + b"\n"


def _weights(scale: float) -> bytes:
    return safetensors_bytes(
        {
            "bias": ([4], [scale * i for i in range(4)]),
            "weight": ([4, 4], [scale * i / 16 for i in range(16)]),
        }
    )


MODEL_CARD = {
    "pipeline_tag": "text-generation",
    "library_name": "transformers",
    "tags": ["transformers", "safetensors", "text-generation", "license:apache-2.0"],
    "cardData": {"license": "apache-2.0"},
    "config": {"architectures": ["TinyLM"], "model_type": "tiny"},
    "transformersInfo": {"auto_model": "AutoModelForCausalLM", "pipeline_tag": "text-generation"},
    "downloads": 42,
    "likes": 3,
}


def model_repo(
    repo_id: str, *, created_at: datetime, generation: int = 0, **options: object
) -> Repo:
    """Small model: tag v1.0 -> 1st commit, main -> 2nd, refs/pr/1 -> a 3rd on top of main."""
    first: dict[str, bytes | Blob | None] = {
        ".gitattributes": GITATTRIBUTES,
        "config.json": _config("tiny", generation, hidden_size=4),
        "model.safetensors": _weights(1.0 + generation),
        "sub/dir/file.txt": b"a file in a subfolder\n",
        "sub/dir/notes v1.txt": b"notes with a space in the name\n",
    }
    second: dict[str, bytes | Blob | None] = {
        "config.json": _config("tiny", generation, hidden_size=8),
        "README.md": b"---\nlicense: apache-2.0\n---\n# tiny model\n",
    }
    pr: dict[str, bytes | Blob | None] = {
        "config.json": _config("tiny", generation, hidden_size=16)
    }
    options.setdefault("card", dict(MODEL_CARD))
    return build_repo(
        "model",
        repo_id,
        [first, second],
        created_at=created_at,
        tags={"v1.0": 0},
        pull_requests={1: pr},
        generation=generation,
        **options,
    )


def default_repos(large_file_size: int = DEFAULT_LARGE_FILE_SIZE) -> list[Repo]:
    """The fixture repos every fake hub starts with (hashes the large file once per process)."""
    base = datetime(2024, 3, 2, 10, 0, tzinfo=UTC)
    dataset = build_repo(
        "dataset",
        DATASET,
        [
            {
                ".gitattributes": GITATTRIBUTES,
                "README.md": b"---\nlicense: mit\n---\n# tiny data\n",
                "data/train.jsonl": b'{"text": "hello"}\n{"text": "world"}\n',
            },
            {
                "data/train.jsonl": b'{"text": "hello"}\n{"text": "world"}\n{"text": "again"}\n',
                "data/vectors.safetensors": _weights(0.5),
            },
        ],
        created_at=base + timedelta(days=1),
        tags={"v1.0": 0},
        card={"tags": ["license:mit"], "cardData": {"license": "mit"}, "downloads": 7, "likes": 1},
    )
    space = build_repo(
        "space",
        SPACE,
        [
            {
                "README.md": b"---\nsdk: gradio\napp_file: app.py\n---\n",
                "app.py": b"print('hello')\n",
            },
            {"requirements.txt": b"gradio\n"},
        ],
        created_at=base + timedelta(days=2),
        card={
            "sdk": "gradio",
            "tags": ["gradio"],
            "likes": 0,
            "subdomain": "acme-tiny-space",
            "runtime": {"stage": "RUNNING", "hardware": {"current": "cpu-basic"}},
            "models": [MODEL],
            "datasets": [DATASET],
        },
    )
    big = build_repo(
        "model",
        BIG_MODEL,
        [
            {".gitattributes": GITATTRIBUTES, "config.json": _config("big", 0)},
            {BIG_FILE: SafetensorsBlob(seed=20_240_302, length=large_file_size)},
        ],
        created_at=base + timedelta(days=3),
    )
    return [
        model_repo(MODEL, created_at=base),
        dataset,
        space,
        big,
        model_repo(LEGACY_CANONICAL, created_at=HUB_CREATED_FLOOR),
        model_repo(
            GATED_MODEL, created_at=base + timedelta(days=4), gated="manual", readers={READER}
        ),
        model_repo(
            PRIVATE_MODEL, created_at=base + timedelta(days=5), private=True, readers={READER}
        ),
    ]


def recreated(repo: Repo, *, created_at: datetime | None = None) -> Repo:
    """Same type and name, new content, new commits, new `_id` and newer `createdAt`."""
    generation = repo.generation + 1
    when = created_at or max(repo.last_modified, repo.created_at) + timedelta(days=400)
    fresh = model_repo(repo.repo_id, created_at=when, generation=generation)
    if repo.repo_type == "model":
        return fresh
    # Datasets/spaces: reuse the model layout under the other type; identity is what matters here.
    salt = f"{repo.repo_type}/{repo.repo_id}/{generation}"
    return replace(fresh, repo_type=repo.repo_type, object_id=object_id(when, salt), card={})
