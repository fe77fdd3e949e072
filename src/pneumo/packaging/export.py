"""PyTorch → ONNX with a dynamic batch axis, and the parity check registration depends on.

The exported graph starts from uint8 pixels and applies the preprocessing spec's normalisation
itself, and it ends in a sigmoid: it maps decoded pixels to probabilities, so neither the
service nor a Triton or ONNX Runtime user applies arithmetic of their own, and parity is
checked on the very numbers the service returns. It also outputs ``embedding``, the features
the final Linear reads (the out-of-distribution score and the monitoring use it), and the last
convolutional features with their Grad-CAM weights (the activation maps, :mod:`pneumo.explain`),
all from one pass through the model cut at its last convolution. The names and the metadata
are :mod:`pneumo.packaging.signature`'s. torch.onnx's dynamo exporter is used (the TorchScript
one is deprecated and cannot export VGG's adaptive pooling).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pneumo import paths
from pneumo.errors import PneumoError
from pneumo.models.trunk import Split, check_split
from pneumo.onnx_runtime import onnxruntime
from pneumo.packaging.signature import INPUT_NAME, OUTPUT_NAME, OUTPUTS, ModelInput
from pneumo.preprocess import FLAT, PreprocessSpec

PARITY_CHUNK = 16  # images scored at a time by each runtime in the parity check


class _Outputs(torch.nn.Module):
    """uint8 pixels → (probability, embedding, activations, activation weights):
    :meth:`PreprocessSpec.normalize` in torch ops, then the model cut at its last convolution
    (:class:`pneumo.models.trunk.Split`), exactly as the whole model in eval mode."""

    def __init__(self, model: torch.nn.Module, backbone: str, spec: PreprocessSpec) -> None:
        super().__init__()
        self.split = Split(model, backbone)
        check_split(self.split, model, spec.image.size)
        self.per_image = spec.intensity == "per_image"
        self.mean, self.std = float(spec.mean), float(spec.std)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        scaled = image.to(torch.float32) / 255.0
        if self.per_image:
            centre = scaled.mean(dim=(2, 3), keepdim=True)
            spread = scaled.var(dim=(2, 3), keepdim=True, correction=0).sqrt()
            scaled = (scaled - centre) / spread.clamp_min(FLAT)
        logit, embedding, maps, weights = self.split((scaled - self.mean) / self.std)
        return torch.sigmoid(logit), embedding, maps, weights


def export_onnx(model: torch.nn.Module, spec: PreprocessSpec, opset: int, backbone: str) -> bytes:
    """The model (a ``backbone``) as ONNX bytes taking uint8 pixels (N, 1, S, S) at ``spec``'s
    size, batch axis dynamic, with :data:`~pneumo.packaging.signature.OUTPUTS` as outputs."""
    wrapped = _Outputs(model.eval().cpu(), backbone, spec).eval()
    size = spec.image.size
    example = (torch.zeros(2, 1, size, size, dtype=torch.uint8),)
    batch = torch.export.Dim("batch", min=1, max=4096)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / paths.MODEL_FILE
        quiet = io.StringIO()
        try:
            with (
                warnings.catch_warnings(),
                contextlib.redirect_stdout(quiet),
                _quiet_loggers("torch.onnx", "onnxscript", "onnx_ir", "torch.export"),
            ):
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    wrapped,
                    example,
                    str(path),
                    input_names=[INPUT_NAME],
                    output_names=list(OUTPUTS),
                    dynamic_shapes=({0: batch},),
                    opset_version=opset,
                    dynamo=True,
                    external_data=False,
                    verbose=False,
                )
        except Exception as exc:
            raise PneumoError(
                f"ONNX export failed: {exc}".splitlines()[0],
                hint="check that onnx and onnxscript are installed (pip install 'pneumo[train]')",
            ) from exc
        return path.read_bytes()


def with_metadata(onnx: bytes, props: dict[str, str]) -> bytes:
    """``onnx`` with ``props`` as its ``metadata_props`` (replacing keys of the same name)."""
    import onnx as onnx_lib

    model = onnx_lib.load_from_string(onnx)
    kept = [p for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    return bytes(model.SerializeToString())


@contextlib.contextmanager
def _quiet_loggers(*names: str):  # type: ignore[no-untyped-def]
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@dataclass(frozen=True)
class Parity:
    torch_probabilities: np.ndarray
    onnx_probabilities: np.ndarray

    @property
    def max_abs_diff(self) -> float:
        return float(np.max(np.abs(self.torch_probabilities - self.onnx_probabilities)))


def parity(model: torch.nn.Module, onnx: bytes, pixels: np.ndarray, spec: PreprocessSpec) -> Parity:
    """Score the same uint8 images with PyTorch (fp32, CPU, normalised by ``spec`` in numpy, as
    training did) and ONNX Runtime (the file's own input: pixels, normalised in the graph)."""
    ort = onnxruntime()

    model = model.eval().cpu()
    session = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])
    feed = ModelInput.of(session, spec)
    ref, out = [], []
    # a bar for a person at a terminal (disable=None: off when stderr is not one)
    with tqdm(total=len(pixels), desc="parity check (PyTorch, ONNX Runtime)", unit="image",
              leave=False, disable=None) as bar, torch.inference_mode():  # fmt: skip
        for start in range(0, len(pixels), PARITY_CHUNK):
            part = pixels[start : start + PARITY_CHUNK]
            ref.append(torch.sigmoid(model(torch.from_numpy(spec.normalize(part)))).numpy()[:, 0])
            out.append(session.run([OUTPUT_NAME], feed(part))[0][:, 0])
            bar.update(len(part))
    torch_p, onnx_p = (
        np.concatenate(x).astype(np.float64) if x else np.zeros(0) for x in (ref, out)
    )
    return Parity(torch_p, onnx_p)
