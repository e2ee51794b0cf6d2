"""[hf] settings: defaults, TOML and AIRLOCK_HF__ overrides, validation, default upstream."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.settings import SettingsError, default_hf_upstream, load_settings


def test_hf_defaults() -> None:
    hf = load_settings(None, env={}).hf
    assert hf.upstream == ""  # = huggingface_hub's own default, read at start
    assert hf.token == ""
    assert hf.forward_client_token is True
    assert hf.ttl == 600.0
    assert hf.offline is False
    assert hf.timeout == 30.0  # the read gap; connect and first-byte deadlines in limits


def test_hf_file_and_env(tmp_path: Path) -> None:
    cfg = tmp_path / "a.toml"
    cfg.write_text(
        '[hf]\nupstream = "http://hub.example/"\nttl = 5\nforward_client_token = false\n'
    )
    hf = load_settings(
        cfg, env={"AIRLOCK_HF__OFFLINE": "true", "AIRLOCK_HF__TOKEN": "hf_server_token"}
    ).hf
    assert (hf.upstream, hf.ttl, hf.forward_client_token) == ("http://hub.example/", 5.0, False)
    assert (hf.offline, hf.token) == (True, "hf_server_token")


def test_hf_problems_are_reported(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[hf]\nupstream = "ftp://x"\nttl = -1\ntimeout = 0\noflline = true\n')
    with pytest.raises(SettingsError) as info:
        load_settings(cfg, env={"AIRLOCK_HF__TOKEN": "has space", "AIRLOCK_HF__OFFLINE": "maybe"})
    text = "\n".join(info.value.problems)
    assert "hf.oflline: unknown key (did you mean 'offline'?)" in text
    assert "hf.offline: expected true or false" in text


def test_hf_semantic_checks(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[hf]\nupstream = "ftp://x"\nttl = -1\ntimeout = 0\ntoken = "a b"\n')
    with pytest.raises(SettingsError) as info:
        load_settings(cfg, env={})
    text = "\n".join(info.value.problems)
    assert "hf.upstream: expected an http(s) URL, got 'ftp://x'" in text
    assert "hf.ttl: must be >= 0" in text
    assert "hf.timeout: must be > 0" in text
    assert "hf.token: must not contain whitespace" in text


def test_default_upstream_is_the_clients_default_not_hf_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Read from huggingface_hub's default constant; HF_ENDPOINT (maybe us) is ignored."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:8080/hf")
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:8080/hf")
    url = default_hf_upstream()
    assert url == constants._HF_DEFAULT_ENDPOINT.rstrip("/")
    assert url.startswith("https://")
    assert "127.0.0.1" not in url
