"""Seeded synthetic chest radiographs in the NIH layout, behind `pneumo fetch synthetic`.

Images are drawn with numpy (vectorised masks over a per-image rotated/scaled grid) and blurred
with Pillow. Image right is the patient's left, as on a PA film: the heart bulges to the right.
Only Pneumonia is drawn (patchy opacities in a lung field); the other findings are labels only.
Everything follows from ``config.seed``: the same seed gives byte-identical files.
"""

from __future__ import annotations

import io
import sys
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFilter
from tqdm import tqdm

from pneumo import storage
from pneumo.config import SyntheticConfig
from pneumo.data.schema import NO_FINDING, TARGET
from pneumo.settings import Settings, get_settings

F32 = NDArray[np.floating[Any]]  # float32 at run time
LABEL_FILE = "Data_Entry_2017.csv"
HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
    "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)
FIELD_OF_VIEW_MM = 360.0  # film width the square image stands for (sets the pixel spacing)
# Per-image rates of the findings that are not drawn: (without Pneumonia, beside Pneumonia).
OTHER_FINDINGS: dict[str, tuple[float, float]] = {
    "Infiltration": (0.08, 0.40),
    "Effusion": (0.05, 0.20),
    "Atelectasis": (0.05, 0.18),
    "Consolidation": (0.015, 0.20),
    "Edema": (0.01, 0.06),
    "Nodule": (0.03, 0.02),
    "Mass": (0.025, 0.02),
    "Pneumothorax": (0.02, 0.01),
    "Pleural_Thickening": (0.015, 0.02),
    "Cardiomegaly": (0.015, 0.02),
    "Emphysema": (0.01, 0.01),
    "Fibrosis": (0.008, 0.01),
    "Hernia": (0.001, 0.0),
}


def _smooth_noise(rng: np.random.Generator, cells: int, size: int) -> F32:
    """Low-frequency noise in [-1, 1]: a small random grid upsampled bicubically."""
    small = rng.uniform(-1.0, 1.0, (cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(small, "F").resize((size, size), Image.Resampling.BICUBIC))


def _blur(a: F32, radius: float) -> F32:
    """Gaussian blur of an array in [0, 1] (through an 8-bit image: Pillow blurs only those)."""
    pil = Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8), "L")
    return np.asarray(pil.filter(ImageFilter.GaussianBlur(radius)), np.float32) / 255


def _band(dist: F32, half: float) -> F32:
    """1 inside a band of half-width ``half`` around a centreline, fading to 0 at its edge."""
    return np.clip(1.0 - np.abs(dist) / half, 0.0, 1.0) ** 0.5


def _opacities(rng: np.random.Generator, x: F32, y: F32, lung: F32, ya: float, size: int) -> F32:
    """Pneumonia: patchy blurred infiltrates, and sometimes a lobar consolidation, in the lungs."""
    u = rng.uniform
    texture = np.clip(0.75 + 0.6 * _smooth_noise(rng, int(u(10, 24)), size), 0.35, 1)
    sides = [-1.0 if u() < 0.6 else 1.0]  # the right lung (image left) more often
    if u() < 0.3:
        sides.append(-sides[0])
    opacity = np.zeros_like(x)
    for side in sides:
        inside = np.flatnonzero((lung > 0.5) & (x * side > 0) & (y > ya + 0.2))
        for _ in range(int(rng.integers(1, 5)) if inside.size else 0):
            at = inside[rng.integers(inside.size)]
            cx, cy = float(x.flat[at]), float(y.flat[at])
            rx, ry = u(0.08, 0.22), u(0.08, 0.22)
            opacity += u(0.5, 1.0) * np.exp(-(((x - cx) / rx) ** 2) - ((y - cy) / ry) ** 2)
        if u() < 0.35:  # lobar: everything below an oblique fissure on that side
            fissure = u(-0.1, 0.3) + u(-0.2, 0.2) * x
            opacity += u(0.6, 1.0) * np.clip((y - fissure) / 0.06, 0, 1) * (x * side > 0)
    amp = u(0.18, 0.34)
    out: F32 = amp * np.clip(opacity, 0, 1) * texture * lung
    return out


def _render(
    rng: np.random.Generator, size: int, pneumonia: bool, view: str
) -> tuple[NDArray[np.uint8], F32]:
    """The image and its lung-field mask in [0, 1] (at the drawing size, half ``size`` from 128)."""
    ap = view == "AP"
    u = rng.uniform
    angle, scale = np.deg2rad(u(-4, 4)), u(0.92, 1.04) * (0.96 if ap else 1.0)
    tx, ty = u(-0.05, 0.05), u(-0.04, 0.06)
    n = size // 2 if size >= 128 else size  # drawn at half size: the anatomy is smooth
    axis = np.linspace(-1.0, 1.0, n, dtype=np.float32)
    gx, gy = axis[None, :] - tx, axis[:, None] - ty
    c, s = np.float32(np.cos(angle) / scale), np.float32(np.sin(angle) / scale)
    x, y = gx * c + gy * s, gy * c - gx * s  # body coordinates; y grows downwards
    d = np.abs(x)
    left = x > 0  # image right: the patient's left
    # Body: torso below sloping shoulders, a neck on top, brighter (thicker) towards the midline.
    shoulder = np.where(d < 0.3, -1.2, -0.95 + 0.3 * ((d - 0.3) / 0.7) ** 2)
    torso = u(0.9, 0.98) - 0.06 * np.clip(y, 0, 1)
    body = _blur(np.clip((torso - d) / 0.03, 0, 1) * np.clip((y - shoulder) / 0.03, 0, 1), n / 90)
    val = 0.03 + body * (
        0.44 + 0.14 * np.clip(1 - (x / 0.9) ** 2, 0, 1) + 0.03 * _smooth_noise(rng, 3, n)
    )
    # Lungs: teardrops from the apex (y=ya) to domed hemidiaphragms; the right one sits higher.
    ya, base = u(-0.84, -0.76), u(0.52, 0.6) - (0.06 if ap else 0.0)
    t = np.sqrt(np.clip((y - ya) / u(0.55, 0.65), 0, 1))
    lateral = 0.31 + u(0.43, 0.5) * t
    medial = np.where(left, 0.31 - 0.19 * t, 0.31 - 0.21 * t)
    dome = base - np.where(left, 0.0, 0.05) - 0.14 * np.clip(1 - ((d - 0.42) / 0.42) ** 2, 0, 1)
    lung = ((d > medial) & (d < lateral) & (y > ya) & (y < dome)).astype(np.float32)
    # Heart: ellipse low and to the image right; larger on AP films. It hides the lung behind.
    hr = u(0.32, 0.37) * (1.12 if ap else 1.0)
    hx, hy = x - u(0.09, 0.14), y - base + 0.1 + 0.3 * hr
    heart = np.clip(1 - ((hx + 0.3 * hy) / hr) ** 2 - (hy / (0.7 * hr)) ** 2, 0, 1)
    lung = _blur(lung * (1 - np.clip(heart * 8, 0, 1)), n / 110)
    lung_mask = lung
    # Vessels: faint streaks fanning out of each hilum, thinning towards the periphery.
    r_h = np.hypot(d - 0.17, y + 0.04)
    fan = np.arctan2(y + 0.04, d - 0.17) * 9 + 30
    knots = rng.uniform(0, 1, 64)
    streaks = np.interp(fan + 5 * _smooth_noise(rng, 8, n), np.arange(64), knots).astype(np.float32)
    fade = np.clip((r_h - 0.04) / 0.2, 0, 1) * np.exp(-r_h / 0.3)
    vessels = 1.1 * np.clip(streaks - 0.55, 0, 1) * fade + 0.5 * np.exp(-(r_h**2) / 0.012)
    zone = 1.1 - 0.25 * np.clip((y - ya) / 1.2, 0, 1)  # lower zones lie under more soft tissue
    air = 0.34 * u(0.88, 1.08) * lung * (zone - 0.6 * vessels)
    mottle = _smooth_noise(rng, 14, n)
    val = val - air + 0.03 * mottle * lung
    # Gastric bubble under the left dome, trachea down the midline.
    val -= 0.1 * np.exp(-((x - 0.4) ** 2 + (y - base - 0.07) ** 2) / 0.003)
    val -= 0.07 * _band(x, 0.04) * (y < -0.22) * body
    # Spine with vertebral bodies, visible through the mediastinum.
    vert = 0.75 + 0.25 * np.cos(np.float32(2 * np.pi / 0.12) * y) ** 2
    val += 0.07 * _band(x, 0.08) * vert * body * np.clip(1.2 - 0.5 * y, 0, 1)
    # Ribs: posterior arcs rise from the spine then fall laterally; anterior ones slope down
    # medially. Each family is one periodic pattern of a curved coordinate.
    post = np.maximum(y - ya + 0.1 + 0.35 * d - 0.75 * d**2 + 0.02 * mottle, 0) / u(0.14, 0.16)
    post = post**0.92
    pf = post - np.floor(post)
    ribs = np.clip(1 - np.abs(pf - 0.3) / 0.2, 0, 1) ** 0.5 * (post > 0) * (post < 10)
    ant = (y - ya + 0.02 - 0.45 * (0.85 - d)) / 0.17
    af = ant - np.floor(ant)
    ribs_a = np.clip(1 - np.abs(af - 0.3) / 0.18, 0, 1) * (ant > 0) * (ant < 6)
    chest = np.clip((lateral + 0.06 - d) / 0.03, 0, 1) * (d > 0.08) * (y < dome + 0.03) * body
    val += chest * (0.06 * ribs + 0.03 * ribs_a) * (0.4 + 0.6 * lung)
    # Clavicles from the manubrium out to the shoulders.
    clav = y + 0.64 + 0.22 * (d - 0.1) - 0.08 * np.sin(np.clip((d - 0.1) / 0.55, 0, 1) * np.pi)
    val += 0.09 * _band(clav, 0.04) * (d > 0.08) * (d < 0.7) * body
    lesion_rng = np.random.default_rng(rng.integers(2**63))  # drawn either way: same anatomy
    if pneumonia:
        val += _opacities(lesion_rng, x, y, lung, ya, n)
    # Window (contrast, gamma), up to full size, quantum noise.
    lo, hi = u(0.0, 0.05), u(0.8, 0.92)
    img = np.clip((val - lo) / (hi - lo), 0, 1) ** u(0.85, 1.2) * 255
    pil = Image.fromarray(img.astype(np.uint8), "L").resize((size, size), Image.Resampling.BICUBIC)
    noise = rng.standard_normal((size, size), np.float32) * np.float32(u(2, 4))
    return np.clip(np.asarray(pil, np.float32) + noise, 0, 255).astype(np.uint8), lung_mask


def render_image(
    rng: np.random.Generator, size: int, pneumonia: bool, view: str
) -> NDArray[np.uint8]:
    """One synthetic chest radiograph: uint8, ``size`` x ``size``; ``view`` is "PA" or "AP"."""
    if view not in ("PA", "AP"):
        raise ValueError(f"view must be 'PA' or 'AP', not {view!r}")
    return _render(rng, size, pneumonia, view)[0]


class _Row(NamedTuple):
    patient: int
    follow_up: int
    age: int
    sex: str
    view: str
    labels: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"synthetic_{self.patient:08d}_{self.follow_up:03d}.png"

    def csv_line(self, size: int) -> str:
        spacing = f"{FIELD_OF_VIEW_MM / size:.3f}"
        labels = "|".join(self.labels) or NO_FINDING
        fields = (self.name, labels, self.follow_up, self.patient, self.age, self.sex, self.view)
        return ",".join(map(str, (*fields, size, size, spacing, spacing)))


def _rows(config: SyntheticConfig, rng: np.random.Generator) -> list[_Row]:
    """Patients and their images. Pneumonia is mostly a property of the patient: a sick patient's
    images are positive with probability ``within``, a well patient's with ``leak``."""
    p = config.prevalence
    within, leak = max(0.9, (1 + p) / 2), min(0.03, p / 2)
    sick_share = (p - leak) / (within - leak)
    counts = 0.55 ** np.arange(config.max_images_per_patient)  # most patients have one image
    rows: list[_Row] = []
    for patient in range(1, config.patients + 1):
        n_images = int(rng.choice(len(counts), p=counts / counts.sum())) + 1
        child = rng.random() < 0.07
        age = rng.integers(1, 18) if child else np.clip(rng.normal(50, 17), 18, 95)
        sex = "M" if rng.random() < 0.55 else "F"
        rate = within if rng.random() < sick_share else leak
        for follow_up in range(n_images):
            pneumonia = rng.random() < rate
            labels = [TARGET] if pneumonia else []
            hits = rng.random(len(OTHER_FINDINGS)) < [r[pneumonia] for r in OTHER_FINDINGS.values()]
            labels += [k for k, hit in zip(OTHER_FINDINGS, hits, strict=True) if hit]
            view = "AP" if rng.random() < 0.4 else "PA"
            older = int(min(age + follow_up // 2, 95))
            rows.append(_Row(patient, follow_up, older, sex, view, tuple(sorted(labels))))
    return rows


def generate(
    dest: str,
    config: SyntheticConfig,
    *,
    settings: Settings | None = None,
    progress: bool = True,
) -> int:
    """Write a synthetic NIH-layout dataset at ``dest``; returns the number of images written."""
    settings = settings or get_settings()
    seed = config.seed % 2**64
    rows = _rows(config, np.random.default_rng([seed, 0]))
    images = storage.join(dest, "images")
    storage.remove(storage.join(dest, LABEL_FILE), settings)  # written last, once complete
    storage.makedirs(images, settings)
    storage.remove_stale_temporaries(images, settings)
    wanted = {row.name for row in rows}
    for old in storage.listdir(images, settings):  # left by an earlier, larger run
        if old.startswith("synthetic_") and old not in wanted:
            storage.remove(storage.join(images, old), settings)
    size = config.image_size
    for row in tqdm(rows, desc="synthetic", unit="img", disable=not progress, file=sys.stderr):
        rng = np.random.default_rng([seed, 1, row.patient, row.follow_up])
        pixels = render_image(rng, size, TARGET in row.labels, row.view)
        buf = io.BytesIO()
        Image.fromarray(pixels, "L").save(buf, format="PNG", compress_level=1)
        storage.write_bytes(storage.join(images, row.name), buf.getvalue(), settings)
    positives = sum(TARGET in row.labels for row in rows)
    readme = (
        "SYNTHETIC DATA - NOT REAL PATIENTS, NOT FOR CLINICAL OR DIAGNOSTIC USE.\n\n"
        "Chest-radiograph-like images drawn by pneumo (pneumo.data.sources.synthetic) for\n"
        "tests, demos and pipeline checks. Only Pneumonia is drawn (opacities in a lung field);\n"
        "the other findings are labels without image content. The layout and label file follow\n"
        "NIH ChestX-ray14 (Data_Entry_2017.csv, v2020 columns; images/).\n\n"
        f"seed: {config.seed}\npatients: {config.patients}\n"
        f"max_images_per_patient: {config.max_images_per_patient}\n"
        f"image_size: {size}\nprevalence: {config.prevalence}\n"
        f"images: {len(rows)}\nwith Pneumonia: {positives}\n"
    )
    storage.write_text(storage.join(dest, "README.txt"), readme, settings)
    lines = [HEADER, *(row.csv_line(size) for row in rows)]  # last: marks the dataset complete
    storage.write_text(storage.join(dest, LABEL_FILE), "\n".join(lines) + "\n", settings)
    return len(rows)
