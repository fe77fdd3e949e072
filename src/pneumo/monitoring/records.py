"""The service's prediction records: one row per scored image, kept in segment files.

A record has no pixels, file names or DICOM values: the time, the model version, the request
id, the probability and decision, the out-of-distribution score, the embedding projected on
the model's drift reference (8 numbers, not the features themselves) and input statistics
(intensity mean and spread of the decoded image, the source's size and pixel mode).

Records are buffered in memory and written as Parquet segments under
``<records_url>/<replica>/``, each segment whole or not at all (:func:`storage.atomic_open`;
one object on S3), named by the time of its first record and a random part, so restarts and
replicas never overwrite one another. A segment is written when it holds ``segment_records``
or its first record is ``segment_seconds`` old, and on shutdown; segments past ``keep_days``
or beyond ``max_segments`` are deleted, oldest first. What was buffered when a process is
killed is lost (at most one segment); what was written survives. While the store cannot be
written, records wait in memory (up to ``BUFFERED_SEGMENTS`` segments' worth, then the oldest
are dropped and counted).
"""

from __future__ import annotations

import io
import threading
import time
import uuid
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from pneumo import paths, storage
from pneumo.monitor_settings import MonitorSettings
from pneumo.monitoring.journal import Journal, read_journal
from pneumo.settings import Settings

COLUMNS = (
    "time", "model_version", "request_id", "probability", "positive", "ood_score", "embedding",
    "mean_intensity", "std_intensity", "orig_width", "orig_height", "src_mode", "refused",
    "index",
)  # fmt: skip
LABEL_COLUMNS = ("time", "request_id", "index", "label", "model_version", "probability")
BUFFERED_SEGMENTS = 20  # segments' worth of records held while the store cannot be written


@dataclass(frozen=True)
class Record:
    time: float  # seconds since the epoch (UTC)
    model_version: str
    request_id: str
    probability: float
    positive: bool
    ood_score: float | None
    embedding: list[float] | None  # projected on the model's drift reference
    mean_intensity: float  # of the decoded image at the model's size, 0-255
    std_intensity: float
    orig_width: int | None  # None where the image came as pixels (the /v2 UINT8 input)
    orig_height: int | None
    src_mode: str | None
    refused: bool  # refused as out of distribution (scored, not answered)
    index: int = 0  # of the image in its request (a batch, a /v2 tensor)


@dataclass(frozen=True)
class LabelRecord:
    """A delayed label, as received; the prediction it joined, if this replica made it."""

    time: float
    request_id: str
    index: int
    label: int  # 1: pneumonia
    model_version: str | None
    probability: float | None


def segment_name(first: float, suffix: str = paths.RECORD_SUFFIX) -> str:
    stamp = datetime.fromtimestamp(first, UTC).strftime("%Y%m%dT%H%M%S.%f")
    return f"{stamp}-{uuid.uuid4().hex[:8]}{suffix}"


class RecordStore:
    """A replica's records: buffered, written in segments, pruned. Thread-safe."""

    def __init__(
        self, url: str, cfg: MonitorSettings, settings: Settings | None = None,
        suffix: str = paths.RECORD_SUFFIX, journal: Path | None = None,
    ) -> None:  # fmt: skip
        """``journal``: a local folder where what is buffered is journalled (monitoring.journal);
        the journals of killed processes found there are written as segments first."""
        self.folder = storage.join(url, cfg.replica)
        self.cfg = cfg
        self.settings = settings
        self.suffix = suffix  # records, or labels (LabelRecord rows)
        self._buffer: list[Record | LabelRecord] = []
        self._lock = threading.Lock()
        self.written = 0  # segments written by this process
        self.recovered = 0  # records of killed processes written as segments
        self._journal = None
        if journal is not None:
            self._journal = Journal(journal, f"{cfg.replica}{suffix}")
            self._recover(self._journal)

    def _recover(self, journal: Journal) -> None:
        kind = Record if self.suffix == paths.RECORD_SUFFIX else LabelRecord
        for orphan in journal.orphans():
            rows = read_journal(orphan)
            for start in range(0, len(rows), self.cfg.segment_records):
                self._write([kind(**r) for r in rows[start : start + self.cfg.segment_records]])
            self.recovered += len(rows)
            orphan.unlink()

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()

    def add(self, record: Record | LabelRecord) -> bool:
        """Buffer ``record``; False when the buffer was full and the oldest one was dropped
        (the store has been unreachable for ``BUFFERED_SEGMENTS`` segments)."""
        with self._lock:
            self._buffer.append(record)
            if self._journal is not None:
                self._journal.append(asdict(record))
            if len(self._buffer) > BUFFERED_SEGMENTS * self.cfg.segment_records:
                del self._buffer[0]
                return False
        return True

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._buffer)

    def due(self, now: float | None = None) -> bool:
        with self._lock:
            if not self._buffer:
                return False
            age = (time.time() if now is None else now) - self._buffer[0].time
            return len(self._buffer) >= self.cfg.segment_records or age >= self.cfg.segment_seconds

    def flush(self) -> str | None:
        """Write what is buffered as one segment (blocking: run it off the event loop)."""
        with self._lock:
            records = self._buffer[: self.cfg.segment_records]
            del self._buffer[: len(records)]
        if not records:
            return None
        try:
            url = self._write(records)
        except BaseException:
            with self._lock:  # kept for the next try, in order
                self._buffer[:0] = records
            raise
        if self._journal is not None:
            with self._lock:
                self._journal.rewrite([asdict(r) for r in self._buffer])
        self.written += 1
        self.prune()
        return url

    def _write(self, records: list[Record | LabelRecord]) -> str:
        """One segment of ``records``, whole or not at all."""
        url = storage.join(self.folder, segment_name(records[0].time, self.suffix))
        columns = [f.name for f in fields(records[0])]
        frame = pd.DataFrame([asdict(r) for r in records], columns=columns)
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        storage.makedirs(self.folder, self.settings)
        with storage.atomic_open(url, self.settings) as fh:
            fh.write(buf.getvalue())
        return url

    def prune(self, now: float | None = None) -> int:
        """Delete this replica's segments past ``keep_days`` or beyond ``max_segments``."""
        names = sorted(n for n in storage.listdir(self.folder, self.settings)
                       if n.endswith(self.suffix))  # fmt: skip
        cutoff = (time.time() if now is None else now) - self.cfg.keep_days * 86400
        old = [n for n in names if _first_time(n) < cutoff]
        surplus = names[: max(0, len(names) - self.cfg.max_segments)]
        doomed = sorted(set(old) | set(surplus))
        for name in doomed:
            storage.remove(storage.join(self.folder, name), self.settings)
        return len(doomed)


def _first_time(name: str) -> float:
    stamp = name.split("-", 1)[0]
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return float("inf")  # not one of ours: never deleted by age


def read_records(
    url: str, settings: Settings | None = None, since: float | None = None,
    until: float | None = None, suffix: str = paths.RECORD_SUFFIX,
) -> pd.DataFrame:  # fmt: skip
    """Every replica's records (or, with ``paths.LABEL_SUFFIX``, labels) under ``url`` between
    ``since`` and ``until`` (epoch seconds), in time order; an empty frame with the columns
    when there are none."""
    frames = []
    for found in storage.find(url, settings):  # "<replica>/<segment>"
        replica, _, name = found.rpartition("/")
        if not name.endswith(suffix) or name.startswith("."):
            continue
        frame = pd.read_parquet(io.BytesIO(storage.read_bytes(storage.join(url, found), settings)))
        frame["replica"] = replica
        frames.append(frame)
    if not frames:
        columns = COLUMNS if suffix == paths.RECORD_SUFFIX else LABEL_COLUMNS
        return pd.DataFrame(columns=[*columns, "replica"])
    records = pd.concat(frames, ignore_index=True).sort_values("time", kind="stable")
    keep = np.ones(len(records), dtype=bool)
    if since is not None:
        keep &= records["time"].to_numpy() >= since
    if until is not None:
        keep &= records["time"].to_numpy() < until
    return records[keep].reset_index(drop=True)
