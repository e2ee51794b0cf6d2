"""Shared readers and checkers for the deploy/ tests (manifests, image, unit, commands)."""

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
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import yaml
from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]

from proxy.cli import build_parser
from proxy.settings import ENV_PREFIX, ServerSettings, Settings

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
