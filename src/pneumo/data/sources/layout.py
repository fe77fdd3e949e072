"""Recognise the on-disk layouts pneumo reads.

- NIH: a label CSV (``Data_Entry_2017*.csv`` or ``.csv.gz``, the 2017 form with its trailing
  empty column or the v2020 form), optional ``train_val_list.txt`` / ``test_list.txt``, images
  under ``images/``, ``images_0NN/images/`` or flat beside the CSV. A label file on its own is an
  NIH dataset without images (metadata-only).
- Kermany: ``{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg``. File names carry the child's id
  (:func:`kermany_patient`), unique within one official split folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pneumo import storage
from pneumo.errors import DataError
from pneumo.settings import Settings

LayoutName = Literal["nih", "kermany"]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
KERMANY_CLASSES = ("NORMAL", "PNEUMONIA")
_LABEL_FILE = re.compile(r"^Data_Entry_2017.*\.csv(\.gz)?$", re.IGNORECASE)
# person<N>_bacteria_<M>.jpeg, person<N>_virus_<M>[_<K>].jpeg: patient person<N>;
# IM-<NNNN>-<MMMM>[-<K>].jpeg and NORMAL2-IM-<NNNN>-<MMMM>[-<K>].jpeg: patient IM-<NNNN>.
_KERMANY_PATIENT = (
    re.compile(r"^(person\d+)_(?:bacteria|virus)_\d+(?:_\d+)*\.jpe?g$", re.IGNORECASE),
    re.compile(r"^(?:NORMAL\d*-)?(IM-\d+)-\d+(?:-\d+)*\.jpe?g$", re.IGNORECASE),
)


@dataclass(frozen=True)
class Layout:
    name: LayoutName
    root: str  # folder of the dataset
    label_file: str | None = None  # NIH only: URL of the label CSV
    labels_only: bool = False  # the dataset is a label file on its own (metadata-only)


def kermany_patient(folder: str, name: str) -> str | None:
    """The child a Kermany file shows, as ``<official split folder>/<id>``; None when the name
    follows neither pattern.

    Ids restart in each official split folder, so ``train/person1`` and ``test/person1`` are
    different children. ``NORMAL2-IM-0115-…`` and ``IM-0115-…`` are taken for the same child
    (the data's README names the patient ``IM-<NNNN>`` for both): if they are not, grouping
    them only makes the split a little coarser, while the opposite mistake would leak a child.
    """
    for pattern in _KERMANY_PATIENT:
        match = pattern.match(name)
        if match:
            return f"{folder}/{match.group(1)}"
    return None


def is_label_file(name: str) -> bool:
    return bool(_LABEL_FILE.match(name))


def detect(url: str, settings: Settings | None = None) -> Layout:
    """The layout of the dataset at ``url`` (a folder, or an NIH label file)."""
    url = storage.absolute(url)
    if not storage.exists(url, settings):
        raise DataError(f"dataset not found: {url}", hint="check the path or URL")
    if not storage.isdir(url, settings):
        if is_label_file(storage.name_of(url)) or url.endswith((".csv", ".csv.gz")):
            return Layout("nih", storage.parent_of(url), label_file=url, labels_only=True)
        raise DataError(
            f"{url} is a file but not an NIH label file (Data_Entry_2017*.csv[.gz])",
            hint="pass the dataset folder, or the label CSV itself for metadata-only mode",
        )
    entries = storage.listdir(url, settings)
    labels = sorted(e for e in entries if is_label_file(e))
    if labels:
        return Layout("nih", url, label_file=storage.join(url, labels[-1]))
    for split in ("train", "val", "test"):
        if split in entries:
            inner = storage.listdir(storage.join(url, split), settings)
            if any(c in inner for c in KERMANY_CLASSES):
                return Layout("kermany", url)
    raise DataError(
        f"{url} is neither an NIH layout (no Data_Entry_2017*.csv) nor a Kermany layout "
        "(no {train,val,test}/{NORMAL,PNEUMONIA} folders)",
        hint="see README 'Data sources' for the layouts pneumo reads",
    )
