"""The input policy: what this service scores as a chest radiograph, and what it refuses.

Judged in three steps, each before the next costs anything:

1. the header (:func:`pneumo.data.decode.header.read_header`, no pixel decoded): the format
   (415 naming the accepted ones), for DICOM the modality, the SOP class, the frame count and
   the photometric interpretation, and for every file the frame count and the shorter side;
2. the decoded image: its share of coloured pixels (an RGB radiograph is gray in colour);
3. the model: the out-of-distribution score of the image's embedding
   (:mod:`pneumo.packaging.reference`), above the model's threshold → "not a chest radiograph
   this model can score" instead of a probability.

Every refusal is a 415 or 422 :class:`~pneumo.serving.api_errors.ApiError` whose detail names
the file and what is wrong with it (the modality, the SOP class, the frame count...), never a
value from the DICOM header that could identify a patient.
"""

from __future__ import annotations

from dataclasses import dataclass

from pneumo.data.decode.header import DICOM, Header
from pneumo.data.decode.image import Decoded
from pneumo.input_settings import InputSettings
from pneumo.packaging.reference import Reference
from pneumo.serving.api_errors import ApiError

MONOCHROME = ("MONOCHROME1", "MONOCHROME2")


@dataclass(frozen=True)
class InputPolicy:
    formats: tuple[str, ...]
    modalities: tuple[str, ...]
    sop_classes: tuple[str, ...]
    max_frames: int
    min_side_px: int | None
    max_colour_share: float
    ood: bool
    ood_threshold: float | None

    @classmethod
    def from_settings(cls, inputs: InputSettings) -> InputPolicy:
        return cls(
            inputs.format_list, inputs.modality_list, inputs.sop_class_list, inputs.max_frames,
            inputs.min_side_px, inputs.max_colour_share, inputs.ood, inputs.ood_threshold,
        )  # fmt: skip

    def min_side(self, model_size: int) -> int:
        return self.min_side_px or max(1, model_size // 2)

    def check_header(self, header: Header, label: str, model_size: int) -> None:
        """Refuse what the header alone shows is no radiograph this service scores."""
        if header.format == DICOM:
            self._check_dicom(header, label)
        if header.frames > self.max_frames:
            raise ApiError(
                422, "multi_frame",
                f"{label}: {header.frames} frames; a radiograph has {self.max_frames} "
                "(send one image a file)",
            )  # fmt: skip
        side, least = min(header.width, header.height), self.min_side(model_size)
        if side < least:
            raise ApiError(
                422, "image_too_small",
                f"{label}: {header.width}x{header.height} pixels; the shorter side must be at "
                f"least {least} px for this model",
            )  # fmt: skip

    def _check_dicom(self, header: Header, label: str) -> None:
        if header.modality not in self.modalities:
            found = f"modality {header.modality}" if header.modality else "no Modality"
            raise ApiError(
                422, "unsupported_modality",
                f"{label}: DICOM {found}; this service scores {', '.join(self.modalities)} "
                "radiographs",
            )  # fmt: skip
        if header.sop_class not in self.sop_classes:
            name = f" ({header.sop_class_name})" if header.sop_class_name else ""
            found = f"SOP class {header.sop_class}{name}" if header.sop_class else "no SOP class"
            raise ApiError(
                422, "unsupported_sop_class",
                f"{label}: DICOM {found}; accepted: CR and DX image storage",
            )  # fmt: skip
        if header.mode not in MONOCHROME:
            raise ApiError(
                422, "not_monochrome",
                f"{label}: DICOM photometric interpretation {header.mode or 'missing'}; a "
                "radiograph is MONOCHROME1 or MONOCHROME2",
            )  # fmt: skip

    def ood_limit(self, reference: Reference | None) -> float | None:
        """The out-of-distribution score above which an image is refused; None: never."""
        if not self.ood or reference is None:
            return None
        return reference.threshold if self.ood_threshold is None else self.ood_threshold

    def check_ood(self, score: float | None, limit: float | None, label: str) -> None:
        if score is not None and limit is not None and score > limit:
            raise ApiError(
                422, "out_of_distribution",
                f"{label}: not a chest radiograph this model can score (out-of-distribution "
                f"score {score:.3f}, above the model's limit {limit:.3f})",
            )  # fmt: skip

    def check_decoded(self, decoded: Decoded, label: str) -> None:
        if decoded.colour > self.max_colour_share:
            raise ApiError(
                422, "colour_image",
                f"{label}: a colour image ({decoded.colour:.0%} of its pixels coloured, more "
                f"than {self.max_colour_share:.0%}); a radiograph is gray",
            )  # fmt: skip
