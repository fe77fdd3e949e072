"""`pneumo register` and `pneumo promote` against a real MLflow registry on SQLite."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from pneumo.cli import app
from pneumo.config import PromoteConfig, RegisterConfig, load_config
from pneumo.packaging.card_fields import REQUIRED, missing_fields
from pneumo.packaging.package import read_package
from pneumo.packaging.registry import ModelRegistry
from pneumo.serving.model import load_model
from pneumo.settings import Settings, get_settings
from pneumo.stages.promote import PromotionRefusedError, promote
from pneumo.stages.register import register
from pneumo.training.fit import train
from tests.conftest import TINY_TRAIN, tiny_prepared
from tests.serving_support import Registered

pytestmark = pytest.mark.slow


def test_registered_package_is_complete_and_verified(registered: Registered) -> None:
    folder = registered.root / "runs" / registered.run_id / "model"
    pkg = read_package(folder)
    card = pkg.card.to_dict()
    assert missing_fields(card) == []
    assert set(REQUIRED) and card["threshold"]["chosen_on"] == "val"
    metrics = json.loads((folder.parent / "eval-test" / "metrics.json").read_text())
    assert card["metrics"]["auroc"] == {
        k: metrics["auroc"][k] for k in ("value", "ci_low", "ci_high")
    }
    assert card["parity"]["max_abs_diff"] <= 1e-4 and card["parity"]["images"] >= 1
    assert card["data"]["manifest_hash"] == metrics["context"]["manifest_hash"]
    assert any("SYNTHETIC" in line for line in card["limitations"])
    assert card["model"]["input"]["shape"] == ["batch", 1, 32, 32]
    assert (folder / "card.html").read_text().count("Intended use") == 1
    # ONNX Runtime on the stored verification images reproduces PyTorch's probabilities
    model = load_model(folder, "pneumonia", "x")
    got = model.predict(pkg.verification.pixels)
    np.testing.assert_allclose(got, pkg.verification.probabilities, atol=1e-4)
    # dynamic batch axis: any batch size runs
    assert model.predict(np.repeat(pkg.verification.pixels[:1], 7, 0)).shape == (7,)
    # the drift reference: validation images' probabilities are the model's own, row-aligned
    assert pkg.reference is not None and pkg.reference.drift is not None
    drift = pkg.reference.drift
    assert len(drift.embeddings) == len(drift.scores) == len(drift.stats["mean_intensity"])
    assert float(drift.scores.min()) >= 0.0 and float(drift.scores.max()) <= 1.0
    assert card["ood"]["drift"]["statistics"] == sorted(drift.stats)
    assert sum(drift.counts["src_mode"].values()) >= len(drift.scores)  # every val image


def test_the_model_file_takes_pixels_and_says_how_it_was_made(registered: Registered) -> None:
    """ONNX Runtime alone, fed uint8 pixels, gives PyTorch's probabilities; metadata_props
    carry the card's preprocessing and threshold."""
    folder = registered.root / "runs" / registered.run_id / "model"
    pkg = read_package(folder)
    session = ort.InferenceSession(pkg.onnx, providers=["CPUExecutionProvider"])
    (image,) = session.get_inputs()
    assert (image.name, image.type, image.shape[1:]) == ("image", "tensor(uint8)", [1, 32, 32])
    names = ["probability", "embedding", "activations", "activation_weights"]
    assert [o.name for o in session.get_outputs()] == names
    pixels = pkg.verification.pixels[:, None]  # no normalisation by the caller
    got = session.run(["probability"], {"image": pixels})[0][:, 0]
    np.testing.assert_allclose(got, pkg.verification.probabilities, atol=1e-4)
    props = session.get_modelmeta().custom_metadata_map
    card = pkg.card.to_dict()
    assert float(props["pneumo.threshold"]) == card["threshold"]["value"]
    preprocessing = json.loads(props["pneumo.preprocessing"])
    assert preprocessing.pop("in_graph") is True
    assert preprocessing == {k: v for k, v in card["preprocessing"].items() if k != "steps"}
    assert props["pneumo.card_format"] == card["format"]
    assert props["pneumo.run_id"] == card["run_id"]
    assert sorted(json.loads(props["pneumo.outputs"])) == sorted(names)
    assert card["model"]["input"]["dtype"] == "uint8"


def test_registry_holds_version_alias_and_promotion_record(registered: Registered) -> None:
    settings = Settings(root=str(registered.root))
    reg = ModelRegistry(settings)
    assert reg.alias("champion") is not None
    info = reg.info("1")
    assert info.run_id == registered.run_id and info.tags["card_complete"] == "true"
    records = reg.promotions()
    assert records[0]["version"] == "1" and records[0]["why"] == "tests"
    assert records[0]["who"] and records[0]["when"] and records[0]["forced"] is False


def test_corrupt_package_is_refused(registered: Registered, tmp_path: Path) -> None:
    import shutil

    from pneumo.packaging.package import PackageError

    folder = tmp_path / "model"
    shutil.copytree(registered.root / "runs" / registered.run_id / "model", folder)
    (folder / "model.onnx").write_bytes((folder / "model.onnx").read_bytes()[:-10])
    with pytest.raises(PackageError, match="SHA-256"):
        load_model(folder, "pneumonia", "x")


class Terminal(io.StringIO):
    """A stderr that says it is a terminal: progress bars are drawn on it."""

    def isatty(self) -> bool:
        return True


def test_gate_refuses_other_data_then_force_and_rollback_are_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = get_settings()
    runs = []
    for name, seed in (("first", 1), ("second", 2)):
        entry = tiny_prepared(name=name, patients=24 + seed, size=32)
        runs.append(train(entry, load_config(None, TINY_TRAIN), settings, progress=False).run_id)
    v1 = register(runs[0], RegisterConfig(), settings).version
    promote(PromoteConfig(), settings, reason="first")
    terminal = Terminal()
    with monkeypatch.context() as patched:  # a person at a terminal sees the long steps move
        patched.setattr(sys, "stderr", terminal)
        v2 = register(runs[1], RegisterConfig(), settings).version
    drawn = terminal.getvalue()
    assert "scoring test" in drawn and "bootstrap (" in drawn, drawn[-500:]  # its evaluation
    assert "parity check (PyTorch, ONNX Runtime)" in drawn, drawn[-500:]
    with pytest.raises(PromotionRefusedError) as refused:
        promote(PromoteConfig(), settings)
    message = refused.value.message
    assert "tested on different data" in message and "| AUROC |" in message
    assert ModelRegistry(settings).alias("champion") == v1

    cli = CliRunner()
    out = cli.invoke(app, ["promote"])
    assert out.exit_code != 0  # refused through the CLI too
    out = cli.invoke(app, ["promote", "--force", "--reason", "new data set"])
    assert out.exit_code == 0, out.output
    assert "FORCED" in out.output and ModelRegistry(settings).alias("champion") == v2
    out = cli.invoke(app, ["promote", "--version", v1, "--reason", "roll back"])
    assert out.exit_code == 0, out.output
    assert "rolled back" in out.output
    records = ModelRegistry(settings).promotions()
    assert [(r["version"], r["kind"], r["forced"]) for r in records] == [
        (v1, "promotion", False),
        (v2, "promotion", True),
        (v1, "rollback", False),
    ]
    history = cli.invoke(app, ["promote", "--history"]).output
    assert "FORCED" in history and "new data set" in history and "roll back" in history

    # pneumo report on two runs: markdown and HTML with the curves, data differences shown
    out = cli.invoke(app, ["report", runs[1], runs[0], "--out", str(settings.root) + "/rep"])
    assert out.exit_code == 0, out.output
    folder = Path(settings.root) / "rep"
    markdown = (folder / "report.md").read_text()
    assert f"run {runs[1][:8]} vs run {runs[0][:8]}" in markdown
    assert "| AUROC |" in markdown and "| dataset | second | first | **differs** |" in markdown
    assert "Promotion gate: n/a" in markdown
    assert (folder / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (folder / "report.html").read_text()
    assert "data:image/png;base64," in page and "<table>" in page
    # and on registered versions (challenger v2 vs champion v1): the gate's verdict
    out = cli.invoke(app, ["report", f"models:/pneumonia/{v2}", "--out", str(folder / "v")])
    assert out.exit_code == 0 and "gate FAIL" in out.output, out.output
    assert "tested on different data" in (folder / "v" / "report.md").read_text()


def test_serve_without_a_model_or_with_a_bad_folder_is_a_clear_error(tmp_path: Path) -> None:
    from pneumo.errors import PneumoError

    cli = CliRunner()
    out = cli.invoke(app, ["serve"])
    assert isinstance(out.exception, PneumoError)
    assert "alias 'champion'" in out.exception.message and out.exception.hint
    out = cli.invoke(app, ["serve", str(tmp_path)])
    assert isinstance(out.exception, PneumoError) and "not a model package" in out.exception.message
