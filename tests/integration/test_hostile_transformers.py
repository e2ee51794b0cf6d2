"""transformers through the proxy against a hostile hub (issue #11): on the first fetch
``config.json`` is swapped for another valid config of the same length (a bigger model) and
``generation_config.json`` has one byte flipped.  ``AutoConfig.from_pretrained`` and
``GenerationConfig.from_pretrained`` at the commit must end in an error or the right values,
never the tampered ones, on the first run and on a second run with the same cache (which must
succeed: the upstream is honest again); nothing wrong is stored; the log names each refusal.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from structlog.testing import capture_logs

from tests.fakes.hf_client import hf_env, run_hf
from tests.fakes.hf_hub import start_fake_hub
from tests.fakes.hf_proxy import hf_proxy
from tests.fakes.hf_repos import GITATTRIBUTES, build_repo
from tests.fakes.hostile import HostileUpstream, Tamper
from tests.fakes.hostile_hub import store_problems

REPO = "hostile/tiny-gpt2"
CONFIG = json.dumps({"model_type": "gpt2", "n_embd": 16, "n_layer": 2, "n_head": 2}).encode()
SWAPPED = json.dumps({"model_type": "gpt2", "n_embd": 64, "n_layer": 8, "n_head": 2}).encode()
GENERATION = json.dumps({"max_length": 20, "do_sample": False, "temperature": 0.5}).encode()

SNIPPET = """
import transformers
out = {}
try:
    cfg = transformers.AutoConfig.from_pretrained(REPO, revision=COMMIT, cache_dir=cache_dir)
    out["config"] = ["ok", cfg.n_embd, cfg.n_layer]
except Exception as e:
    out["config"] = ["error", type(e).__name__, str(e)[:400]]
try:
    gen = transformers.GenerationConfig.from_pretrained(REPO, revision=COMMIT,
                                                        cache_dir=cache_dir)
    out["generation"] = ["ok", gen.max_length, gen.temperature]
except Exception as e:
    out["generation"] = ["error", type(e).__name__, str(e)[:400]]
result = out
"""
RIGHT = {"config": ["ok", 16, 2], "generation": ["ok", 20, 0.5]}


async def test_transformers_gets_an_error_or_the_right_config_never_a_tampered_one(
    tmp_path: Path,
) -> None:
    assert len(SWAPPED) == len(CONFIG)
    files = {
        ".gitattributes": GITATTRIBUTES,
        "config.json": CONFIG,
        "generation_config.json": GENERATION,
    }
    repo = build_repo("model", REPO, [files], created_at=datetime(2024, 5, 1, tzinfo=UTC))
    snippet = f"REPO, COMMIT = {REPO!r}, {repo.head.oid!r}\n" + SNIPPET
    async with start_fake_hub(repos=[repo]) as hub, HostileUpstream(hub.url).running() as bad:
        swap = bad.tamper(Tamper("/config.json", swap=SWAPPED))
        flip = bad.tamper(Tamper("/generation_config.json", flip_at=len(GENERATION) // 2))
        with capture_logs() as logs:
            async with hf_proxy(tmp_path, bad.url) as proxy:
                env = hf_env(proxy.endpoint, tmp_path / "client")
                runs = [(await run_hf(snippet, env)).ok() for _ in range(2)]
    assert swap.done == 1
    assert flip.done == 1
    for n, out in enumerate(runs, 1):
        for name, got in out.items():
            assert got[0] == "error" or got == RIGHT[name], f"run {n}: {name} {got}"
    assert runs[1] == RIGHT, runs
    refused = {
        str(e.get("path"))
        for e in logs
        if e.get("event") == "hf_fill_failed" and "verification failed" in str(e.get("reason"))
    }
    assert refused == {"config.json", "generation_config.json"}, refused
    allowed = {f.sha256 for f in repo.head.files.values()}
    assert await store_problems(tmp_path / "store", allowed) == []
