"""A verified, loaded model: an ONNX Runtime session plus the card that says how to use it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pneumo.errors import PneumoError
from pneumo.explain.cam import ActivationMap, activation_maps
from pneumo.onnx_runtime import onnxruntime
from pneumo.packaging.modelcard import ModelCard
from pneumo.packaging.package import PackageError, read_package
from pneumo.packaging.reference import Reference
from pneumo.packaging.signature import (
    ACTIVATION_WEIGHTS_NAME,
    ACTIVATIONS_NAME,
    EMBEDDING_NAME,
    OUTPUT_NAME,
    ModelInput,
)
from pneumo.preprocess import PreprocessSpec


@dataclass(frozen=True)
class Score:
    probability: float
    ood: float | None  # out-of-distribution score; None when the model has no reference
    embedding: np.ndarray | None = None  # (D,) float32; None when the model has no reference
    cam: ActivationMap | None = None  # where the model looked; only when asked for


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    card: ModelCard
    spec: PreprocessSpec
    threshold: float
    session: Any  # onnxruntime.InferenceSession
    feed: ModelInput
    reference: Reference | None = None

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 pixels (N, S, S) → float64 (N,) probabilities."""
        out = self.session.run([OUTPUT_NAME], self.feed(pixels))[0]
        return np.asarray(out, dtype=np.float64).reshape(-1)

    @property
    def explains(self) -> bool:
        """Does model.onnx give activation maps (registered since they exist)?"""
        names = {o.name for o in self.session.get_outputs()}
        return ACTIVATIONS_NAME in names and ACTIVATION_WEIGHTS_NAME in names

    def score(self, pixels: np.ndarray, explain: Sequence[bool] = ()) -> list[Score]:
        """Probability and out-of-distribution score of each image (uint8 (N, S, S)), one run;
        with the activation map of the images whose ``explain`` flag is set."""
        wanted = [OUTPUT_NAME]
        if self.reference is not None:
            wanted.append(EMBEDDING_NAME)
        if any(explain):
            wanted += [ACTIVATIONS_NAME, ACTIVATION_WEIGHTS_NAME]
        out = dict(zip(wanted, self.session.run(wanted, self.feed(pixels)), strict=True))
        flat = np.asarray(out[OUTPUT_NAME], dtype=np.float64).reshape(-1)
        n = len(flat)
        ood: list[float | None] = [None] * n
        embeddings: list[np.ndarray | None] = [None] * n
        if self.reference is not None:
            emb = np.asarray(out[EMBEDDING_NAME], np.float32)
            ood, embeddings = [float(o) for o in self.reference.scores(emb)], list(emb)
        cams: list[ActivationMap | None] = [None] * n
        if any(explain):
            picked = [i for i, flag in enumerate(explain) if flag]
            maps = activation_maps(
                out[ACTIVATIONS_NAME][picked], out[ACTIVATION_WEIGHTS_NAME][picked]
            )
            for i, cam in zip(picked, maps, strict=True):
                cams[i] = cam
        return [
            Score(float(p), o, e, c) for p, o, e, c in zip(flat, ood, embeddings, cams, strict=True)
        ]

    def explained(self, pixels: np.ndarray) -> tuple[np.ndarray, list[ActivationMap]]:
        """Probabilities (float64 (N,)) and activation maps of a batch, from one run (the model
        must have maps: :attr:`explains`)."""
        scores = self.score(pixels, [True] * len(pixels))
        maps = [s.cam for s in scores if s.cam is not None]
        return np.array([s.probability for s in scores], dtype=np.float64), maps

    def decide(self, probability: float) -> tuple[str, bool]:
        """("pneumonia" | "no pneumonia", positive) at the card's operating threshold."""
        positive = probability >= self.threshold
        return ("pneumonia" if positive else "no pneumonia"), positive

    @property
    def ident(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}


def ort_session(onnx: bytes, threads: int = 0, spin: bool = False) -> Any:
    """An ONNX Runtime session built as the service builds its own (threads, spinning, all
    graph optimisations, CUDA when there is one)."""
    ort = onnxruntime()

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    # Spinning threads hold the cores for a while after each call, which slows what follows it
    # (the next decode, a map's overlay): measured in benchmarks/explain_latency.py.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    wanted = ("CUDAExecutionProvider", "CPUExecutionProvider")
    providers = [p for p in wanted if p in ort.get_available_providers()]
    return ort.InferenceSession(onnx, options, providers=providers)


def load_model(
    folder: Path, name: str, version: str, threads: int = 0, warm: int = 1, spin: bool = False
) -> LoadedModel:
    """Load a package folder and prove it works: checksum, shapes, verification images.

    Raises :class:`PackageError` for anything that would make it serve wrong answers.
    """
    pkg = read_package(folder)
    card = pkg.card
    try:
        spec, threshold = card.preprocess_spec(), card.operating_threshold()
    except PneumoError as exc:
        raise PackageError(f"{folder}: {exc.message}") from None
    try:
        session = ort_session(pkg.onnx, threads, spin)
    except Exception as exc:
        raise PackageError(
            f"{folder}: ONNX Runtime cannot load model.onnx: {exc}".splitlines()[0]
        ) from None
    reference = pkg.reference
    if reference is not None:
        outputs = {o.name for o in session.get_outputs()}
        if EMBEDDING_NAME not in outputs:
            raise PackageError(
                f"{folder}: the card has an out-of-distribution reference but model.onnx has "
                f"no '{EMBEDDING_NAME}' output"
            )
    feed = ModelInput.of(session, spec)
    model = LoadedModel(name, version, card, spec, threshold, session, feed, reference)
    check = pkg.verification
    tolerance = (card.parity.tolerance if card.parity else None) or 1e-4
    try:
        got = model.predict(check.pixels)
    except Exception as exc:
        raise PackageError(
            f"{folder}: the model fails on its verification images: {exc}".splitlines()[0]
        ) from None
    worst = float(np.max(np.abs(got - check.probabilities))) if got.size else float("inf")
    if not worst <= tolerance:
        raise PackageError(
            f"{folder}: verification failed, max |Δp| {worst:.2e} > {tolerance:.0e} against "
            "the probabilities recorded at registration"
        )
    if warm > 1:  # allocate the largest batch once, before traffic does
        model.predict(np.repeat(check.pixels[:1], warm, axis=0))
    return model
