"""Names shared by the manifest, the data card, the cache and the EDA report."""

from __future__ import annotations

# The 14 NIH ChestX-ray14 findings, spelled as in NIH's label file.
FINDINGS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Effusion",
    "Emphysema",
    "Fibrosis",
    "Hernia",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pleural_Thickening",
    "Pneumonia",
    "Pneumothorax",
)
NO_FINDING = "No Finding"
TARGET = "Pneumonia"
SPLITS: tuple[str, ...] = ("train", "val", "test")

# Manifest columns (one row per usable image; quarantined images are listed in problems.csv).
IMAGE_ID = "image_id"  # NIH: "00000001_000.png"; Kermany: path below the dataset root
PATH = "path"  # URL of the source image; null in metadata-only mode
PATIENT_ID = "patient_id"  # string; null where the source has none (Kermany)
FOLLOW_UP = "follow_up"
AGE = "age"  # years
SEX = "sex"  # "M" / "F"
VIEW = "view"  # "PA" / "AP"
ORIG_WIDTH = "orig_width"
ORIG_HEIGHT = "orig_height"
LABEL = "label"  # binary target: 1 = Pneumonia
SPLIT = "split"
SHARD = "shard"  # cache shard file name, e.g. "train-00000.npy"
SHARD_INDEX = "shard_index"  # row of the image inside its shard
CONTENT_HASH = "content_hash"  # SHA-1 of the source file bytes (duplicate detection)
PERCEPTUAL_HASH = "perceptual_hash"  # of the cached pixels: re-encoded or resized twins
SRC_MODE = "src_mode"  # Pillow mode of the source image ("L", "I;16", "RGB", ...)
MEAN_INTENSITY = "mean_intensity"  # of the cached 8-bit image, 0-255
STD_INTENSITY = "std_intensity"

AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("0-17", 0, 17),
    ("18-39", 18, 39),
    ("40-59", 40, 59),
    ("60-79", 60, 79),
    ("80+", 80, 200),
)


def age_band(age: float | None) -> str:
    """The band an age falls in; "unknown" for a missing age."""
    if age is None or age != age:  # NaN check without numpy
        return "unknown"
    for name, lo, hi in AGE_BANDS:
        if lo <= age <= hi:
            return name
    return "unknown"
