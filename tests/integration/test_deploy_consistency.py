"""Deploy recipes agree with the product: settings, commands, ports, paths, routes, rules."""

from __future__ import annotations

import configparser
import re
import shlex
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import make_mocked_request

from proxy.app import create_app
from proxy.hf.paths import PREFIX as HF_PREFIX
from proxy.policy.snapshot import fingerprint, load_snapshot
from proxy.settings import CONFIG_ENV, ENV_PREFIX, Settings, load_settings
from tests.integration.deploy_support import (
    COMPOSE_VARS,
    CONFIGMAP_KEY,
    DEPLOY,
    PORT,
    REPO,
    RUNNER_TOKEN,
    RUNNER_TOKEN_SHA256,
    check_airlock_argv,
    compose,
    container,
    deploy_text_files,
    environments,
    generator,
    image_env,
    instruction,
    k8s_env_value,
    k8s_object,
    k8s_objects,
    kubelet_write,
    mounted_files,
    pod_spec,
    settings_keys,
    systemd_toml_with_example_client,
    unit_values,
    written_commands,
    yaml_docs,
)


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
    assert composed.policy.engine == "auto"
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
