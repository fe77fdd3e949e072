"""What release 0.1.0 wrote still works: its checkpoints load and rebuild, its model cards serve.

``tests/fixtures/release-0.1.0/card.json`` is the card `pneumo register` wrote for a synthetic
demo run at commit 6786874 (the last commit before the re-layering). Its ONNX file (45 MB) is
not kept: the tests pair the card with a tiny ONNX graph that honours the same contract
(``image`` float32 (N, 1, S, S) in, ``probability`` (N, 1) out) and set the card's
``model_sha256`` to that graph's hash, the one field tied to the model's bytes. Everything else
the service reads (format, preprocessing, threshold, parity tolerance, name) is the release's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import requests
import torch
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from pneumo.models import checkpoint
from pneumo.models.backbones import build_model
from pneumo.models.meta import CheckpointMeta
from pneumo.packaging.registry import CHAMPION, ModelRegistry
from pneumo.preprocess import PreprocessSpec
from pneumo.serving.inputs import prepare_upload
from pneumo.serving.model import load_model
from pneumo.settings import Settings
from pneumo.training.fit import RunState
from pneumo.training.tracking import Tracker
from tests.conftest import REPO, gradient, png_bytes
from tests.serving_support import post, running_service

FIXTURE = REPO / "tests" / "fixtures" / "release-0.1.0" / "card.json"
# The keys of best.pt as release 0.1.0 wrote them (training/fit.py at 6786874).
RELEASE_BEST_KEYS = {
    "format", "model_config", "preprocess", "classes", "head", "dataset", "manifest_hash",
    "versions", "config", "run_id", "model", "epoch", "val_auroc", "threshold",
}  # fmt: skip
RESUME_KEYS = {"optimizer", "scheduler", "state", "rng"}


def release_checkpoint(model: torch.nn.Module, **model_config: object) -> dict[str, object]:
    """A best.pt payload laid out exactly as release 0.1.0 laid it out."""
    return {
        "format": "pneumo-checkpoint/1",
        "model_config": model_config,
        "preprocess": {
            "image": {"size": 64, "resize": "pad", "max_pixels": 178956970},
            "mean": 0.436949,
            "std": 0.240195,
            "scale": 1 / 255,
        },
        "classes": ["Pneumonia"],
        "head": "binary",
        "dataset": "synthetic",
        "manifest_hash": "131e9787490dcf6cf2d0c1d89c45ed60aa41848d6419a9e60d516d690415b13f",
        "versions": {"pneumo": "0.1.0", "torch": "2.14.1+cu130", "python": "3.11.7"},
        "config": {"train": {"backbone": model_config["backbone"]}},
        "run_id": "bedb08289b5e41d1bed3ccb2b96e72f8",
        "model": model.state_dict(),
        "epoch": 8,
        "val_auroc": 0.9343434343434344,
        "threshold": {"value": 0.3040752708911896, "method": "youden on validation"},
    }


def test_a_release_checkpoint_loads_and_rebuilds_with_its_own_arguments(tmp_path: Path) -> None:
    torch.manual_seed(0)
    args: dict[str, Any] = {
        "backbone": "efficientnet_b0", "num_outputs": 1, "in_chans": 1, "dropout": 0.3,
    }  # fmt: skip
    original = build_model(**args)
    payload = release_checkpoint(original, **args)
    assert set(payload) == RELEASE_BEST_KEYS
    path = tmp_path / "best.pt"
    torch.save(payload, path)

    ckpt = checkpoint.load(str(path))
    assert ckpt.meta.model.kwargs() == args
    assert ckpt.meta.run_id == payload["run_id"] and ckpt.meta.epoch == 8
    assert ckpt.meta.threshold is not None and ckpt.meta.threshold.value == 0.3040752708911896
    assert ckpt.meta.preprocess == PreprocessSpec.from_dict(payload["preprocess"])  # type: ignore[arg-type]
    rebuilt = checkpoint.restore_model(ckpt)
    dropout = rebuilt.get_submodule("classifier.0")
    assert isinstance(dropout, torch.nn.Dropout) and dropout.p == 0.3  # was dropped before
    for key, tensor in original.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[key], tensor), key
    # and what this release writes has the same layout
    assert set(ckpt.meta.to_payload()) | {"model"} == RELEASE_BEST_KEYS
    assert CheckpointMeta.from_payload(ckpt.meta.to_payload(), "again") == ckpt.meta


def test_a_release_resume_checkpoint_resumes(tmp_path: Path) -> None:
    model = build_model("resnet18")
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    last = release_checkpoint(model, backbone="resnet18", num_outputs=1, in_chans=1, dropout=None)
    for key in ("epoch", "val_auroc", "threshold"):  # last.pt never carried them
        del last[key]
    state = {"epoch": 3, "step_in_epoch": 2, "global_step": 32, "best_auroc": 0.9,
             "best_epoch": 2, "bad_epochs": 0, "history": [{"epoch": 0}]}  # fmt: skip
    last.update(
        optimizer=optimizer.state_dict(),
        scheduler=scheduler.state_dict(),
        state=state,
        rng=checkpoint.rng_state(),
    )
    path = tmp_path / "last.pt"
    torch.save(last, path)
    ckpt = checkpoint.load(str(path), trusted=True)
    assert ckpt.resume is not None and set(ckpt.resume) == RESUME_KEYS
    assert RunState(**ckpt.resume["state"]) == RunState(**state)  # type: ignore[arg-type]
    assert ckpt.meta.epoch is None


def tiny_onnx(size: int) -> bytes:
    """``probability = sigmoid(1.5 * mean(image) + 0.2)``: the package contract, in 5 nodes."""
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, size, size])
    out = helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch", 1])
    constants = [
        numpy_helper.from_array(np.array([2, 3], np.int64), "axes"),
        numpy_helper.from_array(np.array([1.5], np.float32), "w"),
        numpy_helper.from_array(np.array([0.2], np.float32), "b"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["image", "axes"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "w"], ["scaled"]),
        helper.make_node("Add", ["scaled", "b"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["probability"]),
    ]
    graph = helper.make_graph(nodes, "tiny", [image], [out], initializer=constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    return bytes(model.SerializeToString())


def release_package(folder: Path) -> dict[str, object]:
    """The release's card with a tiny model, written as `register` wrote packages then."""
    import hashlib

    card: dict[str, object] = json.loads(FIXTURE.read_text())
    spec = PreprocessSpec.from_dict(card["preprocessing"])  # type: ignore[arg-type]
    onnx = tiny_onnx(spec.image.size)
    card["model_sha256"] = hashlib.sha256(onnx).hexdigest()
    pixels = np.stack([gradient(spec.image.size, seed=i) for i in range(4)])
    session = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])
    probs = session.run(["probability"], {"image": spec.normalize(pixels)})[0][:, 0]
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(onnx)
    (folder / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    np.savez_compressed(folder / "verification.npz", pixels=pixels, probabilities=probs)
    return card


def expected_probability(card: dict[str, object], data: bytes) -> float:
    spec = PreprocessSpec.from_dict(card["preprocessing"])  # type: ignore[arg-type]
    session = ort.InferenceSession(tiny_onnx(spec.image.size), providers=["CPUExecutionProvider"])
    image = spec.normalize(prepare_upload(data, spec, "f"))  # the release's graph takes floats
    return float(session.run(["probability"], {"image": image})[0][0, 0])


def test_a_release_model_card_loads_in_process(tmp_path: Path) -> None:
    card = release_package(tmp_path / "package")
    model = load_model(tmp_path / "package", "pneumonia", "1")
    fixture = json.loads(FIXTURE.read_text())
    assert model.threshold == fixture["threshold"]["value"]
    assert model.spec == PreprocessSpec.from_dict(fixture["preprocessing"])
    image = png_bytes(Image.fromarray(gradient(200)))
    got = float(model.predict(prepare_upload(image, model.spec, "f"))[0])
    assert got == pytest.approx(expected_probability(card, image), abs=1e-6)


def test_onnx_runtimes_threads_sleep_between_calls_unless_asked_to_spin(tmp_path: Path) -> None:
    release_package(tmp_path / "package")
    key = "session.intra_op.allow_spinning"
    for spin, want in ((False, "0"), (True, "1")):
        model = load_model(tmp_path / "package", "pneumonia", "1", spin=spin)
        assert model.session.get_session_options().get_session_config_entry(key) == want


@pytest.mark.slow
def test_a_model_registered_by_the_release_serves(tmp_path: Path) -> None:
    """The release's package, registered and promoted as it registered them, behind `pneumo
    serve models:/pneumonia@champion` (in an interpreter that refuses torch)."""
    root = tmp_path / "root"
    card = release_package(tmp_path / "package")
    settings = Settings(root=str(root))
    run_id = Tracker(settings).start("release-0.1.0", {"dataset": "synthetic"})
    reg = ModelRegistry(settings, "pneumonia")
    reg.client.log_artifacts(run_id, str(tmp_path / "package"), "packages/release")
    source = f"{reg.client.get_run(run_id).info.artifact_uri}/packages/release"
    version = reg.create_version(source, run_id, {"model_sha256": str(card["model_sha256"])}, "")
    reg.set_alias(CHAMPION, version)

    image = png_bytes(Image.fromarray(gradient(300, seed=3)))
    with running_service({"PNEUMO_ROOT": str(root)}, tmp_path / "work", poll_seconds="0") as svc:
        answer = post(svc.url, image)
        info = requests.get(f"{svc.url}/v1/model", timeout=10).json()
        files = {"file": ("film.png", image, "image/png")}
        mapless = requests.post(f"{svc.url}/v1/explain", files=files, timeout=30)
    assert answer.status_code == 200, answer.text
    # no activation outputs in its model.onnx: a 409 that says so, not a 500
    assert mapless.status_code == 409, mapless.text
    assert mapless.json()["error"] == "no_activation_maps"
    assert f"version {version} was registered before activation maps" in mapless.json()["detail"]
    body = answer.json()
    assert body["model"] == {"name": "pneumonia", "version": version}
    assert body["threshold"] == card["threshold"]["value"]  # type: ignore[index]
    assert body["probability"] == pytest.approx(expected_probability(card, image), abs=1e-6)
    assert info["card"]["preprocessing"] == card["preprocessing"]
    assert info["monitoring"]["drift_detection"] is False  # and it says why
    assert "registered before drift references" in info["monitoring"]["detail"]
