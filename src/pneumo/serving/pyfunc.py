"""The registered model as an MLflow ``python_function``: what ``mlflow.pyfunc.load_model`` and
``mlflow models serve`` run (the ``loader_module`` of each version's MLmodel file).

Input: a DataFrame with a column ``image`` (the signature's binary column; over
``/invocations`` its values travel base64-encoded, as MLflow's JSON format says), each value
either an encoded file (PNG, JPEG or DICOM bytes) or a uint8 array of the model's size
((S, S) or (1, S, S), decoded pixels). A bare list of such values, or a uint8 array
(N, S, S) / (N, 1, S, S), is taken too when called in Python. Files are judged by the
service's input policy (``PNEUMO_INPUT_*``: formats, DICOM modality and SOP class, frames,
colour) and decoded exactly as ``pneumo serve`` decodes them; the package is verified on load
as the service verifies it (checksum, verification images).

Output: a DataFrame, one row per image: ``probability``, ``label`` and ``positive`` at the
card's threshold, ``threshold``, and ``ood_score`` / ``ood_threshold`` (NaN without a
reference). Nothing is refused for its out-of-distribution score here (``pneumo serve``
refuses it): the caller sees the score. A row that cannot be scored stops the call with an
MLflow error naming ``image[i]`` (HTTP 400 from ``mlflow models serve``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from pneumo.input_settings import InputSettings
from pneumo.serving.inputs import ApiError, inspect_upload, prepare_upload
from pneumo.serving.model import LoadedModel, load_model
from pneumo.serving.policy import InputPolicy

COLUMN = "image"
OUTPUTS = ("probability", "label", "positive", "threshold", "ood_score", "ood_threshold")


def _load_pyfunc(path: str) -> PneumoPyfunc:
    """MLflow's entry point: ``path`` is the version's folder (the MLmodel's ``data``)."""
    folder = Path(path).resolve()
    model = load_model(folder, "pneumonia", folder.name)
    return PneumoPyfunc(replace(model, name=model.card.name or model.name), InputSettings())


class PneumoPyfunc:
    def __init__(self, model: LoadedModel, inputs: InputSettings) -> None:
        self.model = model
        self.policy = InputPolicy.from_settings(inputs)

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        import pandas as pd

        values = _values(model_input)
        if not values:
            return pd.DataFrame(columns=list(OUTPUTS))
        pixels = np.stack([self._pixels(v, f"{COLUMN}[{i}]") for i, v in enumerate(values)])
        scores = self.model.score(pixels)
        reference = self.model.reference
        limit = reference.threshold if reference is not None else float("nan")
        rows = []
        for score in scores:
            label, positive = self.model.decide(score.probability)
            ood = float("nan") if score.ood is None else score.ood
            rows.append((score.probability, label, positive, self.model.threshold, ood, limit))
        return pd.DataFrame(rows, columns=list(OUTPUTS))

    def _pixels(self, value: Any, label: str) -> np.ndarray:
        size = self.model.spec.image.size
        if isinstance(value, np.ndarray):
            array = value[0] if value.ndim == 3 and value.shape[0] == 1 else value
            if array.dtype != np.uint8 or array.shape != (size, size):
                _refuse(f"{label}: a uint8 array of shape ({size}, {size}) is expected, got "
                        f"{array.dtype} {array.shape}; or send the encoded file")  # fmt: skip
            return np.asarray(array)
        if isinstance(value, bytearray | memoryview):
            value = bytes(value)
        if not isinstance(value, bytes):
            _refuse(f"{label}: expected encoded image bytes or a uint8 array, got "
                    f"{type(value).__name__}")  # fmt: skip
        spec = self.model.spec
        try:
            inspect_upload(value, self.policy, spec, 2**62, spec.image.max_pixels, label)
            pixels: np.ndarray = prepare_upload(value, spec, label, self.policy)[0]
            return pixels
        except ApiError as exc:
            _refuse(exc.detail)
            raise  # unreachable: _refuse raises


def _values(model_input: Any) -> list[Any]:
    import pandas as pd

    if isinstance(model_input, pd.DataFrame):
        if COLUMN not in model_input.columns:
            _refuse(f"the input has no '{COLUMN}' column (it has: {list(model_input.columns)})")
        return list(model_input[COLUMN])
    if isinstance(model_input, np.ndarray) and model_input.dtype == np.uint8:
        return list(model_input[:, 0] if model_input.ndim == 4 else model_input)
    if isinstance(model_input, bytes | np.ndarray):
        return [model_input]
    if isinstance(model_input, list | tuple):
        return list(model_input)
    _refuse(f"unsupported input type {type(model_input).__name__}: send a DataFrame with an "
            f"'{COLUMN}' column of image bytes")  # fmt: skip
    return []


def _refuse(message: str) -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    raise MlflowException(message, error_code=INVALID_PARAMETER_VALUE)
