"""The model file's inputs and outputs, named once for every consumer.

``model.onnx`` takes ``image`` (float32 (N, 1, S, S), normalised by the card's preprocessing)
and gives ``probability`` (float32 (N, 1), P(pneumonia)). The outputs the next capabilities
need are planned here with their names, so that monitoring, out-of-distribution scores and
class activation maps all read the same file: ``embedding`` (the pooled features before the
classifier) and ``activations`` (the last convolutional features, after their activation).
"""

from __future__ import annotations

INPUT_NAME = "image"
OUTPUT_NAME = "probability"
# Planned named outputs (not exported yet): pooled features, and the last conv features.
EMBEDDING_NAME = "embedding"
ACTIVATIONS_NAME = "activations"
