"""What a dataset holds before any image is decoded: its label table and its image files.

NIH: the label CSV joined to the image files found under ``images/``, ``images_0NN/images/`` or
flat beside it; images listed but not found are problems, files not listed are counted.
Kermany: one row per ``{split}/{NORMAL,PNEUMONIA}/*`` file; the folder gives label and split.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pandas as pd

from pneumo import storage
from pneumo.data import schema
from pneumo.data.labels import read_id_list, read_nih_labels
from pneumo.data.problems import Problem
from pneumo.data.sources.layout import IMAGE_SUFFIXES, KERMANY_CLASSES, Layout, kermany_patient
from pneumo.settings import Settings

NIH_LISTS = {"train_val": "train_val_list.txt", "test": "test_list.txt"}


@dataclass
class Inventory:
    frame: pd.DataFrame  # label table; with PATH and "stamp" columns when images are used
    has_images: bool
    patient_grouped: bool
    official: pd.Series | None  # "train_val" / "test" per row from the source, if it has them
    fingerprint: str  # changes when any input (label file, list, image file) changes
    listed: int  # images the source lists: usable label rows (NIH) or image files (Kermany)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _is_image(rel: str) -> bool:
    return rel.lower().endswith(IMAGE_SUFFIXES) and not storage.name_of(rel).startswith(".")


def _digest(parts: dict[str, str]) -> str:
    h = hashlib.sha256()
    for key, value in parts.items():
        h.update(f"{key}\0{value}\n".encode())
    return h.hexdigest()


def _nih(layout: Layout, metadata_only: bool | None, settings: Settings | None) -> Inventory:
    assert layout.label_file is not None
    table = read_nih_labels(layout.label_file, settings)
    frame, problems, notes = table.frame, table.problems, table.notes
    label_stamp = ":".join(map(str, storage.size_and_mtime(layout.label_file, settings)))
    inputs = {"labels": label_stamp}
    skip_listing = layout.labels_only or metadata_only is True
    files = {} if skip_listing else storage.find_with_stamps(layout.root, settings)
    images = {rel: s for rel, s in files.items() if _is_image(rel)}
    has_images = bool(images) and metadata_only is not True

    official = None
    lists = {k: storage.join(layout.root, v) for k, v in NIH_LISTS.items()}
    if not layout.labels_only and all(storage.exists(u, settings) for u in lists.values()):
        members = {k: read_id_list(url, settings) for k, url in lists.items()}
        official = frame[schema.IMAGE_ID].map(
            lambda i: (
                "test"
                if i in members["test"]
                else "train_val"
                if i in members["train_val"]
                else None
            )
        )
        for key, url in lists.items():
            inputs[key] = ":".join(map(str, storage.size_and_mtime(url, settings)))

    listed = len(frame)
    if has_images:
        by_name: dict[str, str] = {}
        for rel in images:
            name = storage.name_of(rel)
            if name in by_name:
                problems.append(
                    Problem(
                        storage.join(layout.root, rel),
                        "duplicate file",
                        f"same name as {by_name[name]}; kept the first",
                    )
                )
                continue
            by_name[name] = rel
        found = frame[schema.IMAGE_ID].map(by_name)
        missing = found.isna()
        problems.extend(
            Problem(
                storage.join(layout.root, "images", i),
                "missing file",
                "listed in the label file but not found",
            )
            for i in frame.loc[missing, schema.IMAGE_ID]
        )
        unlisted = len(set(by_name) - set(frame[schema.IMAGE_ID]))
        if unlisted:
            notes.append(f"{unlisted} image file(s) not in the label file were ignored")
        frame = frame[~missing].copy()
        if official is not None:
            official = official[~missing]
        rels = [str(r) for r in found[~missing]]
        frame[schema.PATH] = [storage.join(layout.root, r) for r in rels]
        frame["stamp"] = [images[r] for r in rels]
        inputs.update({r: images[r] for r in sorted(rels)})
    return Inventory(
        frame.reset_index(drop=True),
        has_images,
        True,
        None if official is None else official.reset_index(drop=True),
        _digest(inputs),
        listed,
        problems,
        notes,
    )


def _kermany(layout: Layout, metadata_only: bool | None, settings: Settings | None) -> Inventory:
    files = storage.find_with_stamps(layout.root, settings)
    rows = []
    for rel, stamp in files.items():
        parts = rel.split("/")
        if len(parts) != 3 or parts[1] not in KERMANY_CLASSES or not _is_image(rel):
            continue
        rows.append((rel, parts[0], int(parts[1] == "PNEUMONIA"), stamp))
    frame = pd.DataFrame(rows, columns=[schema.IMAGE_ID, "folder", schema.LABEL, "stamp"])
    frame[schema.LABEL] = frame[schema.LABEL].astype("int8")
    patients = [
        kermany_patient(folder, storage.name_of(rel))
        for rel, folder in zip(frame[schema.IMAGE_ID], frame["folder"], strict=True)
    ]
    frame[schema.PATIENT_ID] = pd.Series(patients, dtype="object")
    for finding in schema.FINDINGS:
        frame[finding] = pd.array([pd.NA] * len(frame), dtype="Int8")
    frame[schema.TARGET] = frame[schema.LABEL].astype("Int8")
    frame[schema.PATH] = [storage.join(layout.root, r) for r in frame[schema.IMAGE_ID]]
    official = frame.pop("folder").map(lambda f: "test" if f == "test" else "train_val")
    unnamed = int(frame[schema.PATIENT_ID].isna().sum())
    notes = [
        "Patient ids come from the Kermany file names (person<N>; IM-<NNNN>, with "
        "NORMAL2-IM-<NNNN> taken for the same child), within each official split folder"
    ]
    if unnamed:
        notes.append(
            f"{unnamed} file name(s) follow neither Kermany pattern: each of those images is its "
            "own group, so the split is not fully patient-grouped"
        )
    return Inventory(
        frame,
        metadata_only is not True,
        unnamed == 0,
        official,
        _digest(dict(zip(frame[schema.IMAGE_ID], frame["stamp"], strict=True))),
        len(frame),
        [],
        notes,
    )


def take_inventory(
    layout: Layout, metadata_only: bool | None, settings: Settings | None = None
) -> Inventory:
    if layout.name == "nih":
        return _nih(layout, metadata_only, settings)
    return _kermany(layout, metadata_only, settings)
