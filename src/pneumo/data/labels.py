"""Read NIH's label file (2017 form with its trailing empty column, or the v2020 form).

Each malformed row is reported with its line number and reason and left out; the rest of the
file is used. Values that are recorded wrongly but leave the row usable (an age of 412 years)
are set to missing and counted in the notes. Parsing is vectorised: the full 112,120-row file
takes about a second.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass, field

import pandas as pd

from pneumo import storage
from pneumo.data import schema
from pneumo.data.problems import Problem
from pneumo.errors import DataError
from pneumo.settings import Settings

_COLUMNS = {
    "Follow-up #": schema.FOLLOW_UP,
    "Patient Age": schema.AGE,
    "Patient Gender": schema.SEX,
    "View Position": schema.VIEW,
    "OriginalImage[Width": schema.ORIG_WIDTH,
    "Height]": schema.ORIG_HEIGHT,
}
_REQUIRED = ("Image Index", "Finding Labels", "Patient ID")
_KNOWN_LABELS = frozenset((*schema.FINDINGS, schema.NO_FINDING))
MAX_AGE = 120


@dataclass
class LabelTable:
    frame: pd.DataFrame  # one row per image; finding columns as 0/1
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _text(url: str, settings: Settings | None) -> str:
    raw = storage.read_bytes(url, settings)
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8-sig")


def _finding_masks(column: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Bit masks of the findings in each row (bit i = schema.FINDINGS[i]) and an error column.

    Computed once per distinct label string: the full file has about 800 of them.
    """
    bit = {name: 1 << i for i, name in enumerate(schema.FINDINGS)}
    masks: dict[str, int] = {}
    errors: dict[str, str] = {}
    for value in column.unique():
        labels = [x.strip() for x in str(value).split("|") if x.strip()]
        unknown = [x for x in labels if x not in _KNOWN_LABELS]
        if not labels or unknown:
            errors[value] = f"unknown finding label(s) {unknown or value!r}"
        masks[value] = sum(bit.get(x, 0) for x in labels)
    return column.map(masks), column.map(errors)


def _ages(column: pd.Series) -> pd.Series:
    """NIH ages are plain years in v2020 and like "058Y" (or months "M", days "D") in 2017."""
    text = column.str.strip().str.upper()
    unit = text.str[-1]
    per_year = unit.map({"Y": 1.0, "M": 12.0, "D": 365.25}).fillna(1.0)
    digits = text.where(~unit.isin(["Y", "M", "D"]), text.str[:-1])
    return pd.to_numeric(digits, errors="coerce") / per_year


def _split_rows(rows: list[list[str]], width: int, name: str) -> tuple[pd.DataFrame, list[Problem]]:
    """Rows with the header's number of fields (a trailing empty field allowed) and the rest."""
    problems: list[Problem] = []
    good: list[list[str]] = []
    lines: list[int] = []
    for line_no, row in enumerate(rows, start=2):
        if len(row) == width or (len(row) > width and not any(c.strip() for c in row[width:])):
            good.append(row[:width])
            lines.append(line_no)
        elif any(c.strip() for c in row):
            problems.append(
                Problem(
                    f"{name}:{line_no}",
                    "malformed label row",
                    f"{len(row)} fields, expected {width}",
                )
            )
    return pd.DataFrame({"_row": good, "_line": lines}), problems


def read_nih_labels(url: str, settings: Settings | None = None) -> LabelTable:
    """Parse the label CSV at ``url`` (plain or gzip) into a table of usable rows."""
    name = storage.name_of(url)
    rows = list(csv.reader(io.StringIO(_text(url, settings))))
    if not rows:
        raise DataError(f"label file {url} is empty", hint="re-fetch the dataset")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise DataError(
            f"label file {url} lacks column(s) {missing}; its header is {header}",
            hint="pass NIH's Data_Entry_2017.csv (2017 or v2020 form)",
        )
    width = len(header)
    while width and header[width - 1] == "":  # the 2017 form's trailing comma
        width -= 1
    kept, problems = _split_rows(rows[1:], width, name)
    raw = pd.DataFrame(kept["_row"].tolist(), columns=header[:width], dtype="str")
    line = kept["_line"]

    why = pd.Series("", index=raw.index, dtype="object")
    image_ids = raw["Image Index"].str.strip()
    bad_name = (image_ids == "") | image_ids.str.contains(r"[/\\]", regex=True)
    why = why.mask(bad_name, "bad image name " + image_ids)
    masks, label_errors = _finding_masks(raw["Finding Labels"])
    why = why.mask(label_errors.notna() & (why == ""), label_errors)
    patient = pd.to_numeric(raw["Patient ID"].str.strip(), errors="coerce")
    why = why.mask(patient.isna() & (why == ""), "Patient ID is not a number")
    bad = why != ""
    problems.extend(
        Problem(f"{name}:{n}", "malformed label row", w)
        for n, w in zip(line[bad], why[bad], strict=True)
    )

    frame = pd.DataFrame({schema.IMAGE_ID: image_ids})
    frame[schema.PATIENT_ID] = patient.astype("Int64").astype("str")
    notes: list[str] = []
    for column, key in _COLUMNS.items():
        if column not in raw:
            continue
        if key == schema.AGE:
            age = _ages(raw[column])
            wrong = age.notna() & ~age.between(0, MAX_AGE)
            if int(wrong.sum()):
                notes.append(
                    f"{int(wrong.sum())} recorded age(s) outside 0-{MAX_AGE} years set to unknown"
                )
            frame[key] = age.mask(wrong).astype("float64")
        elif key in (schema.SEX, schema.VIEW):
            frame[key] = raw[column].str.strip().str.upper().replace("", None)
        else:
            frame[key] = pd.to_numeric(raw[column].str.strip(), errors="coerce").astype("Int32")
    bits = masks.fillna(0).to_numpy(dtype="int64")
    for i, finding in enumerate(schema.FINDINGS):
        frame[finding] = pd.array((bits >> i) & 1, dtype="Int8")
    frame[schema.LABEL] = frame[schema.TARGET].astype("int8")

    frame, line = frame[~bad], line[~bad]
    dup = frame[schema.IMAGE_ID].duplicated(keep="first")
    if dup.any():
        first = dict(zip(frame.loc[~dup, schema.IMAGE_ID], line[~dup], strict=True))
        problems.extend(
            Problem(
                f"{name}:{n}",
                "duplicate label row",
                f"{iid} already listed at line {first[iid]}; kept the first",
            )
            for iid, n in zip(frame.loc[dup, schema.IMAGE_ID], line[dup], strict=True)
        )
    problems.sort(key=lambda p: int(p.file.rsplit(":", 1)[1]))
    return LabelTable(frame[~dup].reset_index(drop=True), problems, notes)


def read_id_list(url: str, settings: Settings | None = None) -> set[str]:
    """An NIH split list (train_val_list.txt / test_list.txt): one image name per line."""
    return {line.strip() for line in _text(url, settings).splitlines() if line.strip()}
