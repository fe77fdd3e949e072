"""PyTorch → ONNX with a dynamic batch axis, and the parity check registration depends on.

The exported graph ends in a sigmoid, so it outputs probabilities: the service applies no
arithmetic of its own beyond the preprocessing spec, and parity is checked on the very numbers
the service returns. It also outputs ``embedding``, the pooled features the classifier reads
(the input of its final Linear, found through the backbone's spec): the out-of-distribution
score, and later the monitoring, use it. torch.onnx's dynamo exporter is used (the TorchScript
one is deprecated and cannot export VGG's adaptive pooling).
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pneumo import paths
from pneumo.errors import PneumoError
from pneumo.onnx_runtime import onnxruntime
from pneumo.packaging.signature import EMBEDDING_NAME, INPUT_NAME, OUTPUT_NAME
from pneumo.preprocess import PreprocessSpec


class _Outputs(torch.nn.Module):
    """(probability, embedding): the model with its final Linear (``head``) cut off gives the
    embedding, and that Linear on it the logit, exactly as the whole model (in eval mode)."""

    def __init__(self, model: torch.nn.Module, head: str) -> None:
        super().__init__()
        self.head = model.get_submodule(head)
        self.features = copy.deepcopy(model)
        self.features.set_submodule(head, torch.nn.Identity())

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = torch.flatten(self.features(image), 1)
        return torch.sigmoid(self.head(embedding)), embedding


def export_onnx(model: torch.nn.Module, size: int, opset: int, head: str) -> bytes:
    """The model (1-channel ``size`` square input) as ONNX bytes, batch axis dynamic; ``head``
    names its final Linear (:attr:`pneumo.models.architectures.BackboneSpec.head`)."""
    wrapped = _Outputs(model.eval().cpu(), head).eval()
    example = (torch.zeros(2, 1, size, size),)
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
                    output_names=[OUTPUT_NAME, EMBEDDING_NAME],
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
    """Score the same uint8 images with PyTorch (fp32, CPU) and ONNX Runtime."""
    ort = onnxruntime()

    inputs = spec.normalize(pixels)
    model = model.eval().cpu()
    with torch.inference_mode():
        ref = torch.sigmoid(model(torch.from_numpy(inputs))).numpy()[:, 0]
    session = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])
    out = session.run([OUTPUT_NAME], {INPUT_NAME: inputs})[0][:, 0]
    return Parity(ref.astype(np.float64), np.asarray(out, dtype=np.float64))
