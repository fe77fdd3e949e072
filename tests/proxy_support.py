"""The reverse proxy's configuration (deploy/nginx), rendered as the nginx image renders it,
checked by Debian's nginx (``nginx -t``) and started for real in front of a service.

The image's entrypoint substitutes ``${PROXY_*}`` in the template and includes the result
in its own ``http`` block; :func:`main_config` is that block's stand-in, with every path nginx
writes (pid, temporary bodies) inside a test folder so that nginx runs without root.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pneumo.settings import ServeSettings
from tests.conftest import REPO
from tests.serving_support import wait_until_answering

TEMPLATE = REPO / "deploy" / "nginx" / "pneumo.conf.template"
PLACEHOLDER = re.compile(r"\$\{(PROXY_[A-Z_]+)\}")
NGINX_INSTALL = "nginx is not installed: apt-get install nginx (as .ci/run does)"


def nginx() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").is_file() else None
    )
    if found is None:
        raise RuntimeError(NGINX_INSTALL)
    return found


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def render(text: str, values: dict[str, str]) -> str:
    """What the image's envsubst makes of the template: each ${PROXY_*} that is set."""
    missing = placeholders(text) - set(values)
    if missing:
        raise ValueError(f"the template needs {sorted(missing)}")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def main_config(site: Path, folder: Path) -> Path:
    """A whole nginx.conf around the rendered ``site`` file, writing only under ``folder``."""
    temp = {name: folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(parents=True, exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must write the temp folders
    conf = folder / "nginx.conf"
    conf.write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\n"
        "error_log stderr warn;\nevents { worker_connections 1024; }\nhttp {\n"
        f"  client_body_temp_path {temp['body']};\n  proxy_temp_path {temp['proxy']};\n"
        f"  fastcgi_temp_path {temp['fastcgi']};\n  uwsgi_temp_path {temp['uwsgi']};\n"
        f"  scgi_temp_path {temp['scgi']};\n  include {site};\n}}\n"
    )
    return conf


def write_config(text: str, folder: Path, upstream: str, port: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    site = folder / "pneumo.conf"
    site.write_text(render(text, {"PROXY_UPSTREAM": upstream, "PROXY_PORT": str(port)}))
    return main_config(site, folder)


def check(conf: Path) -> subprocess.CompletedProcess[str]:
    """``nginx -t``: parse the configuration, open what it names, report; nothing served."""
    return subprocess.run(
        [nginx(), "-t", "-q", "-e", "stderr", "-p", str(conf.parent), "-c", str(conf)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


# --- the limits: the template's values against ServeSettings' defaults ------------------------


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m)?", value)
    if match is None:
        raise ValueError(f"not an nginx time: {value!r}")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[match.group(2)]
    return int(match.group(1)) * scale


def _blocks(text: str) -> dict[str, str]:
    """The server block's own directives ("server") and each location's, by its match."""
    body = re.sub(r"'[^']*'", "''", re.sub(r"#[^\n]*", "", text))  # quoted JSON has braces
    found: dict[str, str] = {}
    for match in re.finditer(r"location\s+([^{]+?)\s*\{([^}]*)\}", body):
        found[match.group(1).strip()] = match.group(2)
    server = re.search(r"server\s*\{(.*)\}", body, re.S)
    found["server"] = re.sub(r"location\s+[^{]+\{[^}]*\}", "", server.group(1)) if server else ""
    return found


def _directive(block: str, name: str) -> list[list[str]]:
    return [line.split()[1:] for line in re.findall(rf"^\s*{name}\s[^;]*", block, re.M)]


def limit_problems(text: str, cfg: ServeSettings) -> list[str]:
    """Every limit the proxy applies equals the service's default for it."""
    blocks = _blocks(text)
    server = blocks["server"]
    problems: list[str] = []
    expect_time = {
        "client_header_timeout": cfg.header_timeout_s,
        "client_body_timeout": cfg.body_idle_s,
        "keepalive_timeout": float(cfg.keepalive_s),
    }
    for name, seconds in expect_time.items():
        values = _directive(server, name)
        if [_seconds(v[0]) for v in values] != [seconds]:
            problems.append(f"server: {name} {values} is not {seconds:g} s")
    bodies = {
        "server": cfg.body_limit_bytes(1),
        "= /v1/predict/batch": cfg.body_limit_bytes(cfg.max_files),
        "/v2/": cfg.infer_body_limit_bytes(),
    }
    for where, limit in bodies.items():
        values = _directive(blocks.get(where, ""), "client_max_body_size")
        if values != [[str(limit)]]:
            problems.append(f"{where}: client_max_body_size {values} is not {limit}")
    for where in ("/v1/", "= /v1/predict/batch", "/v2/", "= /v2"):
        block = blocks.get(where, "")
        conns = {v[0]: v[1] for v in _directive(block, "limit_conn")}
        if conns.get("pneumo_all") != str(cfg.max_connections):
            problems.append(f"{where}: limit_conn pneumo_all is not {cfg.max_connections}")
        if conns.get("pneumo_v1") != str(cfg.max_in_flight):
            problems.append(f"{where}: limit_conn pneumo_v1 is not {cfg.max_in_flight}")
        if _directive(block, "auth_request") != [["/_pneumo_auth"]]:
            problems.append(f"{where}: the key is not checked before the body (auth_request)")
    if {v[0]: v[1] for v in _directive(server, "limit_conn")}.get("pneumo_all") != str(
        cfg.max_connections
    ):
        problems.append(f"server: limit_conn pneumo_all is not {cfg.max_connections}")
    return problems


# --- nginx, running ---------------------------------------------------------------------------


@dataclass
class Proxy:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def running_proxy(conf: Path, url: str) -> Iterator[Proxy]:
    """nginx in the foreground on ``conf``; ready once its own health location answers."""
    log = conf.parent / "nginx.log"
    # Appending: nginx reopens /dev/stdout for its access log, so writes through the
    # inherited descriptor (its error log) must not start at offset 0 over them.
    with log.open("ab") as out:
        process = subprocess.Popen(
            [nginx(), "-e", "stderr", "-p", str(conf.parent), "-c", str(conf)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    proxy = Proxy(url, process, log)
    try:
        wait_until_answering(process, f"{url}/_proxy/healthz", 20, proxy.logs)
        yield proxy
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the proxy in compose.yaml and deploy/k8s -------------------------------------------------

TEMPLATE_TARGET = "/etc/nginx/templates"  # the image renders *.template there into conf.d
TEMPLATE_FILE = "default.conf.template"  # replaces the image's default server


def _env_problems(where: str, env: dict[str, str], upstream: str) -> list[str]:
    problems = [
        f"{where}: ${{{name}}} of the template is not set"
        for name in sorted(placeholders(TEMPLATE.read_text()) - set(env))
    ]
    if env.get("NGINX_ENVSUBST_FILTER") != "^PROXY_":
        problems.append(f"{where}: NGINX_ENVSUBST_FILTER is not ^PROXY_ (nginx's $vars)")
    if env.get("PROXY_UPSTREAM") != upstream:
        problems.append(f"{where}: upstream {env.get('PROXY_UPSTREAM')} is not {upstream}")
    return problems


def compose_proxy_problems(services: dict[str, dict[str, Any]], api_port: str) -> list[str]:
    """One service mounts the template where the image renders it, points at the api, and is
    the only way in from the host (the api publishes no port)."""
    mount = f"./deploy/nginx/{TEMPLATE.name}:{TEMPLATE_TARGET}/{TEMPLATE_FILE}:ro"
    proxies = [n for n, s in services.items() if mount in (s.get("volumes") or [])]
    if len(proxies) != 1:
        return [f"one service must mount {mount}, got {proxies}"]
    name, proxy = proxies[0], services[proxies[0]]
    env = {str(k): str(v) for k, v in (proxy.get("environment") or {}).items()}
    api = [n for n, s in services.items() if "serve.Dockerfile" in str(s.get("build", ""))]
    problems = _env_problems(name, env, f"{api[0] if api else '?'}:{api_port}")
    port = env.get("PROXY_PORT", "?")
    if [str(p).rsplit(":", 1)[-1] for p in proxy.get("ports") or []] != [port]:
        problems.append(f"{name}: does not publish its listen port {port}")
    problems += [
        f"{other}: publishes a port; the host should reach it through {name}"
        for other in api
        if services[other].get("ports")
    ]
    if f":{port}/" not in " ".join(proxy.get("healthcheck", {}).get("test", [])):
        problems.append(f"{name}: the healthcheck does not ask the proxy's port {port}")
    return problems


def k8s_proxy_problems(documents: list[dict[str, Any]], compose_image: str) -> list[str]:
    """The sidecar: the ConfigMap carries the template verbatim, mounted where the image renders
    it; the upstream is the api container's port; the Service sends traffic to the sidecar."""
    kinds = {(d["kind"], d["metadata"]["name"]): d for d in documents}
    problems: list[str] = []
    config = kinds.get(("ConfigMap", "pneumo-proxy"), {}).get("data", {})
    if config.get(TEMPLATE_FILE) != TEMPLATE.read_text():
        problems.append(f"ConfigMap pneumo-proxy {TEMPLATE_FILE} is not {TEMPLATE.name} verbatim")
    pod = kinds[("Deployment", "pneumo-api")]["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    proxy, api = containers.get("proxy", {}), containers.get("api", {})
    api_port = {p["name"]: p["containerPort"] for p in api.get("ports", [])}.get("http")
    env = {e["name"]: str(e.get("value")) for e in proxy.get("env", [])}
    problems += _env_problems("proxy container", env, f"127.0.0.1:{api_port}")
    ports = {p["name"]: str(p["containerPort"]) for p in proxy.get("ports", [])}
    if ports.get("proxy") != env.get("PROXY_PORT"):
        problems.append(f"proxy container: port 'proxy' {ports} is not PROXY_PORT")
    if proxy.get("image") != compose_image:
        problems.append(f"proxy container: image {proxy.get('image')} is not compose's")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounted = [
        m for m in proxy.get("volumeMounts", [])
        if m["mountPath"] == TEMPLATE_TARGET
        and volumes.get(m["name"], {}).get("configMap", {}).get("name") == "pneumo-proxy"
    ]  # fmt: skip
    if not mounted:
        problems.append(f"proxy container: ConfigMap pneumo-proxy not mounted at {TEMPLATE_TARGET}")
    service = kinds[("Service", "pneumo-api")]
    if [p["targetPort"] for p in service["spec"]["ports"]] != ["proxy"]:
        problems.append("the Service does not send its traffic to the proxy")
    return problems
