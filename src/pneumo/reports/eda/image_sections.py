"""Sections 6 and 7 of the EDA report: image sizes, pixel intensities, sample images."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pneumo.data import schema
from pneumo.render.document import Block, Picture, Section, Table, note, para, subheading, table
from pneumo.reports.eda import image_figures, stats
from pneumo.reports.eda.label_sections import METADATA_ONLY_WHY, Context


def _size_table(width: stats.FloatArray, height: stats.FloatArray) -> Table:
    rows = []
    for name, values in (("width", width), ("height", height)):
        d = stats.describe(values)
        if d is not None:
            rows.append([name, int(d["n"]), int(d["min"]), int(d["median"]), int(d["max"])])
    return table(["pixels", "images", "min", "median", "max"], rows)


def _sizes(width: stats.FloatArray, height: stats.FloatArray) -> list[Block]:
    w, h = stats.describe(width), stats.describe(height)
    if w is not None and h is not None and w["min"] == w["max"] and h["min"] == h["max"]:
        one = f"{w['min']:.0f} x {h['min']:.0f}"
        return [para(f"All {int(w['n']):,} images with a recorded size are {one} px.")]
    caption = (
        "Original width and height of the images (left) and their aspect ratio (right), "
        "before any resizing for the cache or the model."
    )
    uri = image_figures.size_histograms(width, height)
    return [_size_table(width, height), Picture(uri, "image size histograms", caption)]


def images(ctx: Context) -> Section:
    heading = "6. Image size and intensity"
    body: list[Block] = [subheading("Original image size")]
    width = stats.floats(ctx.manifest, schema.ORIG_WIDTH)
    height = stats.floats(ctx.manifest, schema.ORIG_HEIGHT)
    if width is None or height is None:
        body.append(note("Original image sizes are not recorded for this dataset."))
    else:
        body += _sizes(width, height)
    body.append(subheading("Pixel intensity"))
    mean = stats.floats(ctx.manifest, schema.MEAN_INTENSITY)
    std = stats.floats(ctx.manifest, schema.STD_INTENSITY)
    if not ctx.has_images or mean is None or std is None:
        body.append(note("Intensity statistics are not available. " + METADATA_ONLY_WHY))
        return Section("images", heading, body)
    caption = (
        "Distribution of each image's mean (left) and standard deviation (right) of pixel "
        "intensity in the 8-bit cache, per class, normalised to each class's size. A shift "
        "between the classes can be a shortcut (a scanner or a site) rather than disease."
    )
    by_mean, by_std = stats.by_class(mean, ctx.label), stats.by_class(std, ctx.label)
    if not any(v.size for v in by_mean.values()):
        body.append(note("No image has both intensity statistics and a known label."))
        return Section("images", heading, body)
    uri = image_figures.intensity_histograms(by_mean, by_std)
    body.append(Picture(uri, "intensity", caption))
    modes = stats.value_counts(ctx.manifest, schema.SRC_MODE)
    if modes:
        body.append(subheading("Source pixel modes (Pillow)"))
        body.append(table(["mode", "images"], [[k, v] for k, v in modes.items()]))
    return Section("images", heading, body)


Samples = Mapping[str, Sequence[tuple[str, npt.NDArray[Any]]]]


def samples(ctx: Context, chosen: Samples | None) -> Section:
    heading = "7. Sample images"
    if not chosen or not any(chosen.values()):
        why = METADATA_ONLY_WHY if not ctx.has_images else "No sample images were supplied."
        return Section("samples", heading, [note("Sample images are not available. " + why)])
    body: list[Block] = [
        para(
            "A few cached images of each class, each beside the histogram of its standardized "
            "pixel intensities (pixel minus the image's mean, divided by its standard deviation)."
        )
    ]
    order = [c for c in stats.CLASSES if c in chosen] + [
        c for c in chosen if c not in stats.CLASSES
    ]
    for cls in order:
        body.append(subheading(cls))
        for image_id, image in chosen[cls]:
            pixels = np.asarray(image)
            if pixels.ndim not in (2, 3) or pixels.size == 0:
                body.append(note(f"{image_id}: not a 2-D image (shape {pixels.shape})."))
                continue
            caption = (
                f"{image_id} ({cls}): {pixels.shape[1]}x{pixels.shape[0]} px in the cache, mean "
                f"intensity {float(pixels.mean()):.1f}, std {float(pixels.std()):.1f}."
            )
            uri = image_figures.sample_with_histogram(pixels, cls)
            body.append(Picture(uri, f"{cls} sample {image_id}", caption))
    return Section("samples", heading, body)
