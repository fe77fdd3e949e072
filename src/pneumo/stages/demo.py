"""`pneumo demo`: the whole cycle on embedded defaults, reusing whatever is already done.

fetch → prepare → eda → train → evaluate → register → promote → serve, on a laptop: local
folders under ``PNEUMO_ROOT``, MLflow on SQLite, CPU. Synthetic data by default; ``--data PATH``
takes any dataset `pneumo fetch local` understands. The model is small on purpose (ResNet-18 at
64 px, ten epochs; :data:`DEMO_OVERRIDES`) so the cycle takes minutes on two cores; a config
file and overrides change it. Each stage says whether it ran or was reused:

- fetch: a registered dataset whose folder exists is reused;
- prepare: reused when inputs and config are unchanged (its own fingerprint);
- train: the run recorded for this dataset and config in ``demo/<dataset>.json`` is reused when
  finished and resumed when it was interrupted;
- evaluate / register / promote: reused when the run already has them.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pneumo import paths, storage
from pneumo.config import ExperimentConfig, dump_config, load_config
from pneumo.data import schema
from pneumo.data.preparation import prepare
from pneumo.data.prepared import load_prepared
from pneumo.data.sources import datasets
from pneumo.data.sources.datasets import Dataset
from pneumo.models import checkpoint
from pneumo.packaging.registry import CHAMPION, ModelRegistry
from pneumo.render.text import with_interval
from pneumo.serving.main import run_server
from pneumo.settings import ServeSettings, Settings, get_settings
from pneumo.stages.eda import run_eda
from pneumo.stages.evaluate import current_evaluation, evaluate
from pneumo.stages.fetch import generate_synthetic
from pneumo.stages.promote import PromotionRefusedError, promote
from pneumo.stages.register import register
from pneumo.stages.train import train_or_resume

log = logging.getLogger(__name__)
T = TypeVar("T")

DEMO_OVERRIDES = [
    "synthetic.patients=300",  # about 500 images: enough for the model to learn something
    "prepare.image_size=64",
    "train.backbone=resnet18",
    "train.epochs=10",
    "train.batch_size=32",
    "train.lr=0.001",
    "train.patience=4",
    "evaluate.n_boot=300",
]
STAGES = ("fetch", "prepare", "eda", "train", "evaluate", "register", "promote", "serve")
SYNTHETIC = "synthetic"


@dataclass(frozen=True)
class DemoResult:
    dataset: str
    run_id: str
    version: str
    model_uri: str
    eda: str
    evaluation: str
    example_image: str | None

    def summary(self) -> str:
        return "\n".join(
            [
                "",
                f"EDA report:        {self.eda}",
                f"evaluation report: {self.evaluation}",
                f"model:             {self.model_uri} (version {self.version}, run {self.run_id})",
            ]
        )


class _Stages:
    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo

    def run(self, name: str, work: Callable[[], tuple[T, str]]) -> T:
        number = STAGES.index(name) + 1
        start = time.perf_counter()
        value, note = work()
        took = time.perf_counter() - start
        self.echo(f"[{number}/{len(STAGES)}] {name:<9} {note} ({took:.1f} s)")
        return value


def _fetch(data: str | None, cfg: ExperimentConfig, settings: Settings) -> tuple[Dataset, str]:
    if data is not None:
        entry = datasets.register(data, source="local", settings=settings)
        return entry, f"'{entry.name}' ({entry.layout} layout) at {entry.location}"
    _, known = datasets.list_datasets(settings)
    found = next((d for d in known if d.name == SYNTHETIC), None)
    if found is not None and storage.exists(found.location, settings):
        entry = datasets.register(
            found.location, source=SYNTHETIC, name=SYNTHETIC, settings=settings
        )
        return entry, f"synthetic dataset at {entry.location} (reused)"
    fetched = generate_synthetic(SYNTHETIC, cfg, settings, progress=True)
    entry = fetched.dataset
    return entry, f"{fetched.images} synthetic images generated at {entry.location}"


def _prepare(entry: Dataset, cfg: ExperimentConfig, settings: Settings) -> tuple[None, str]:
    result = prepare(entry, cfg, settings, progress=True)
    totals = result.card["totals"]
    note = f"{totals['images']} images in the cache ({totals['quarantined']} quarantined)"
    return None, note + (" (reused)" if result.up_to_date else "")


def _train(entry: Dataset, cfg: ExperimentConfig, settings: Settings) -> tuple[str, str]:
    """The run recorded for this dataset and config: reused if finished, resumed if killed."""
    key = hashlib.sha256(dump_config(cfg).encode()).hexdigest()
    state_url = storage.join(settings.root, paths.DEMO_DIR, f"{entry.name}.json")
    state = storage.read_json(state_url, settings) if storage.exists(state_url, settings) else {}
    known = state.get("run_id") if state.get("config") == key else None
    folder = storage.join(settings.runs, known) if known else None
    result, how = train_or_resume(entry, cfg, settings, folder, progress=True)
    if result is None:
        return str(known), f"run {known} (reused)"
    if how == "resumed":
        return (
            result.run_id,
            f"run {result.run_id} resumed, best val AUROC {result.best_val_auroc:.3f}",
        )
    record = {"config": key, "run_id": result.run_id}
    storage.write_json(state_url, record, settings, indent=None)
    return result.run_id, (
        f"run {result.run_id}: {result.epochs_run} epoch(s), best val AUROC "
        f"{result.best_val_auroc:.3f}"
    )


def _evaluate(run_id: str, cfg: ExperimentConfig, settings: Settings) -> tuple[str, str]:
    folder = storage.join(settings.runs, run_id)
    evaluation = storage.join(folder, paths.evaluation_dir("test"))
    meta = checkpoint.load(storage.join(folder, paths.BEST), settings).meta
    metrics = current_evaluation(evaluation, meta, settings)
    if metrics is not None:
        auroc = metrics["auroc"]["value"]
        return storage.join(evaluation, paths.REPORT_MD), f"test AUROC {auroc:.3f} (reused)"
    result = evaluate(run_id, cfg.evaluate.model_copy(update={"split": "test"}), settings)
    auroc = with_interval(result.metrics["auroc"], label="95% CI ")
    return result.files[paths.REPORT_MD], f"test AUROC {auroc}"


def _register(run_id: str, cfg: ExperimentConfig, settings: Settings) -> tuple[str, str]:
    reg = ModelRegistry(settings, cfg.registry.name)
    mine = [v for v in reg.versions() if v.run_id == run_id]
    if mine:
        return mine[-1].version, f"version {mine[-1].version} of '{reg.name}' (reused)"
    done = register(run_id, cfg.registry, settings)
    parity = done.card.parity.max_abs_diff if done.card.parity else float("nan")
    return done.version, f"version {done.version} (challenger), ONNX parity max |Δp| {parity:.1e}"


def _promote(version: str, cfg: ExperimentConfig, settings: Settings) -> tuple[str, str]:
    name = cfg.registry.name
    if ModelRegistry(settings, name).alias(CHAMPION) == version:
        return f"models:/{name}@champion", f"version {version} is the champion (reused)"
    try:
        promote(cfg.promote, settings, name=name, version=version, reason="pneumo demo")
    except PromotionRefusedError as refused:
        log.warning("%s", refused.message)
        return (
            f"models:/{name}/{version}",
            f"gate refused version {version} (table above); serving it directly, not as champion",
        )
    return f"models:/{name}@champion", f"version {version} is now the champion"


def _example_image(entry: Dataset, settings: Settings) -> str | None:
    test = load_prepared(entry, settings).split("test")
    if test.empty or schema.PATH not in test:
        return None
    path = str(test[schema.PATH].iloc[0])
    return path if "://" not in path else None


def run_demo(
    data: str | None = None,
    config: str | None = None,
    overrides: list[str] | None = None,
    settings: Settings | None = None,
    echo: Callable[[str], None] = print,
) -> DemoResult:
    """Stages 1-7; :func:`run` also serves the model (stage 8)."""
    settings = settings or get_settings()
    cfg = load_config(config, [*DEMO_OVERRIDES, *(overrides or [])])
    stages = _Stages(echo)
    entry = stages.run("fetch", lambda: _fetch(data, cfg, settings))
    stages.run("prepare", lambda: _prepare(entry, cfg, settings))
    eda = stages.run("eda", lambda: (url := run_eda(entry, settings=settings), url))
    run_id = stages.run("train", lambda: _train(entry, cfg, settings))
    report = stages.run("evaluate", lambda: _evaluate(run_id, cfg, settings))
    version = stages.run("register", lambda: _register(run_id, cfg, settings))
    uri = stages.run("promote", lambda: _promote(version, cfg, settings))
    example = _example_image(entry, settings)
    return DemoResult(entry.name, run_id, version, uri, eda, report, example)


def run(
    data: str | None,
    config: str | None,
    overrides: list[str],
    *,
    host: str | None = None,
    port: int | None = None,
    serve: bool = True,
    echo: Callable[[str], None] = print,
) -> DemoResult:
    """The whole cycle; with ``serve``, it ends serving the model until Ctrl-C."""
    result = run_demo(data, config, overrides, echo=echo)
    if not serve:
        echo(result.summary())
        return result
    serve_cfg = ServeSettings()
    host = host or serve_cfg.serve_host
    port = serve_cfg.serve_port if port is None else port
    image = result.example_image or "xray.png"
    intro = [
        result.summary(),
        f"[8/8] serve     http://{host}:{port}/  (Ctrl-C stops it)",
        f"try:   curl -F file=@{image} http://{host}:{port}/v1/predict",
        "",
    ]
    run_server(model=result.model_uri, host=host, port=port, intro="\n".join(intro))
    return result
