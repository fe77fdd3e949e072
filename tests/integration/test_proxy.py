"""The reverse proxy (deploy/nginx/pneumo.conf.template): Debian's nginx accepts it (`nginx -t`),
its limits are the service's defaults, and nginx, started for real in front of a running
service on 127.0.0.1, passes predictions through and refuses, before reading a body, what the
service refuses. Each check is also shown to fail on a broken copy."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from pneumo.settings import ServeSettings
from tests import deploy_support as ds
from tests.conftest import REPO
from tests.proxy_support import (
    TEMPLATE,
    check,
    compose_proxy_problems,
    k8s_proxy_problems,
    limit_problems,
    running_proxy,
    write_config,
)
from tests.serving_support import Registered, free_port, post, raw_request, running_service

DEFAULTS = ServeSettings.model_construct()  # the documented defaults, whatever the environment
FORM = "Content-Type: multipart/form-data; boundary=xyz"


def test_the_template_passes_nginx_t(tmp_path: Path) -> None:
    done = check(write_config(TEMPLATE.read_text(), tmp_path, "127.0.0.1:9", free_port()))
    assert done.returncode == 0, done.stderr


def test_nginx_t_rejects_a_broken_template(tmp_path: Path) -> None:
    broken = TEMPLATE.read_text().replace("client_body_timeout 10s", "client_body_timeot 10s")
    done = check(write_config(broken, tmp_path, "127.0.0.1:9", free_port()))
    assert done.returncode != 0 and "client_body_timeot" in done.stderr


def test_the_proxys_limits_are_the_services_defaults() -> None:
    assert limit_problems(TEMPLATE.read_text(), DEFAULTS) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("client_header_timeout 10s", "client_header_timeout 60s"),
        ("keepalive_timeout 5s", "keepalive_timeout 75s"),
        ("client_max_body_size 336592896", "client_max_body_size 1g"),
        ("client_max_body_size 21037056", "client_max_body_size 100m"),
        ("limit_conn pneumo_v1 64;", "limit_conn pneumo_v1 640;"),
        ("auth_request /_pneumo_auth;", ""),
    ],
)
def test_the_limit_check_can_fail(old: str, new: str) -> None:
    text = TEMPLATE.read_text()
    assert old in text
    assert limit_problems(text.replace(old, new, 1), DEFAULTS) != []


def _deployments() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    services = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    documents = [doc for path in sorted(ds.K8S.glob("*.yaml")) for doc in ds.yaml_documents(path)]
    return services, documents


def test_compose_and_k8s_put_the_proxy_in_front_of_the_api() -> None:
    services, documents = _deployments()
    api_port = ds.read_dockerfile("serve.Dockerfile").final.env["PNEUMO_SERVE_PORT"]
    assert compose_proxy_problems(services, api_port) == []
    assert k8s_proxy_problems(documents, services["proxy"]["image"]) == []


def test_the_proxy_wiring_checks_can_fail() -> None:
    services, documents = _deployments()
    services["proxy"]["environment"]["PROXY_UPSTREAM"] = "api:9999"
    services["api"]["ports"] = ["127.0.0.1:8001:8000"]
    del services["proxy"]["environment"]["NGINX_ENVSUBST_FILTER"]
    assert len(compose_proxy_problems(services, "8000")) == 3
    for doc in documents:
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "pneumo-proxy":
            doc["data"]["default.conf.template"] += "# edited here only\n"
        if doc["kind"] == "Service":
            doc["spec"]["ports"][0]["targetPort"] = "http"
    assert len(k8s_proxy_problems(documents, services["proxy"]["image"])) == 2


@pytest.mark.slow
def test_nginx_in_front_of_the_service(registered: Registered, tmp_path: Path) -> None:
    key = "proxy-key-0123456789"
    image = Path(sorted(registered.test_images)[0]).read_bytes()
    env = registered.env
    with running_service(env, tmp_path / "cwd", api_keys=key, poll_seconds="0") as svc:
        port = free_port()
        conf = write_config(TEMPLATE.read_text(), tmp_path / "nginx", svc.url[7:], port)
        with running_proxy(conf, f"http://127.0.0.1:{port}") as proxy:
            direct = post(svc.url, image, key=key).json()
            through = post(proxy.url, image, key=key)
            assert through.status_code == 200, through.text
            assert through.json()["probability"] == direct["probability"]
            # one request id from nginx's log to the service's
            proxied_id = through.headers["x-request-id"]
            batch = requests.post(
                f"{proxy.url}/v1/predict/batch", timeout=30,
                files=[("files", (f"{i}.png", image)) for i in range(3)],
                headers={"Authorization": f"Bearer {key}"},
            )  # fmt: skip
            assert batch.status_code == 200 and len(batch.json()["predictions"]) == 3
            # no key: the proxy asks the service (GET /auth) and answers 401 before the body
            status, seconds = raw_request(proxy.url, [FORM, f"Content-Length: {19 * 2**20}"])
            assert status == "HTTP/1.1 401 Unauthorized" and seconds < 2.0, (status, seconds)
            refused = post(proxy.url, image, key="wrong-key-0123456789")
            assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
            assert refused.headers["www-authenticate"] == "Bearer"
            # above one file's limit, declared: 413 at once, unread; the batch route allows more
            auth = f"Authorization: Bearer {key}"
            status, seconds = raw_request(proxy.url, [FORM, f"Content-Length: {30 * 2**20}", auth])
            assert status == "HTTP/1.1 413 Request Entity Too Large" and seconds < 2.0
            # the service's own refusals pass through as they are
            junk = post(proxy.url, b"not an image at all", key=key)
            assert junk.status_code in (415, 422) and junk.json()["error"], junk.text
            assert requests.get(f"{proxy.url}/readyz", timeout=10).status_code == 200
            # the Open Inference Protocol: probes open, inference keyed, its own error form
            assert requests.get(f"{proxy.url}/v2/health/ready", timeout=10).status_code == 200
            data = [base64.b64encode(image).decode()]
            body = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": data}]}
            infer = f"{proxy.url}/v2/models/pneumonia/infer"
            v2 = requests.post(infer, json=body, headers={"Authorization": f"Bearer {key}"},
                               timeout=30)  # fmt: skip
            assert v2.status_code == 200, v2.text
            assert v2.json()["outputs"][0]["data"] == [direct["probability"]]
            no_key = requests.post(infer, json=body, timeout=30)
            assert no_key.status_code == 401 and set(no_key.json()) == {"error"}
            assert requests.get(f"{proxy.url}/metrics", timeout=10).status_code == 404
        lines = [line for line in proxy.logs().splitlines() if line.startswith("{")]
        statuses = [json.loads(line)["status"] for line in lines]
        assert 200 in statuses and 401 in statuses and 413 in statuses, proxy.logs()
        assert proxied_id in {json.loads(line)["request_id"] for line in lines}
        assert f'"request_id": "{proxied_id}"' in svc.logs()
