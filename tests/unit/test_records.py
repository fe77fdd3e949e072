"""The prediction records: buffered, written whole in segments per replica, read back across
replicas and restarts, pruned by age and count; no pixels, no names."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pneumo.monitor_settings import MonitorSettings
from pneumo.monitoring.records import COLUMNS, Record, RecordStore, read_records


def record(t: float, p: float = 0.5, request_id: str = "r") -> Record:
    return Record(
        time=t, model_version="3", request_id=request_id, probability=p, positive=p >= 0.5,
        ood_score=0.01, embedding=[0.1] * 8, mean_intensity=120.0, std_intensity=40.0,
        orig_width=1024, orig_height=1024, src_mode="L", refused=False,
    )  # fmt: skip


def settings(**values: object) -> MonitorSettings:
    return MonitorSettings.model_validate({"replica": "a", **values})


def test_segments_are_written_when_full_or_old_and_read_back(tmp_path: Path) -> None:
    store = RecordStore(str(tmp_path), settings(segment_records=3, segment_seconds=30))
    now = time.time()
    assert not store.due(now) and store.flush() is None  # nothing buffered
    store.add(record(now, 0.2, "r1"))
    store.add(record(now + 1, 0.7, "r2"))
    assert not store.due(now + 2) and store.due(now + 31)  # the first record's age
    store.add(record(now + 2, 0.9, "r3"))
    store.add(record(now + 3, 0.1, "r4"))
    assert store.due(now + 3)  # three records: full
    first = store.flush()
    assert first is not None and first.endswith(".records.parquet")
    assert store.due(now + 3 + 60) and store.flush() is not None  # the fourth, in its own
    frame = read_records(str(tmp_path))
    assert list(frame["request_id"]) == ["r1", "r2", "r3", "r4"]
    assert set(frame.columns) == {*COLUMNS, "replica"} and set(frame["replica"]) == {"a"}
    assert list(frame["embedding"][0]) == [0.1] * 8
    assert [n for n in (tmp_path / "a").iterdir() if n.name.startswith(".")] == []  # no temps


def test_replicas_and_restarts_add_up_and_time_ranges_select(tmp_path: Path) -> None:
    now = time.time()
    for replica, offset in (("a", 0.0), ("b", 10.0), ("a", 20.0)):  # "a" restarted
        store = RecordStore(str(tmp_path), settings(replica=replica))
        store.add(record(now + offset, request_id=f"{replica}{offset:g}"))
        store.flush()
    frame = read_records(str(tmp_path))
    assert list(frame["request_id"]) == ["a0", "b10", "a20"]
    assert list(frame["replica"]) == ["a", "b", "a"]
    window = read_records(str(tmp_path), since=now + 5, until=now + 15)
    assert list(window["request_id"]) == ["b10"]
    assert read_records(str(tmp_path / "none")).empty


def test_old_and_surplus_segments_are_pruned_oldest_first(tmp_path: Path) -> None:
    store = RecordStore(str(tmp_path), settings(max_segments=2, keep_days=1))
    now = time.time()
    for age_days in (3.0, 0.5, 0.2, 0.1):
        store.add(record(now - age_days * 86400, request_id=f"{age_days:g}"))
        store.flush()  # each flush prunes
    kept = read_records(str(tmp_path))
    assert list(kept["request_id"]) == ["0.2", "0.1"]


def test_settings_validate() -> None:
    with pytest.raises(ValueError, match="segment_records"):
        MonitorSettings.model_validate({"segment_records": 0})
    assert MonitorSettings().replica  # the host name by default


def test_a_killed_stores_journal_is_written_by_the_next_store(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    journal = tmp_path / "journal"
    # a store in another process buffers two records, then that process dies unflushed
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[3]); "
        "from pneumo.monitor_settings import MonitorSettings; "
        "from pneumo.monitoring.records import RecordStore; "
        "from tests.unit.test_records import record; "
        "s = RecordStore(sys.argv[1], MonitorSettings(replica='a'), journal=__import__('pathlib')"
        ".Path(sys.argv[2])); [s.add(record(time.time(), request_id=f'j{i}')) for i in range(2)]; "
        "import os; os._exit(0)"
    )
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, f"{root}/src"])}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "rec"), str(journal), root],
                   check=True, env=env, timeout=60)  # fmt: skip
    assert read_records(str(tmp_path / "rec")).empty
    store = RecordStore(str(tmp_path / "rec"), settings(), journal=journal)
    assert store.recovered == 2
    assert list(read_records(str(tmp_path / "rec"))["request_id"]) == ["j0", "j1"]
    store.add(record(time.time(), request_id="mine"))
    store.flush()  # written: the journal keeps nothing of it
    store.close()
    assert list(journal.glob("*.jsonl")) == []
