"""NIH label file parsing: both forms, bad rows reported by line, odd ages."""

from __future__ import annotations

import gzip
from pathlib import Path

from pneumo.data import schema
from pneumo.data.labels import read_nih_labels

HEADER_2020 = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
    "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)


def test_2017_form_with_trailing_column_and_age_suffix(tmp_path: Path) -> None:
    text = (
        HEADER_2020 + ",\n"
        "00000001_000.png,Cardiomegaly,0,1,058Y,M,PA,2682,2749,0.143,0.143,\n"
        "00000002_000.png,Pneumonia|Effusion,0,2,006M,F,AP,2500,2048,0.168,0.168,\n"
    )
    path = tmp_path / "Data_Entry_2017.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    table = read_nih_labels(str(path))
    frame = table.frame
    assert table.problems == []
    assert list(frame[schema.IMAGE_ID]) == ["00000001_000.png", "00000002_000.png"]
    assert list(frame[schema.AGE]) == [58.0, 0.5]
    assert list(frame[schema.LABEL]) == [0, 1]
    assert frame.loc[1, "Effusion"] == 1 and frame.loc[0, "Cardiomegaly"] == 1
    assert frame.loc[0, "Pneumonia"] == 0
    assert list(frame[schema.PATIENT_ID]) == ["1", "2"]


def test_malformed_rows_are_reported_by_line_and_skipped(tmp_path: Path) -> None:
    text = (
        HEADER_2020 + "\n"
        "a.png,No Finding,0,1,40,M,PA,10,10,0.1,0.1\n"
        "b.png,No Finding,0,1,40\n"  # too few fields
        "c.png,Flu,0,2,40,M,PA,10,10,0.1,0.1\n"  # unknown finding
        "d.png,No Finding,0,xx,40,M,PA,10,10,0.1,0.1\n"  # patient id
        "a.png,Pneumonia,1,1,41,M,PA,10,10,0.1,0.1\n"  # duplicate
        "e.png,Pneumonia,0,3,412,F,AP,10,10,0.1,0.1\n"  # impossible age
    )
    path = tmp_path / "Data_Entry_2017_v2020.csv"
    path.write_text(text)
    table = read_nih_labels(str(path))
    assert list(table.frame[schema.IMAGE_ID]) == ["a.png", "e.png"]
    where = [(p.file, p.reason) for p in table.problems]
    assert where == [
        ("Data_Entry_2017_v2020.csv:3", "malformed label row"),
        ("Data_Entry_2017_v2020.csv:4", "malformed label row"),
        ("Data_Entry_2017_v2020.csv:5", "malformed label row"),
        ("Data_Entry_2017_v2020.csv:6", "duplicate label row"),
    ]
    assert "Flu" in table.problems[1].detail
    assert table.frame[schema.AGE].isna().tolist() == [False, True]
    assert any("412" in n or "outside" in n for n in table.notes)
