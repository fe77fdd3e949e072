"""Readers and checks for the deployment files: Dockerfiles, .dockerignore, compose.yaml,
Prometheus, Grafana, Kubernetes manifests and docs/cloud.md.

Every check returns a list of problems (empty: fine), so that a test can show it on the real
files and prove, on a broken copy, that it can fail.
"""

from __future__ import annotations

import importlib
import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import yaml

from tests import lock_support
from tests.conftest import REPO

DOCKER = REPO / "docker"
K8S = REPO / "deploy" / "k8s"
SCHEMAS = Path(__file__).resolve().parent / "schemas"

# --- Dockerfiles -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    @property
    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            values.update(env_pairs(instruction.args))
        return values

    @property
    def cmd(self) -> list[str] | None:
        found = self.last("CMD")
        return exec_form(found.args) if found else None

    @property
    def entrypoint(self) -> list[str] | None:
        found = self.last("ENTRYPOINT")
        return exec_form(found.args) if found else None

    @property
    def user(self) -> str | None:
        found = self.last("USER")
        return found.args.strip() if found else None

    @property
    def exposed(self) -> list[int]:
        return [int(p.split("/")[0]) for i in self.all("EXPOSE") for p in i.args.split()]

    @property
    def healthcheck(self) -> tuple[dict[str, str], list[str]] | None:
        found = self.last("HEALTHCHECK")
        return parse_healthcheck(found.args) if found else None


@dataclass
class Dockerfile:
    args: dict[str, str]  # global ARGs (before the first FROM) and their defaults
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def base(self, stage: Stage) -> str:
        """The stage's base image with global ARG defaults substituted."""
        return re.sub(r"\$\{?(\w+)\}?", lambda m: self.args.get(m.group(1), m.group(0)), stage.base)


def instructions(text: str) -> list[Instruction]:
    """Docker's reading: comment lines dropped (also inside continuations), `\\` joins lines."""
    found: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        keyword, _, args = " ".join(pending).partition(" ")
        found.append(Instruction(keyword.upper(), args.strip(), start))
        pending = []
    return found


def parse_dockerfile(text: str) -> Dockerfile:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif not stages:
            if instruction.keyword == "ARG":
                key, _, default = instruction.args.partition("=")
                args[key.strip()] = default.strip()
        else:
            stages[-1].instructions.append(instruction)
    return Dockerfile(args, stages)


def read_dockerfile(name: str) -> Dockerfile:
    return parse_dockerfile((DOCKER / name).read_text())


def env_pairs(args: str) -> dict[str, str]:
    words = shlex.split(args)
    if words and "=" not in words[0]:  # the legacy `ENV KEY value` form
        return {words[0]: " ".join(words[1:])}
    return dict(w.split("=", 1) for w in words)


def exec_form(args: str) -> list[str]:
    """CMD/ENTRYPOINT/HEALTHCHECK CMD: the JSON (exec) form, or the shell form as sh -c."""
    if args.startswith("["):
        value = json.loads(args)
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ValueError(f"not a JSON list of strings: {args}")
        return value
    return ["/bin/sh", "-c", args]


def parse_healthcheck(args: str) -> tuple[dict[str, str], list[str]]:
    options: dict[str, str] = {}
    rest = args
    while rest.startswith("--"):
        option, _, rest = rest.partition(" ")
        key, _, value = option[2:].partition("=")
        options[key] = value
        rest = rest.lstrip()
    keyword, _, command = rest.partition(" ")
    if keyword.upper() != "CMD":
        raise ValueError(f"HEALTHCHECK without CMD: {args}")
    return options, exec_form(command.strip())


PIP_EXTRAS = re.compile(r"\bpneumo\[([\w,\s-]+)\]")
LOCK_REF = re.compile(r"\brequirements/([\w-]+\.lock)\b")


def project() -> dict[str, Any]:
    loaded: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return loaded


def extras_problems(
    dockerfile_text: str, expected: set[str], pyproject: dict[str, Any]
) -> list[str]:
    """The pneumo extras a Dockerfile installs: through the lock files it names (the extras each
    was compiled from, its header says) or a `pneumo[...]`; exactly `expected`, all defined by
    the project; and the `serve` extra (and a serve image, and its locks) without torch."""
    problems: list[str] = []
    defined = pyproject.get("optional-dependencies", {})
    # What the instructions say, comments left out.
    text = "\n".join(f"{i.keyword} {i.args}" for i in instructions(dockerfile_text))
    used = {e.strip() for m in PIP_EXTRAS.finditer(text) for e in m.group(1).split(",")}
    locks = {name: lock_support.read_lock(name) for name in set(LOCK_REF.findall(text))}
    used |= {extra for lock in locks.values() for extra in lock.option("--extra")}
    if used != expected:
        problems.append(f"installs pneumo{sorted(used)}, expected pneumo{sorted(expected)}")
    problems += [
        f"extra {e!r} is not in pyproject's optional-dependencies" for e in used - set(defined)
    ]
    torch = re.compile(r"^\s*torch(vision)?\b", re.IGNORECASE)
    if "serve" in used:
        problems += [
            f"serve extra requires {r!r}" for r in defined.get("serve", []) if torch.match(r)
        ]
        if re.search(r"\btorch", text):
            problems.append("a serve image mentions torch")
        problems += [
            f"requirements/{name} pins torch"
            for name, lock in locks.items()
            if {"torch", "torchvision"} & set(lock.pins)
        ]
    return problems


# --- .dockerignore -----------------------------------------------------------------------------


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((negated, _glob_regex(pattern)))
    return rules


def dockerignored(rules: list[tuple[bool, re.Pattern[str]]], path: str) -> bool:
    """Docker's rule: the last pattern matching the path, or any folder above it, decides."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negated, regex in rules:
        if any(regex.fullmatch(c) for c in candidates):
            excluded = not negated
    return excluded


# --- compose.yaml ------------------------------------------------------------------------------

COMPOSE_SCHEMA = SCHEMAS / "compose-spec.json"
PINNED = re.compile(r"^(?P<name>[a-z0-9][\w./-]*):(?P<tag>[\w][\w.-]*)(?:@sha256:[0-9a-f]{64})?$")
VARIABLE = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_]\w*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}")


def compose_schema_errors(doc: dict[str, Any]) -> list[str]:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
        for e in validator.iter_errors(doc)
    ]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _default(value: str) -> str:
    """`${VAR:-default}` → default; other text unchanged."""
    return VARIABLE.sub(lambda m: m.group("arg") if m.group("op") in ("-", ":-") else "", value)


def compose_problems(doc: dict[str, Any], repo: Path = REPO) -> list[str]:
    """Healthchecks, pinned images, mounts that exist, the api wired to the MLflow service."""
    problems: list[str] = []
    services: dict[str, dict[str, Any]] = doc.get("services", {})
    for name, service in services.items():
        if "healthcheck" not in service and not str(service.get("x-healthcheck-reason", "")):
            problems.append(f"{name}: no healthcheck and no x-healthcheck-reason")
        image = str(service.get("image", ""))
        match = PINNED.match(image)
        if not match:
            problems.append(f"{name}: image {image!r} has no exact tag")
        elif match.group("tag") == "latest" or not re.search(r"\d", match.group("tag")):
            problems.append(f"{name}: image {image!r} is not pinned to a version")
        build = service.get("build")
        if isinstance(build, dict) and build.get("dockerfile"):
            context = repo / str(build.get("context", "."))
            if not (context / str(build["dockerfile"])).is_file():
                problems.append(f"{name}: build file {build['dockerfile']} does not exist")
        for volume in service.get("volumes", []):
            source = str(volume["source"] if isinstance(volume, dict) else volume.split(":")[0])
            if source.startswith((".", "/")) and not (repo / source).exists():
                problems.append(f"{name}: mounts {source}, which is not in the repository")
        for dependency, spec in (service.get("depends_on") or {}).items():
            condition = spec.get("condition") if isinstance(spec, dict) else "service_started"
            target = services.get(dependency)
            if target is None:
                problems.append(f"{name}: depends on unknown service {dependency}")
            elif condition == "service_healthy" and "healthcheck" not in target:
                problems.append(f"{name}: waits for {dependency} healthy, which has no healthcheck")
    api = [n for n, s in services.items() if "serve.Dockerfile" in str(s.get("build", ""))]
    if len(api) != 1:
        return [*problems, f"expected one service built from docker/serve.Dockerfile, got {api}"]
    env = _env(services[api[0]])
    tracking = urlsplit(_default(env.get("PNEUMO_MLFLOW_TRACKING_URI", "")))
    mlflow = services.get(tracking.hostname or "")
    command = mlflow.get("command", []) if mlflow else []
    words = command.split() if isinstance(command, str) else [str(w) for w in command]
    if mlflow is None or words[:2] != ["mlflow", "server"]:
        problems.append(
            f"api: PNEUMO_MLFLOW_TRACKING_URI {tracking.geturl()!r} is no mlflow server"
        )
    elif f"--port={tracking.port}" not in words and f"{tracking.port}" not in words:
        problems.append(f"api: tracking URI port {tracking.port} is not the MLflow server's")
    s3 = urlsplit(_default(env.get("PNEUMO_S3_ENDPOINT_URL", "")))
    if s3.hostname not in services:
        problems.append(f"api: PNEUMO_S3_ENDPOINT_URL {s3.geturl()!r} is not a compose service")
    return problems


def env_file_problems(compose_text: str, env_text: str) -> list[str]:
    """Every variable compose.yaml needs without a default is in .env.example; secrets there
    are placeholders only."""
    problems: list[str] = []
    defined: dict[str, str] = {}
    for raw in env_text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            defined[key.strip()] = value.strip()
    for match in VARIABLE.finditer(compose_text):
        op = match.group("op") or ""
        if op not in ("-", ":-", "+", ":+") and match.group("name") not in defined:
            problems.append(f"${{{match.group('name')}}} is required but not in .env.example")
    for key, value in defined.items():
        secret = re.search(r"PASSWORD|SECRET|TOKEN", key)
        if secret and value and "change-me" not in value:
            problems.append(f"{key} in .env.example looks like a real secret (use change-me...)")
    return problems


# --- Prometheus and Grafana --------------------------------------------------------------------


def prometheus_problems(config: dict[str, Any], compose: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    services: dict[str, dict[str, Any]] = compose.get("services", {})
    api = [n for n, s in services.items() if "serve.Dockerfile" in str(s.get("build", ""))]
    port = read_dockerfile("serve.Dockerfile").final.env.get("PNEUMO_SERVE_PORT")
    scraped = False
    for job in config.get("scrape_configs", []):
        for static in job.get("static_configs", []):
            for target in static.get("targets", []):
                host, _, target_port = str(target).rpartition(":")
                if host not in services and host != "localhost":
                    problems.append(f"job {job.get('job_name')}: target {target} is no service")
                if host in api and target_port == port:
                    scraped = job.get("metrics_path", "/metrics") == "/metrics"
    if not scraped:
        problems.append(f"no job scrapes /metrics of the api service {api} on port {port}")
    return problems


def exported_metric_names(exposition: str) -> set[str]:
    """Sample names a Prometheus text exposition offers, from its families' types."""
    from prometheus_client.parser import text_string_to_metric_families

    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(f"{family.name}{s}" for s in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "inf", "nan",
}  # fmt: skip


def promql_metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, aggregations,
    keywords, label names or Grafana variables."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\{[^}]*\}|\$\w+", "", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][\w:]*", text):
        if text[match.end() :].lstrip().startswith("(") or match.group() in PROMQL_WORDS:
            continue
        names.add(match.group())
    return names


def dashboard_problems(
    dashboard: dict[str, Any], exported: set[str], datasource_uids: set[str]
) -> list[str]:
    problems: list[str] = []
    panels = dashboard.get("panels", [])
    if not panels:
        problems.append("the dashboard has no panels")
    for panel in panels:
        title = panel.get("title", "?")
        for target in panel.get("targets", []):
            expr = str(target.get("expr", ""))
            used = promql_metric_names(expr)
            if not used:
                problems.append(f"{title}: {expr!r} uses no metric")
            problems += [f"{title}: {name} is not exported" for name in sorted(used - exported)]
            uid = (target.get("datasource") or panel.get("datasource") or {}).get("uid")
            if uid not in datasource_uids:
                problems.append(f"{title}: datasource uid {uid!r} is not provisioned")
    return problems


# --- Kubernetes --------------------------------------------------------------------------------


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def k8s_versions() -> list[str]:
    """The Kubernetes versions whose schemas kubernetes-validate carries."""
    utils = importlib.import_module("kubernetes_validate.utils")
    return sorted({".".join(v.split(".")[:2]) for v in utils.all_versions()}, key=_version_key)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def k8s_schema_errors(doc: dict[str, Any], versions: list[str]) -> list[str]:
    """kubernetes-validate in strict mode (unknown fields are errors), for every version."""
    # Imported by name: the package ships no type information.
    kv = importlib.import_module("kubernetes_validate")
    errors: list[str] = []
    for version in versions:
        try:
            kv.validate(doc, version, strict=True)
        except kv.ValidationError as exc:
            where = "/".join(str(p) for p in exc.path)
            errors.append(f"{doc.get('kind')} (k8s {version}) at {where or '(top)'}: {exc.message}")
        except kv.SchemaNotFoundError as exc:
            errors.append(f"{doc.get('kind')} (k8s {version}): {exc.message}")
    return errors


PYTORCHJOB_SPEC = {"runPolicy", "elasticPolicy", "pytorchReplicaSpecs", "nprocPerNode"}
REPLICA_SPEC = {"replicas", "template", "restartPolicy"}
RUN_POLICY = {
    "cleanPodPolicy", "ttlSecondsAfterFinished", "activeDeadlineSeconds", "backoffLimit",
    "schedulingPolicy", "suspend", "managedBy",
}  # fmt: skip


def pytorchjob_problems(doc: dict[str, Any], versions: list[str]) -> list[str]:
    """Kubeflow PyTorchJob (kubeflow.org/v1) checked by hand (no CRD schema is available
    offline); each replica's pod template is validated as a core PodTemplate, strictly."""
    problems: list[str] = []
    if (doc.get("apiVersion"), doc.get("kind")) != ("kubeflow.org/v1", "PyTorchJob"):
        return [f"not a kubeflow.org/v1 PyTorchJob: {doc.get('apiVersion')}/{doc.get('kind')}"]
    if not doc.get("metadata", {}).get("name"):
        problems.append("metadata.name is missing")
    spec = doc.get("spec", {})
    problems += [f"spec.{k}: unknown field" for k in sorted(set(spec) - PYTORCHJOB_SPEC)]
    problems += [
        f"spec.runPolicy.{k}: unknown field"
        for k in sorted(set(spec.get("runPolicy", {})) - RUN_POLICY)
    ]
    replicas = spec.get("pytorchReplicaSpecs", {})
    if set(replicas) != {"Master", "Worker"}:
        problems.append(f"replica types {sorted(replicas)}, expected Master and Worker")
    if replicas.get("Master", {}).get("replicas") != 1:
        problems.append("Master must have exactly 1 replica")
    if int(replicas.get("Worker", {}).get("replicas", 0)) < 1:
        problems.append("Worker needs at least 1 replica")
    nproc = str(spec.get("nprocPerNode", ""))
    commands = set()
    for kind, replica in replicas.items():
        where = f"pytorchReplicaSpecs.{kind}"
        problems += [f"{where}.{k}: unknown field" for k in sorted(set(replica) - REPLICA_SPEC)]
        if replica.get("restartPolicy") not in ("Always", "OnFailure", "Never", "ExitCode"):
            problems.append(f"{where}.restartPolicy: {replica.get('restartPolicy')!r}")
        template = replica.get("template", {})
        wrapped = {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": f"pytorchjob-{kind.lower()}"},
            "template": template,
        }
        problems += [f"{where}.template: {e}" for e in k8s_schema_errors(wrapped, versions)]
        containers = {c.get("name"): c for c in template.get("spec", {}).get("containers", [])}
        pytorch = containers.get("pytorch")
        if pytorch is None:
            problems.append(f"{where}: no container named 'pytorch' (the operator needs it)")
            continue
        command = [*pytorch.get("command", []), *pytorch.get("args", [])]
        commands.add(tuple(command))
        line = " ".join(command)
        if not command or command[0] != "torchrun":
            problems.append(f"{where}: command {line!r} does not start with torchrun")
        if "-m pneumo train" not in line:
            problems.append(f"{where}: command {line!r} does not run `-m pneumo train`")
        limits = pytorch.get("resources", {}).get("limits", {})
        gpus = str(limits.get("nvidia.com/gpu", "0"))
        if not gpus.isdigit() or int(gpus) < 1:
            problems.append(f"{where}: no nvidia.com/gpu limit")
        elif nproc != gpus:
            problems.append(f"{where}: nprocPerNode {nproc!r} differs from {gpus} GPU(s)")
        env = {e.get("name"): e for e in pytorch.get("env", [])}
        if not str(env.get("PNEUMO_ROOT", {}).get("value", "")).startswith("s3://"):
            problems.append(f"{where}: PNEUMO_ROOT is not an s3:// URL")
        for name in ("PNEUMO_MLFLOW_TRACKING_URI", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            if name not in env:
                problems.append(f"{where}: no {name}")
    if len(commands) > 1:
        problems.append("Master and Worker run different commands")
    return problems


# --- settings, CLI and docs --------------------------------------------------------------------


def known_settings() -> set[str]:
    """Every PNEUMO_* variable pneumo reads: its two settings classes' fields."""
    from pneumo.settings import ServeSettings, Settings

    fields = [*Settings.model_fields, *ServeSettings.model_fields]
    return {f"PNEUMO_{name.upper()}" for name in fields} | {"PNEUMO_TEST_DATA"}


def unknown_settings(text: str) -> set[str]:
    return set(re.findall(r"\bPNEUMO_[A-Z0-9_]+\b", text)) - known_settings()


def cli_commands() -> set[str]:
    """`pneumo` commands, groups' sub-commands as 'group sub'."""
    import typer.main

    from pneumo.cli import app

    group: Any = typer.main.get_command(app)
    names = set(group.commands)
    for name, command in group.commands.items():
        names |= {f"{name} {sub}" for sub in getattr(command, "commands", {})}
    return names


def docs_problems(text: str, repo: Path = REPO) -> list[str]:
    """In the fenced code of a Markdown file: every `pneumo …` command exists, every file given
    to -f or -c exists, and every PNEUMO_* variable is a real setting."""
    problems: list[str] = []
    commands = cli_commands()
    code = "\n".join(re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.DOTALL))
    code = code.replace("\\\n", " ")
    for match in re.finditer(
        r"(?:^|[\s;&|(])pneumo[ \t]+([a-z][a-z-]*)(?:[ \t]+([a-z][a-z-]*))?", code
    ):
        first, second = match.group(1), match.group(2)
        if first not in commands:
            problems.append(f"`pneumo {first}` is not a pneumo command")
        elif f"{first} {second}" not in commands and any(
            c.startswith(f"{first} ") for c in commands
        ):
            problems.append(f"`pneumo {first} {second}` is not a pneumo command")
    for match in re.finditer(r"\s-[fc]\s+([\w./-]+)", code):
        path = match.group(1)
        if "/" in path and not (repo / path).exists():
            problems.append(f"{path} does not exist in the repository")
    problems += [f"{name} is not a pneumo setting" for name in sorted(unknown_settings(text))]
    return problems
