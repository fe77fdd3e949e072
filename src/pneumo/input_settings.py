"""What the service accepts as a chest radiograph: the input policy's settings.

Each rule has a default that says what a chest radiograph is; each can be changed through the
environment (``PNEUMO_INPUT_*``). They judge what the file says of itself (format, DICOM
modality, SOP class, frames, photometric interpretation, size) and, after decoding, its colour;
the out-of-distribution score then asks the model whether the image looks like those it was
validated on. See :mod:`pneumo.serving.policy`.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"  # Computed Radiography Image Storage
DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage, For Presentation
DX_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"  # Digital X-Ray Image Storage, For Processing


def _items(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


class InputSettings(BaseSettings):
    """The input policy (environment ``PNEUMO_INPUT_<FIELD>``)."""

    model_config = SettingsConfigDict(env_prefix="PNEUMO_INPUT_", extra="ignore", frozen=True)

    formats: str = Field(
        "PNG,JPEG,DICOM",
        description="Accepted file formats (Pillow's names, and DICOM); others get 415. No "
        "other format's parser ever runs on an upload.",
    )
    modalities: str = Field(
        "CR,DX", description="Accepted DICOM Modality values: projection radiography."
    )
    sop_classes: str = Field(
        f"{CR_IMAGE},{DX_PRESENTATION},{DX_PROCESSING}",
        description="Accepted DICOM SOP classes: CR and DX image storage (no CT, MR, "
        "ultrasound, secondary capture, mammography, intra-oral).",
    )
    max_frames: int = Field(1, ge=1, description="Most frames in a file (a radiograph has one).")
    min_side_px: int | None = Field(
        None,
        ge=1,
        description="Smallest accepted shorter side, in pixels; default: half the model's "
        "input size (below it the image would be magnified more than twice).",
    )
    max_colour_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Largest share of coloured pixels (channels more than 24 of 255 apart): "
        "an RGB radiograph is gray in colour; a photograph, an icon or a screenshot is not.",
    )
    ood: bool = Field(
        True,
        description="Refuse images whose out-of-distribution score is above the model's "
        "threshold (chosen on its validation images) instead of scoring them.",
    )
    ood_threshold: float | None = Field(
        None, description="Use this out-of-distribution threshold instead of the model's."
    )

    @property
    def format_list(self) -> tuple[str, ...]:
        return tuple(f.upper() for f in _items(self.formats))

    @property
    def modality_list(self) -> tuple[str, ...]:
        return tuple(m.upper() for m in _items(self.modalities))

    @property
    def sop_class_list(self) -> tuple[str, ...]:
        return _items(self.sop_classes)
