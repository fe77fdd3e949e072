"""Response bodies (they also document the API at /docs)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ModelRef(BaseModel):
    name: str
    version: str


class Prediction(BaseModel):
    probability: float = Field(description="P(pneumonia), from the model's sigmoid output.")
    label: str = Field(description="'pneumonia' or 'no pneumonia', at the threshold.")
    positive: bool
    threshold: float = Field(description="Operating threshold, chosen on validation.")
    model: ModelRef
    latency_ms: float = Field(description="Time in the service, from request to answer.")
    ood_score: float | None = Field(
        None,
        description="Out-of-distribution score: cosine distance of the image's embedding to "
        "the model's training images (null for models without a reference).",
    )
    ood_threshold: float | None = Field(
        None, description="Above it the image is refused (422 out_of_distribution)."
    )


class Explanation(BaseModel):
    method: str = Field(
        "grad-cam",
        description="Grad-CAM of the pneumonia logit at the last convolutional features, exact "
        "for this model's head (CAM for a pooled linear head).",
    )
    grid: list[list[float]] = Field(
        description="The map on the features' grid (rows top to bottom), scaled to [0, 1]; all "
        "zeros when no region raises the score."
    )
    peak: float = Field(
        description="The map's largest value before scaling (0: nothing raises the score)."
    )
    peak_at: list[float] = Field(
        description="[row, column] of the map's maximum, as fractions of the image's height "
        "and width (0-1, from the top left)."
    )
    overlay_png: str | None = Field(
        description="The map over the image the model saw (resized to its input, padded to a "
        "square), as a base64 PNG in this body (no second request); null with overlay=false."
    )
    overlay_size: int = Field(description="Side of the overlay in pixels (drawn or not).")


class Explained(Prediction):
    explanation: Explanation


class BatchItem(BaseModel):
    index: int
    probability: float
    label: str
    positive: bool
    ood_score: float | None = None


class BatchPrediction(BaseModel):
    predictions: list[BatchItem]
    threshold: float
    model: ModelRef
    latency_ms: float
    ood_threshold: float | None = None


class Monitoring(BaseModel):
    drift_detection: bool = Field(
        description="The model carries a drift reference (its validation images, summarised)."
    )
    detail: str


class ModelInfo(BaseModel):
    name: str
    version: str
    card: dict[str, Any]
    monitoring: Monitoring


class ErrorBody(BaseModel):
    error: str
    detail: str


class Health(BaseModel):
    status: str
    model: ModelRef | None = None
