"""Settings: TOML + AIRLOCK_ overrides, every bad key or value reported with its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.settings import SettingsError, default_pypi_upstream, load_settings


def test_defaults_without_file() -> None:
    s = load_settings(None, env={})
    assert (s.server.host, s.server.port) == ("127.0.0.1", 8080)
    assert s.store.path == Path("var")
    assert s.policy.path == Path("policies")
    assert s.pypi.upstreams == ()


def test_file_and_env_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "a.toml"
    cfg.write_text(
        '[server]\nport = 9000\n[[pypi.upstreams]]\nname = "internal"\n'
        'url = "http://127.0.0.1:3141/root/dev/+simple/"\nkind = "internal"\n'
    )
    s = load_settings(
        cfg,
        env={
            "AIRLOCK_SERVER__PORT": "9100",
            "AIRLOCK_STORE__PATH": "/srv/x",
            "AIRLOCK_PYPI__OFFLINE": "true",
        },
    )
    assert s.server.port == 9100
    assert s.store.path == Path("/srv/x")
    assert s.pypi.offline is True
    assert s.pypi.upstreams[0].kind == "internal"


def test_every_problem_is_reported(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(
        '[server]\nprot = 1\nport = "x"\n[pypi]\ndenied_files = "drop"\npage_ttl = -1\n'
        '[[pypi.upstreams]]\nname = "a"\nurl = "ftp://x"\n[nope]\n'
    )
    with pytest.raises(SettingsError) as info:
        load_settings(cfg, env={"AIRLOCK_BOGUS": "1"})
    text = "\n".join(info.value.problems)
    assert "server.prot: unknown key (did you mean 'port'?)" in text
    assert "server.port: expected an integer, got 'x'" in text
    assert "pypi.denied_files: must be one of 'yank', 'hide'" in text
    assert "nope: unknown key" in text
    assert "AIRLOCK_BOGUS" in text


def test_semantic_checks(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(
        '[pypi]\npage_ttl = -1\n[[pypi.upstreams]]\nname = "a"\nurl = "ftp://x"\n'
        '[[pypi.upstreams]]\nname = "a"\nurl = "http://h/"\n'
    )
    with pytest.raises(SettingsError) as info:
        load_settings(cfg, env={})
    text = "\n".join(info.value.problems)
    assert "pypi.page_ttl: must be >= 0" in text
    assert "pypi.upstreams[0].url: expected an http(s) URL" in text
    assert "'a' is used twice" in text


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "none.toml", env={})
    bad = tmp_path / "x.toml"
    bad.write_text("[server\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(bad, env={})


def test_config_path_from_env(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[server]\nport = 1234\n")
    assert load_settings(None, env={"AIRLOCK_CONFIG": str(cfg)}).server.port == 1234


def test_default_upstream_follows_pip() -> None:
    assert default_pypi_upstream({"PIP_INDEX_URL": "http://mirror.test/simple/"}).url == (
        "http://mirror.test/simple/"
    )
    from pip._internal.models.index import PyPI

    configured = default_pypi_upstream({})
    assert configured.url.startswith("http")
    assert configured.url in (PyPI.simple_url,) or configured.url != ""
