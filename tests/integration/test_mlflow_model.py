"""Registered versions are MLflow models: the pyfunc, the onnx flavour, `mlflow models serve`.

Every check runs on the session's registered champion (tests/serving_support.build_registered),
with MLflow's own loaders and server, against `pneumo serve`'s answers for the same files.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from mlflow.exceptions import MlflowException

from pneumo.data.decode.image import decode
from pneumo.object_store import prepare_tracking
from pneumo.packaging.registry import ModelRegistry
from pneumo.preprocess import ImageSpec
from pneumo.settings import Settings
from tests.conftest import REPO
from tests.integration.conftest import LiveService
from tests.serving_support import free_port, post, started_service

pytestmark = pytest.mark.slow
CHAMPION = "models:/pneumonia@champion"


@contextlib.contextmanager
def tracking(root: Path) -> Iterator[str]:
    """MLflow's global tracking and registry URIs set to ``root``'s, restored after."""
    uri = prepare_tracking(Settings(root=str(root)))
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield uri
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])


def served(live: LiveService, files: list[str]) -> list[float]:
    out = []
    for file in files:
        answer = post(live.url, Path(file).read_bytes())
        assert answer.status_code == 200, answer.text
        out.append(float(answer.json()["probability"]))
    return out


def some_images(live: LiveService, n: int = 4) -> list[str]:
    return sorted(live.registered.test_images)[:n]


def test_the_champion_loads_as_a_pyfunc_and_scores_as_the_service(
    live_service: LiveService,
) -> None:
    files = some_images(live_service)
    with tracking(live_service.registered.root):
        model = mlflow.pyfunc.load_model(CHAMPION)
        info = mlflow.models.get_model_info(CHAMPION)
        frame = model.predict(pd.DataFrame({"image": [Path(f).read_bytes() for f in files]}))
        size = model.metadata.metadata["preprocessing"]["image"]["size"]
        spec = ImageSpec(size=size)
        pixels = np.stack([decode(Path(f).read_bytes(), spec).pixels for f in files])
        as_arrays = model.predict(pd.DataFrame({"image": list(pixels)}))
        with pytest.raises(MlflowException, match=r"image\[1\]: .*"):
            model.predict(pd.DataFrame({"image": [Path(files[0]).read_bytes(), b"not an image"]}))
        onnx_model = mlflow.onnx.load_model(CHAMPION)
    expected = served(live_service, files)
    np.testing.assert_allclose(frame["probability"], expected, atol=1e-6)
    np.testing.assert_allclose(as_arrays["probability"], expected, atol=1e-6)
    threshold = model.metadata.metadata["threshold"]
    assert list(frame["positive"]) == [p >= threshold for p in frame["probability"]]
    assert set(frame["label"]) <= {"pneumonia", "no pneumonia"}
    assert info.signature.inputs.input_names() == ["image"]
    assert "probability" in info.signature.outputs.input_names()
    assert set(info.flavors) == {"python_function", "onnx"}
    assert onnx_model.graph.input[0].name == "image"
    assert onnx_model.graph.input[0].type.tensor_type.elem_type == 2  # uint8


def test_the_version_comes_from_a_run_with_its_provenance(live_service: LiveService) -> None:
    root = live_service.registered.root
    reg = ModelRegistry(Settings(root=str(root)))
    version = reg.info(str(reg.alias("champion")))
    assert version.source.startswith(f"runs:/{live_service.registered.run_id}/packages/")
    run = reg.client.get_run(live_service.registered.run_id)
    tags = run.data.tags
    assert tags["mlflow.source.name"] == "pneumo train" and tags["mlflow.user"]
    assert run.info.user_id == tags["mlflow.user"] != "unknown"
    assert len(tags.get("mlflow.source.git.commit", "")) == 40  # the tests run from a checkout
    assert run.inputs is not None
    (dataset,) = [d.dataset for d in run.inputs.dataset_inputs]
    assert dataset.name == "tiny" and dataset.source_type == "local"
    assert dataset.profile is not None
    profile = json.loads(dataset.profile)
    assert profile["manifest_hash"].startswith(dataset.digest) and len(dataset.digest) == 36
    example = mlflow.models.Model.load(
        mlflow.artifacts.download_artifacts(f"{version.source}/MLmodel", tracking_uri=reg.uri)
    )
    assert example.saved_input_example_info is not None
    assert example.saved_input_example_info["type"] == "dataframe"


def test_mlflow_models_serve_answers_as_pneumo_serve(
    live_service: LiveService, tmp_path: Path
) -> None:
    files = some_images(live_service, 3)
    port = free_port()
    uri = prepare_tracking(Settings(root=str(live_service.registered.root)))
    bin_dir = Path(sys.executable).parent  # mlflow starts `uvicorn` from PATH
    path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri, "PATH": path,
           "PYTHONPATH": str(REPO / "src")}  # fmt: skip
    mlflow_cli = str(bin_dir / "mlflow")
    args = [mlflow_cli, "models", "serve", "-m", CHAMPION, "--env-manager", "local",
            "-h", "127.0.0.1", "-p", str(port), "-w", "1"]  # fmt: skip
    work = tmp_path / "cwd"
    work.mkdir()
    url = f"http://127.0.0.1:{port}"
    with started_service(args, work, env, tmp_path / "mlflow.log", url, ready="/ping") as svc:
        rows = [[base64.b64encode(Path(f).read_bytes()).decode()] for f in files]
        body = {"dataframe_split": {"columns": ["image"], "data": rows}}
        answer = requests.post(f"{svc.url}/invocations", json=body, timeout=60)
        junk = [[base64.b64encode(b"not an image").decode()]]
        bad = {"dataframe_split": {"columns": ["image"], "data": junk}}
        refused = requests.post(f"{svc.url}/invocations", json=bad, timeout=60)
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    got = [row["probability"] for row in predictions]
    np.testing.assert_allclose(got, served(live_service, files), atol=1e-5)
    assert refused.status_code == 400 and "image[0]" in refused.text
