"""Settings: one TOML file plus ``AIRLOCK_SECTION__KEY`` environment overrides, validated up front.

This is the only module that reads configuration files or the environment.  Every bad key or
value is reported at once, with its dotted path, before the server starts.

Environment values are parsed as TOML values when they parse (``AIRLOCK_SERVER__PORT=9000`` is
an integer, ``AIRLOCK_PYPI__UPSTREAMS='[{name="a", url="http://…"}]'`` a list of tables) and
taken as plain strings otherwise (``AIRLOCK_STORE__PATH=/srv/airlock``).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from .egress.origins import parse_allow_entry
from .upstream_limits import UpstreamLimits, check_limits

ENV_PREFIX = "AIRLOCK_"
CONFIG_ENV = "AIRLOCK_CONFIG"
# Variables of the airlock family that are not settings (the verify client's token).
NOT_SETTINGS = frozenset({CONFIG_ENV, "AIRLOCK_TOKEN"})


class SettingsError(Exception):
    """Invalid configuration; ``problems`` lists one readable line per bad key or value."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    # Base URL clients use to reach us when behind a reverse proxy; empty = from the request.
    public_url: str = ""


@dataclass(frozen=True, slots=True)
class StoreSettings:
    path: Path = Path("var")


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    name: str
    url: str
    kind: Literal["public", "internal"] = "public"
    timeout: float = 30.0  # read gap: seconds without progress before a transfer fails
    limits: UpstreamLimits = field(default_factory=UpstreamLimits)  # deadlines, breaker


@dataclass(frozen=True, slots=True)
class PypiSettings:
    # Ordered; empty means "the index pip itself would use" (resolved at start).
    upstreams: tuple[UpstreamSettings, ...] = ()
    page_ttl: float = 600.0  # seconds before a cached project page is revalidated upstream
    offline: bool = False  # serve only what is stored, never contact an upstream
    # How a denied file appears in a project page: "yank" keeps it, marked yanked with the
    # reason (PEP 592, so resolvers skip it yet show why); "hide" leaves it out entirely.
    denied_files: Literal["yank", "hide"] = "yank"
    # Parsed project pages kept in memory, counted in files (~1 KB each): the page cache and
    # the cache of decided pages each stay under this; the oldest pages are evicted first.
    memory_files: int = 250_000


@dataclass(frozen=True, slots=True)
class HfSettings:
    # Upstream hub; "" = huggingface_hub's own default, read at start (no hub host written here)
    upstream: str = ""
    token: str = ""  # server-side hub token; when set it replaces every client's token
    forward_client_token: bool = True  # send the client's token to the configured hub only
    ttl: float = 600.0  # seconds before repo info / revision -> commit is revalidated upstream
    offline: bool = False  # serve only what is stored, never contact the hub
    timeout: float = 30.0  # read gap: seconds without progress before a transfer fails
    limits: UpstreamLimits = field(default_factory=UpstreamLimits)  # deadlines, breaker


@dataclass(frozen=True, slots=True)
class PolicySettings:
    path: Path = Path("policies")
    # "auto": OPA in-process when its package is installed (make serve installs it), else
    # regopy; "opa": an external OPA server (opa_url); "opa-embedded": OPA in-process (required)
    engine: Literal["auto", "regopy", "opa", "opa-embedded"] = "auto"
    opa_url: str = ""  # e.g. "http://127.0.0.1:8181"; the proxy pushes the policy there
    mode: Literal["enforce", "monitor"] = "enforce"  # monitor: decide and log, never block
    timeout: float = 2.0  # seconds per evaluation before it counts as an error (deny)
    workers: int = 2  # evaluation threads
    reload_interval: float = 2.0  # seconds between checks of the policy folder; 0 = off
    # Seconds a project page's decision is reused before it is evaluated again (in the
    # background, so time-dependent rules such as the cooldown move on); a new policy
    # revision or new page content is decided at once.
    decision_ttl: float = 300.0


@dataclass(frozen=True, slots=True)
class ClientSettings:
    id: str  # recorded in every decision, log line and the AI-BOM
    token_sha256: str = ""  # sha256 hex of the client's token (preferred: no secret at rest)
    token: str = ""  # or the token itself
    groups: tuple[str, ...] = ()  # policy input: per-group settings apply
    scopes: tuple[str, ...] = ()  # "admin": may use the admin API and page


@dataclass(frozen=True, slots=True)
class AccessSettings:
    # Requests without a known token: "loopback" allows them only from 127.0.0.0/8 and ::1.
    anonymous: Literal["allow", "loopback", "deny"] = "loopback"
    clients: tuple[ClientSettings, ...] = ()
    # Failed admin logins (page form, admin API and /metrics tokens), counted per source
    # address and per client: this many within login_window seconds lock that source or
    # client out for login_lockout seconds, doubling per repeated lockout up to
    # login_lockout_max; login_tracked sources and clients are remembered (LRU) each.
    login_max_failures: int = 5
    login_window: float = 300.0
    login_lockout: float = 60.0
    login_lockout_max: float = 3600.0
    login_tracked: int = 10_000


@dataclass(frozen=True, slots=True)
class EgressSettings:
    # Destinations airlock may connect to whatever they resolve to, besides the configured
    # upstreams (a CDN or file host on an internal network): origins "http://10.0.0.5:8081"
    # (exactly that scheme, host and port) or hosts "files.internal.example[:port]" (http or
    # https, default ports unless given).  Everything else must resolve to public addresses.
    allow: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LogSettings:
    format: Literal["console", "json"] = "console"
    level: Literal["debug", "info", "warning", "error"] = "info"


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    pypi: PypiSettings = field(default_factory=PypiSettings)
    hf: HfSettings = field(default_factory=HfSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    access: AccessSettings = field(default_factory=AccessSettings)
    egress: EgressSettings = field(default_factory=EgressSettings)
    log: LogSettings = field(default_factory=LogSettings)


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read *path* (or ``$AIRLOCK_CONFIG``), overlay ``AIRLOCK_…`` variables, validate.

    Raises:
        SettingsError: with every problem found.
    """
    env = os.environ if env is None else env
    if path is None and env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV])
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError([f"config file {path} does not exist"]) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise SettingsError([f"config file {path} is not valid TOML: {e}"]) from None
    problems: list[str] = []
    _overlay_env(raw, env, problems)
    settings = _build(Settings, raw, "", problems)
    if not problems:
        _check_semantics(settings, problems)
    if problems:
        raise SettingsError(problems)
    assert isinstance(settings, Settings)
    return settings


def _overlay_env(raw: dict[str, Any], env: Mapping[str, str], problems: list[str]) -> None:
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX) or key in NOT_SETTINGS:
            continue
        parts = key[len(ENV_PREFIX) :].lower().split("__")
        if len(parts) != 2 or not all(parts):
            problems.append(f"{key}: expected {ENV_PREFIX}SECTION__KEY, e.g. AIRLOCK_SERVER__PORT")
            continue
        try:
            parsed: Any = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value
        section = raw.setdefault(parts[0], {})
        if not isinstance(section, dict):
            problems.append(f"{key}: [{parts[0]}] is not a table in the config file")
            continue
        section[parts[1]] = parsed


def _build(cls: type[Any], raw: Any, where: str, problems: list[str]) -> Any:
    if not isinstance(raw, dict):
        problems.append(f"{where or 'config'}: expected a table, got {_show(raw)}")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{where}.{key}" if where else key
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"{dotted}: unknown key{hint}; known: {', '.join(fields)}")
            continue
        kwargs[key] = _convert(hints[key], value, dotted, problems)
    for name, f in fields.items():
        no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if name not in kwargs and no_default:
            problems.append(f"{where}.{name}: required")
    try:
        return cls(**kwargs)
    except TypeError:
        return None  # already reported above


def _convert(tp: Any, value: Any, where: str, problems: list[str]) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp if isinstance(tp, type) else type(tp), value, where, problems)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            problems.append(
                f"{where}: must be one of {', '.join(map(repr, choices))}, got {_show(value)}"
            )
        return value
    if origin is tuple:
        item_tp = typing.get_args(tp)[0]
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list, got {_show(value)}")
            return ()
        return tuple(_convert(item_tp, v, f"{where}[{i}]", problems) for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        return value
    if tp is bool:
        if not isinstance(value, bool):
            problems.append(f"{where}: expected true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{where}: expected an integer, got {_show(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{where}: expected a number, got {_show(value)}")
            return value
        return float(value)
    if tp is Path:
        if not isinstance(value, str) or not value:
            problems.append(f"{where}: expected a path, got {_show(value)}")
            return value
        return Path(value)
    if tp is str:
        if not isinstance(value, str):
            problems.append(f"{where}: expected a string, got {_show(value)}")
        return value
    raise TypeError(f"unsupported settings type {tp!r} at {where}")  # a bug in this module


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def _check_semantics(s: Settings, problems: list[str]) -> None:
    if not 0 <= s.server.port <= 65535:
        problems.append(f"server.port: must be 0-65535, got {s.server.port}")
    if s.server.public_url and not _is_http_url(s.server.public_url):
        problems.append(f"server.public_url: expected an http(s) URL, got {s.server.public_url!r}")
    names = [u.name for u in s.pypi.upstreams]
    for i, u in enumerate(s.pypi.upstreams):
        if not _is_http_url(u.url):
            problems.append(f"pypi.upstreams[{i}].url: expected an http(s) URL, got {u.url!r}")
        if not u.name or not u.name.replace("-", "").replace("_", "").isalnum():
            problems.append(f"pypi.upstreams[{i}].name: use letters, digits, '-' or '_'")
        if names.count(u.name) > 1:
            problems.append(f"pypi.upstreams[{i}].name: {u.name!r} is used twice")
        check_limits(f"pypi.upstreams[{i}]", u.timeout, u.limits, problems)
    if s.pypi.page_ttl < 0:
        problems.append("pypi.page_ttl: must be >= 0")
    if s.policy.decision_ttl < 0:
        problems.append("policy.decision_ttl: must be >= 0")
    if s.pypi.memory_files < 1:
        problems.append("pypi.memory_files: must be >= 1")
    if s.hf.upstream and not _is_http_url(s.hf.upstream):
        problems.append(f"hf.upstream: expected an http(s) URL, got {s.hf.upstream!r}")
    if s.hf.ttl < 0:
        problems.append("hf.ttl: must be >= 0")
    check_limits("hf", s.hf.timeout, s.hf.limits, problems)
    if any(c.isspace() for c in s.hf.token):
        problems.append("hf.token: must not contain whitespace")
    if s.policy.timeout <= 0:
        problems.append("policy.timeout: must be > 0")
    if not 1 <= s.policy.workers <= 64:
        problems.append("policy.workers: must be 1-64")
    if s.policy.reload_interval < 0:
        problems.append("policy.reload_interval: must be >= 0")
    _check_access(s, problems)
    for i, entry in enumerate(s.egress.allow):
        try:
            parse_allow_entry(entry)
        except ValueError as e:
            problems.append(f"egress.allow[{i}]: {e}")
    if s.policy.engine == "opa" and not _is_http_url(s.policy.opa_url):
        problems.append(
            'policy.opa_url: engine = "opa" needs the OPA server\'s http(s) URL, '
            f"e.g. http://127.0.0.1:8181; got {s.policy.opa_url!r}"
        )


def _check_access(s: Settings, problems: list[str]) -> None:
    ids = [c.id for c in s.access.clients]
    for i, c in enumerate(s.access.clients):
        where = f"access.clients[{i}]"
        if not c.id or any(ch.isspace() for ch in c.id):
            problems.append(f"{where}.id: a non-empty name without spaces is required")
        if ids.count(c.id) > 1:
            problems.append(f"{where}.id: {c.id!r} is used twice")
        if bool(c.token) == bool(c.token_sha256):
            problems.append(f"{where}: give exactly one of token_sha256 (preferred) or token")
        if c.token_sha256 and not re.fullmatch(r"[0-9a-f]{64}", c.token_sha256):
            problems.append(f"{where}.token_sha256: expected 64 lowercase hex digits")
        if c.token and len(c.token) < 16:
            problems.append(f"{where}.token: use at least 16 characters")
        unknown = set(c.scopes) - {"admin"}
        if unknown:
            problems.append(f"{where}.scopes: unknown {sorted(unknown)}; known: ['admin']")
    a = s.access
    if not 1 <= a.login_max_failures <= 1000:
        problems.append("access.login_max_failures: must be 1-1000")
    if not 0 < a.login_window <= 86400:
        problems.append("access.login_window: must be > 0 and <= 86400 seconds")
    if not 0 < a.login_lockout <= a.login_lockout_max:
        problems.append("access.login_lockout: must be > 0 and <= access.login_lockout_max")
    if a.login_lockout_max > 86400:
        problems.append("access.login_lockout_max: must be <= 86400 seconds")
    if not 1 <= a.login_tracked <= 1_000_000:
        problems.append("access.login_tracked: must be 1-1000000")


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def default_pypi_upstream(env: Mapping[str, str] | None = None) -> UpstreamSettings:
    """The index pip itself would use: ``PIP_INDEX_URL``, pip's config files, else pip's default.

    Read from pip's own configuration machinery at run time, so no registry host is written here.
    """
    env = os.environ if env is None else env
    url = env.get("PIP_INDEX_URL", "")
    if not url:
        try:
            from pip._internal.configuration import Configuration

            conf = Configuration(isolated=False)
            conf.load()
            for key in ("global.index-url", "install.index-url", ":env:.index-url"):
                try:
                    url = str(conf.get_value(key))
                    break
                except Exception:  # noqa: S112 - key absent in this configuration source
                    continue
        except Exception:  # noqa: S110 - pip's config is advisory; fall back to its default
            pass
    if not url:
        from pip._internal.models.index import PyPI

        url = PyPI.simple_url
    return UpstreamSettings(name="default", url=url, kind="public")


def default_hf_upstream() -> str:
    """The endpoint huggingface_hub defaults to, read from the installed client at run time.

    Its *default* constant, not ``ENDPOINT``: that one follows ``HF_ENDPOINT``, which on a
    machine set up for this proxy points at the proxy itself.  "" if the client is absent.
    """
    try:
        from huggingface_hub import constants
    except ImportError:
        return ""
    return str(getattr(constants, "_HF_DEFAULT_ENDPOINT", "")).rstrip("/")
