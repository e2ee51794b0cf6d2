"""A missing component fails the test under CI and skips it elsewhere, with the same reason."""

from __future__ import annotations

import pytest

from tests.require import in_ci, require

REASON = "widget is not installed: `make deps-widget` installs it"


@pytest.mark.parametrize("value", ["true", "TRUE", "1", "yes"])
def test_ci_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    assert in_ci()


@pytest.mark.parametrize("value", ["", "0", "false", "no"])
def test_no_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    assert not in_ci()
    monkeypatch.delenv("CI")
    assert not in_ci()


def test_a_missing_component_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"required in CI: widget is not installed"):
        require(False, REASON)


def test_a_missing_component_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"^widget is not installed: `make"):
        require(False, REASON)


@pytest.mark.parametrize("ci", ["true", ""])
def test_a_present_component_goes_on(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    require(True, REASON)  # neither raises
