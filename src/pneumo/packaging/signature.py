"""The model file's inputs and outputs, named once for every consumer.

``model.onnx`` takes ``image`` (float32 (N, 1, S, S), normalised by the card's preprocessing)
and gives ``probability`` (float32 (N, 1), P(pneumonia)) and ``embedding`` (float32 (N, D),
the pooled features the classifier reads: out-of-distribution scores, monitoring). Models
registered before the embedding existed have ``probability`` only. The output class activation
maps will need is planned here with its name, so that every consumer reads the same file:
``activations`` (the last convolutional features, after their activation).
"""

from __future__ import annotations

INPUT_NAME = "image"
OUTPUT_NAME = "probability"
EMBEDDING_NAME = "embedding"
# Planned (not exported yet): the last conv features.
ACTIVATIONS_NAME = "activations"
