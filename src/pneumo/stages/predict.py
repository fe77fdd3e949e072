"""`pneumo predict`: score files in bulk with a registered model, torch-free, resumably.

Files come from paths, folders, glob patterns or fsspec URLs (PNG, JPEG, DICOM). They are
decoded in parallel over all cores by the same :func:`pneumo.data.decode.image.decode` the
service and the training cache use, normalised by the model's own preprocessing and scored by
ONNX Runtime in batches, through the service's model loader (checksum and verification images
checked first). A file that cannot be scored gets its reason on its row and never stops the
batch. Rows are written every :data:`CHUNK` files to ``<out>.partial/``; a killed run started
again with the same model skips what is written there, and the table is assembled (Parquet and
CSV) only at the end. With ``--explain DIR`` each scored file also gets its Grad-CAM map drawn
over the model's input, a PNG in DIR named in the table's ``overlay`` column.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from pneumo import paths, storage
from pneumo.data.decode.pool import worker_count
from pneumo.errors import DataError, PneumoError
from pneumo.explain.cam import ActivationMap
from pneumo.serving.model import LoadedModel
from pneumo.serving.source import make_source
from pneumo.serving.state import load_version
from pneumo.settings import ServeSettings, Settings, get_settings
from pneumo.stages.batch_scoring import reason, score_files

SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom")
DTYPES = {
    "file": "string", "probability": "float64", "decision": "string", "threshold": "float64",
    "model": "string", "version": "string", "error": "string", "overlay": "string",
}  # fmt: skip
COLUMNS = list(DTYPES)
CHUNK = 256  # rows per partial file: what a kill can lose


@dataclass(frozen=True)
class Predicted:
    out: str
    csv: str
    rows: int
    failed: int
    resumed: int  # rows an interrupted run had written
    model: str
    overlays: str | None = None  # the folder of the activation-map overlays, if drawn

    def summary(self) -> str:
        lines = [
            f"{self.rows:,} file(s) by {self.model}: {self.failed:,} could not be scored "
            "(see their error)"
        ]
        if self.resumed:
            lines.append(f"  ({self.resumed:,} taken from the interrupted run)")
        lines.append(f"table: {self.out}\n       {self.csv}")
        if self.overlays:
            lines.append(f"activation-map overlays: {self.overlays} (the table's overlay column)")
        return "\n".join(lines)


def _row(
    model: LoadedModel, file: str, probability: float | None, error: str | None,
    overlay: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    decision = None if probability is None else model.decide(probability)[0]
    return {
        "file": file, "probability": probability, "decision": decision,
        "threshold": model.threshold, "model": model.name, "version": model.version,
        "error": error, "overlay": overlay,
    }  # fmt: skip


class _Overlays:
    """Where ``--explain`` draws each scored file's map over its model input."""

    def __init__(self, model: LoadedModel, folder: str, settings: Settings) -> None:
        if not model.explains:
            raise PneumoError(
                f"{model.name} v{model.version} has no activation maps (registered before "
                "model.onnx carried them)",
                hint="register the run again with this version of pneumo, or drop --explain",
            )
        self.folder, self.settings = folder, settings
        storage.makedirs(folder, settings)

    def draw(self, file: str, pixels: np.ndarray, cam: ActivationMap) -> str:
        from pneumo.explain.overlay import overlay, overlay_side, png

        url = storage.join(self.folder, paths.overlay_name(file))
        heat = cam.upsampled(overlay_side(pixels.shape[0]))
        storage.write_bytes(url, png(overlay(pixels, heat)), self.settings)
        return url


def _rows(
    model: LoadedModel, files: list[str], batch: int, workers: int, overlays: _Overlays | None
) -> Iterator[dict[str, Any]]:
    explained = model.explained if overlays is not None else None
    for scored in score_files(files, model.spec, model.predict, batch, workers,
                              explained=explained):  # fmt: skip
        error = None if scored.probability is not None else reason(scored.record)
        drawn = None
        if overlays is not None and scored.cam is not None and scored.pixels is not None:
            drawn = overlays.draw(scored.file, scored.pixels, scored.cam)
        yield _row(model, scored.file, scored.probability, error, drawn)


class _Partial:
    """The rows written so far, in ``<out>.partial/``, for the model that wrote them."""

    def __init__(
        self, out: str, model: LoadedModel, settings: Settings, explain: str | None = None
    ) -> None:
        self.folder, self.settings = f"{out}.partial", settings
        self.identity = {
            "model": model.name,
            "version": model.version,
            "sha256": model.card.model_sha256,
            "explain": explain,  # rows written without overlays do not do for a run with them
        }
        state = storage.join(self.folder, paths.PARTIAL_MODEL)
        if storage.exists(state, settings) and storage.read_json(state, settings) != self.identity:
            storage.remove(self.folder, settings)  # another model's rows: start again
        storage.makedirs(self.folder, settings)
        storage.write_json(state, self.identity, settings)
        self.chunks = sorted(
            n for n in storage.listdir(self.folder, settings) if n.endswith(".parquet")
        )

    def rows(self) -> pd.DataFrame:
        tables = [
            storage.read_table(storage.join(self.folder, n), self.settings) for n in self.chunks
        ]
        rows = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=COLUMNS)
        return rows.astype(DTYPES)

    def write(self, rows: list[dict[str, Any]]) -> None:
        name = f"chunk-{len(self.chunks):05d}.parquet"
        table = pd.DataFrame(rows, columns=COLUMNS).astype(DTYPES)
        storage.write_table(storage.join(self.folder, name), table, self.settings)
        self.chunks.append(name)


def predict(
    inputs: list[str], model: LoadedModel, out: str, *, batch: int = 32, progress: bool = True,
    settings: Settings | None = None, explain: str | None = None,
) -> Predicted:  # fmt: skip
    """Score every file ``inputs`` name with ``model``; the table goes to ``out`` (Parquet,
    and CSV beside it), the overlays of their activation maps to ``explain`` if given."""
    settings = settings or get_settings()
    overlays = _Overlays(model, explain, settings) if explain else None
    try:
        files = storage.expand(inputs, SUFFIXES, settings)
    except FileNotFoundError as exc:
        raise DataError(
            f"nothing to score at {exc}", hint="give files, folders or glob patterns"
        ) from None
    partial = _Partial(out, model, settings, explain)
    earlier = partial.rows()
    done = set(earlier["file"])
    todo = [f for f in files if f not in done]
    workers = worker_count(settings.workers)
    with tqdm(total=len(files), initial=len(files) - len(todo), desc="predict", unit="file",
              disable=not progress, file=sys.stderr) as bar:  # fmt: skip
        rows = _rows(model, todo, batch, workers, overlays)
        while chunk := list(itertools.islice(rows, CHUNK)):
            partial.write(chunk)
            bar.update(len(chunk))
    table = partial.rows()
    order = {f: i for i, f in enumerate(files)}
    table = table[table["file"].isin(order)].sort_values("file", key=lambda s: s.map(order))
    table = table.reset_index(drop=True)
    csv = out.removesuffix(".parquet") + ".csv"
    storage.write_table(out, table, settings)
    storage.write_text(csv, table.to_csv(index=False), settings)
    storage.remove(partial.folder, settings)
    failed = int(table["error"].notna().sum())
    ident = f"{model.name} v{model.version}"
    return Predicted(out, csv, len(table), failed, len(files) - len(todo), ident, explain)


def run(
    inputs: list[str], model: str | None, out: str | None, *, batch: int = 32,
    progress: bool = True, explain: str | None = None,
) -> Predicted:  # fmt: skip
    settings, serve = get_settings(), ServeSettings()
    source = make_source(model or serve.serve_model, settings, serve.cache_dir(settings.root))
    loaded = load_version(source, source.current(), serve)
    target = storage.absolute(out) if out else None
    target = target or storage.join(settings.root, paths.PREDICTIONS_DIR, paths.PREDICTIONS_TABLE)
    folder = storage.absolute(explain) if explain else None
    return predict(inputs, loaded, target, batch=batch, progress=progress, settings=settings,
                   explain=folder)  # fmt: skip
