"""The registry side of the experiment config: `register`, `promote` and `optimize`.

Kept apart from :mod:`pneumo.config` (which re-exports them) to keep each module small.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegisterConfig(_Frozen):
    """`pneumo register`: the ONNX export and the parity check it must pass."""

    name: str = Field("pneumonia", description="Registered model name in MLflow.")
    parity_images: int = Field(32, ge=1, description="Validation images compared ONNX vs torch.")
    parity_tolerance: float = Field(1e-4, gt=0.0, description="Max |p_onnx - p_torch|.")
    opset: int = Field(18, ge=17, description="ONNX opset version.")


class PromoteConfig(_Frozen):
    """`pneumo promote`: the gate a challenger passes to become champion."""

    max_auroc_drop: float = Field(
        0.01, ge=0.0, le=1.0, description="Test AUROC may fall this far below the champion's."
    )


class OptimizeConfig(_Frozen):
    """`pneumo optimize`: the int8 variant of a registered version and the gate it passes."""

    calibration: Literal["minmax", "percentile", "entropy"] = Field(
        "minmax", description="How activation ranges are calibrated (ONNX Runtime's methods)."
    )
    calibration_images: int = Field(128, ge=1, description="Training images to calibrate on.")
    max_auroc_drop: float = Field(
        0.005, ge=0.0, le=1.0, description="Test AUROC may fall this far below float32's."
    )
    min_agreement: float = Field(
        0.99, ge=0.0, le=1.0, description="Share of test decisions that must equal float32's."
    )
    n_boot: int = Field(1000, ge=0, description="Resamples for the int8 card's intervals.")
    seed: int = 0
