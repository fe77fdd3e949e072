"""The model file's inputs, outputs and metadata, named once for every consumer.

``model.onnx`` takes ``image``: uint8 (N, 1, S, S), the decoded, resized grayscale pixels
(0-255) at the card's size, and normalises them itself (x/255, the per-image standardisation
when the card says so, then (x - mean) / std): a Triton, KServe or ONNX Runtime user feeds
pixels, not a preprocessing rebuilt from the card. Its outputs:

- ``probability``: float32 (N, 1), P(pneumonia);
- ``embedding``: float32 (N, D), the pooled features the classifier reads (the
  out-of-distribution score and the monitoring read it);
- ``activations``: the last convolutional features, after their activation, float32
  (N, C, h, w), and ``activation_weights``: Grad-CAM's weight of each channel for this image
  (the spatial mean of d logit / d activations), float32 (N, C); the class activation map is
  ReLU(sum_c weights_c * activations_c) (:mod:`pneumo.explain`). Models registered before
  the activation maps have neither (the service says so when asked for a map).

Its ``metadata_props`` carry the preprocessing, the operating threshold and the card format
(:func:`metadata`). Models registered before release 0.3 take ``image`` as float32, already
normalised, and carry no metadata; :class:`ModelInput` feeds either kind from the same pixels.
This module imports neither torch nor ONNX.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from pneumo.preprocess import PreprocessSpec

INPUT_NAME: Final = "image"
OUTPUT_NAME: Final = "probability"
EMBEDDING_NAME: Final = "embedding"
ACTIVATIONS_NAME: Final = "activations"
ACTIVATION_WEIGHTS_NAME: Final = "activation_weights"
# The outputs of model.onnx, in order, and what each holds (recorded in its metadata_props).
OUTPUTS: Final = {
    OUTPUT_NAME: "P(pneumonia), float32 (N, 1)",
    EMBEDDING_NAME: "the features the final Linear reads, float32 (N, D)",
    ACTIVATIONS_NAME: "last convolutional features after their activation, float32 (N, C, h, w)",
    ACTIVATION_WEIGHTS_NAME: "Grad-CAM weight of each channel, float32 (N, C); "
    "map = ReLU(sum_c weight_c * activations_c)",
}
PIXELS_TYPE: Final = "tensor(uint8)"  # ONNX Runtime's name of the input type since 0.3
# metadata_props keys
META_PREPROCESSING: Final = "pneumo.preprocessing"
META_THRESHOLD: Final = "pneumo.threshold"
META_CARD_FORMAT: Final = "pneumo.card_format"
META_NAME: Final = "pneumo.name"
META_RUN: Final = "pneumo.run_id"
META_OUTPUTS: Final = "pneumo.outputs"


def metadata(
    spec: PreprocessSpec, threshold: float, card_format: str, name: str, run_id: str
) -> dict[str, str]:
    """The ``metadata_props`` of a model file (ONNX keeps string values only)."""
    return {
        META_PREPROCESSING: json.dumps({**spec.to_dict(), "in_graph": True}, sort_keys=True),
        META_THRESHOLD: repr(float(threshold)),
        META_CARD_FORMAT: card_format,
        META_NAME: name,
        META_RUN: run_id,
        META_OUTPUTS: json.dumps(OUTPUTS, sort_keys=True),
    }


@dataclass(frozen=True)
class ModelInput:
    """What a model file's ``image`` input wants, made from uint8 pixels (N, S, S)."""

    spec: PreprocessSpec
    pixels: bool  # True: uint8 pixels, normalised in the graph; False: float32, normalised here

    @classmethod
    def of(cls, session: Any, spec: PreprocessSpec) -> ModelInput:
        """The input kind of an ONNX Runtime session's model."""
        first = session.get_inputs()[0]
        return cls(spec, first.type == PIXELS_TYPE)

    @property
    def dtype(self) -> str:
        return "uint8" if self.pixels else "float32"

    def __call__(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        """The session's feed for uint8 pixels (N, S, S) or (S, S)."""
        batch = pixels[None] if pixels.ndim == 2 else pixels
        if self.pixels:
            return {INPUT_NAME: np.ascontiguousarray(batch, dtype=np.uint8)[:, None]}
        return {INPUT_NAME: self.spec.normalize(batch)}
