"""The Open Inference Protocol v2 on `pneumo serve`, called with Triton's own client.

`tritonclient.http` (the official client of Triton, which KServe and MLServer clients follow)
against a real service on 127.0.0.1: health, metadata, readiness, inference on encoded files
(BYTES) and on pixels (UINT8), as binary data and as JSON; the answers equal `/v1`'s and those
of ONNX Runtime alone on the registered model.onnx. Errors are the protocol's
`{"error": message}` with `/v1`'s statuses.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from pneumo.packaging.registry import ModelRegistry
from pneumo.serving.inputs import prepare_upload
from pneumo.serving.model import load_model
from pneumo.settings import Settings
from tests.serving_support import Registered, Service, post, running_service

pytestmark = pytest.mark.slow
KEY = "v2-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
NAME = "pneumonia"


@pytest.fixture(scope="module")
def keyed(registered: Registered, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service with an API key, scoring every image (the OOD refusal is tested elsewhere:
    the tiny model would refuse real radiographs, and the protocols must be compared)."""
    work = tmp_path_factory.mktemp("v2") / "cwd"
    with running_service(
        registered.env, work, poll_seconds="0", api_keys=KEY, input_ood="false", max_files="8"
    ) as service:
        yield service


@pytest.fixture(scope="module")
def client(keyed: Service) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(url=keyed.url.removeprefix("http://"))


def images(registered: Registered, real_data: Path) -> list[Path]:
    files = sorted((real_data / "nih-sample").rglob("*.png"))[:2]
    files += sorted((real_data / "kermany-224").rglob("*.jpeg"))[:2]
    return [*files, Path(sorted(registered.test_images)[0])]


def v1(url: str, files: list[Path]) -> list[float]:
    answers = [post(url, f.read_bytes(), f.name, key=KEY) for f in files]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    return [a.json()["probability"] for a in answers]


def test_health_metadata_and_keys(keyed: Service, client: httpclient.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()  # the probes need no key
    version = requests.get(f"{keyed.url}/readyz", timeout=5).json()["model"]["version"]
    server = client.get_server_metadata(headers=AUTH)
    assert server["name"] == "pneumo" and "binary_tensor_data" in server["extensions"]
    meta = client.get_model_metadata(NAME, headers=AUTH)
    assert meta["name"] == NAME and meta["versions"] == [version]
    assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [
        ("image", "BYTES"), ("image", "UINT8"),
    ]  # fmt: skip
    size = meta["inputs"][1]["shape"][-1]
    assert meta["inputs"][1]["shape"] == [-1, 1, size, size] and size > 0
    assert {(o["name"], o["datatype"]) for o in meta["outputs"]} == {
        ("probability", "FP32"), ("label", "BYTES"),
    }  # fmt: skip
    assert meta == client.get_model_metadata(NAME, version, headers=AUTH)
    assert client.is_model_ready(NAME, headers=AUTH)
    assert client.is_model_ready(NAME, version, headers=AUTH)
    assert not client.is_model_ready(NAME, str(int(version) + 1), headers=AUTH)
    with pytest.raises(InferenceServerException, match="a valid API key is required"):
        client.get_model_metadata(NAME)
    with pytest.raises(InferenceServerException, match="no model 'other' here"):
        client.get_model_metadata("other", headers=AUTH)
    unknown = requests.get(f"{keyed.url}/v2/repository/index", headers=AUTH, timeout=5)
    assert unknown.status_code == 404 and set(unknown.json()) == {"error"}
    text = keyed.metrics()
    assert 'route="/v2/models/{name}"' in text and 'route="/v2/health/live"' in text


def _bytes_input(files: list[Path], binary: bool) -> httpclient.InferInput:
    data = np.array([f.read_bytes() for f in files], dtype=np.object_)
    tensor = httpclient.InferInput("image", [len(files)], "BYTES")
    return (
        tensor.set_data_from_numpy(data, binary_data=binary)
        if binary
        else _json_bytes(tensor, files)
    )


def _json_bytes(tensor: httpclient.InferInput, files: list[Path]) -> httpclient.InferInput:
    # tritonclient's JSON BYTES must be UTF-8 text: an encoded file goes as base64
    text = np.array([base64.b64encode(f.read_bytes()) for f in files], dtype=np.object_)
    return tensor.set_data_from_numpy(text, binary_data=False)


def test_infer_on_files_and_pixels_equals_v1_and_onnxruntime_alone(
    keyed: Service,
    client: httpclient.InferenceServerClient,
    registered: Registered,
    real_data: Path,
    tmp_path: Path,
) -> None:
    files = images(registered, real_data)
    expected = v1(keyed.url, files)
    for binary in (True, False):
        result = client.infer(NAME, [_bytes_input(files, binary)], headers=dict(AUTH))
        got = result.as_numpy("probability")
        assert got is not None and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-6)
        labels = [b.decode() for b in result.as_numpy("label")]
        threshold = result.get_response()["parameters"]["threshold"]
        assert labels == ["pneumonia" if p >= threshold else "no pneumonia" for p in expected]

    # the pixels model.onnx takes, decoded as the service decodes them
    folder = ModelRegistry(Settings(root=str(registered.root))).download("1", tmp_path / "cache")
    model = load_model(folder, NAME, "1")
    pixels = np.stack([prepare_upload(f.read_bytes(), model.spec, f.name) for f in files])
    assert pixels.dtype == np.uint8 and pixels.shape[1] == 1
    for binary in (True, False):
        tensor = httpclient.InferInput("image", list(pixels.shape), "UINT8")
        tensor.set_data_from_numpy(pixels, binary_data=binary)
        wanted = httpclient.InferRequestedOutput("probability", binary_data=binary)
        result = client.infer(
            NAME, [tensor], outputs=[wanted], headers=dict(AUTH), request_id="r-7"
        )  # a fresh dict each call: infer writes Inference-Header-Content-Length into it
        np.testing.assert_allclose(result.as_numpy("probability"), expected, atol=1e-6)
        response = result.get_response()
        assert response["id"] == "r-7" and [o["name"] for o in response["outputs"]] == [
            "probability"
        ]

    import onnxruntime as ort  # ONNX Runtime alone on the file, fed uint8 pixels

    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    (bare,) = session.run(["probability"], {"image": pixels})
    np.testing.assert_allclose(bare.reshape(-1), expected, atol=1e-6)


def _infer(url: str, body: object, headers: dict[str, str] | None = None) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(
        f"{url}/v2/models/{NAME}/infer", data=data, headers={**AUTH, **(headers or {})}, timeout=30
    )


def _files_body(*items: bytes) -> dict[str, object]:
    data = [base64.b64encode(i).decode() for i in items]
    return {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [len(items)], "data": data}]}


def test_bad_requests_are_the_protocols_errors_never_500(
    keyed: Service, registered: Registered
) -> None:
    url = keyed.url
    good = Path(sorted(registered.test_images)[0]).read_bytes()
    cases: list[tuple[object, int, str]] = [
        (b"not json", 422, "not an inference request"),
        ({"inputs": []}, 422, "exactly one input, 'image'"),
        ({"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1], "data": ["eA=="]}]}, 422,
         "'x' is not an input"),
        ({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": [0.5]}]}, 422,
         "send BYTES"),
        ({"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 1, 3, 3],
                      "data": [0] * 9}]}, 422, "this model's size"),
        ({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["%%"]}]}, 422,
         "image[0]: in JSON an encoded file goes as a base64 string"),
        ({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2], "data": ["eA=="]}]}, 422,
         "1 elements where the shape says 2"),
        (_files_body(good, b"not an image"), 415, "image[1]"),
        (_files_body(b"", good, b"\x89PNG\r\n\x1a\n broken"), 422, "image[0]"),
        (_files_body(*[good] * 9), 413, "at most 8 per request"),
        ({**_files_body(good), "outputs": [{"name": "embedding"}]}, 422,
         "'embedding' is not an output"),
    ]  # fmt: skip
    for body, status, words in cases:
        answer = _infer(url, body)
        assert answer.status_code == status, (
            body if isinstance(body, bytes) else words,
            answer.text,
        )
        error = answer.json()
        assert set(error) == {"error"} and words in error["error"], (words, error)
    several = _infer(url, _files_body(b"", good, b"\x89PNG\r\n\x1a\n broken")).json()["error"]
    assert several.index("image[0]") < several.index("image[2]") and "image[1]" not in several
    no_key = requests.post(f"{url}/v2/models/{NAME}/infer", json=_files_body(good), timeout=10)
    assert no_key.status_code == 401 and "API key" in no_key.json()["error"]
    wrong_version = requests.post(
        f"{url}/v2/models/{NAME}/versions/99/infer", json=_files_body(good), headers=AUTH,
        timeout=10,
    )  # fmt: skip
    assert wrong_version.status_code == 404 and "version 99 is not served" in wrong_version.text
    ok = _infer(url, _files_body(good))
    assert ok.status_code == 200 and ok.json()["outputs"][0]["name"] == "probability"
    assert ok.headers["x-request-id"]
