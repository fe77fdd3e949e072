"""An int8 model file from a float32 one: ONNX Runtime's static quantisation, torch-free.

QDQ format (QuantizeLinear/DequantizeLinear pairs around each quantised operator, which ONNX
Runtime fuses into integer kernels and any other runtime can still read), weights int8 per
output channel, activations uint8 per tensor, their ranges calibrated on real images
(:func:`quantize_int8`'s ``calibration``: uint8 pixels as the model takes them). The graph keeps
its input, its four named outputs and its ``metadata_props``; the normalisation at its start
and the sigmoid at its end stay in float.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pneumo.errors import PneumoError
from pneumo.packaging.signature import INPUT_NAME

METHODS = ("minmax", "percentile", "entropy")


class _Images:
    """ONNX Runtime's calibration reader over uint8 pixels (N, S, S), a few at a time."""

    def __init__(self, pixels: np.ndarray, batch: int = 8) -> None:
        self._batches: Iterator[dict[str, np.ndarray]] = iter(
            {INPUT_NAME: pixels[i : i + batch, None]} for i in range(0, len(pixels), batch)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize_int8(onnx: bytes, calibration: np.ndarray, method: str = "minmax") -> bytes:
    """``onnx`` (a pneumo model file) quantised to int8, its activation ranges calibrated on
    ``calibration`` (uint8 (N, S, S)) by ``method`` (minmax, percentile or entropy)."""
    try:
        import onnx as onnx_lib
        from onnxruntime import quantization as q
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise PneumoError(
            f"int8 quantisation needs the onnx package ({exc.name} is missing)",
            hint="pip install 'pneumo[train]'",
        ) from None

    if method not in METHODS:
        raise PneumoError(f"calibration method {method!r}: one of {', '.join(METHODS)}")
    if calibration.ndim != 3 or not len(calibration):
        raise PneumoError(f"calibration images must be uint8 (N, S, S), not {calibration.shape}")
    methods: dict[str, Any] = {
        "minmax": q.CalibrationMethod.MinMax,
        "percentile": q.CalibrationMethod.Percentile,
        "entropy": q.CalibrationMethod.Entropy,
    }
    reader: Any = _Images(np.ascontiguousarray(calibration, dtype=np.uint8))
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        source, prepared, target = (Path(tmp) / n for n in ("f32.onnx", "pre.onnx", "int8.onnx"))
        source.write_bytes(onnx)
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        q.quantize_static(
            str(prepared), str(target), reader, quant_format=q.QuantFormat.QDQ,
            per_channel=True, weight_type=q.QuantType.QInt8,
            activation_type=q.QuantType.QUInt8, calibrate_method=methods[method],
        )  # fmt: skip
        quantised = onnx_lib.load(str(target))
    original = onnx_lib.load_from_string(onnx)
    del quantised.metadata_props[:]
    quantised.metadata_props.extend(original.metadata_props)
    return bytes(quantised.SerializeToString())


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ONNX Runtime's quantiser logs every tensor it leaves alone at INFO and prints a tip."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)
