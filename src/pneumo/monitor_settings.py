"""Where and how the service keeps its prediction records (environment ``PNEUMO_MONITOR_*``).

A record holds no pixels, file names or DICOM values: see :mod:`pneumo.monitoring.records`.
"""

from __future__ import annotations

import socket

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MonitorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PNEUMO_MONITOR_", extra="ignore", frozen=True)

    records: bool = Field(True, description="Record every scored image (no pixels, no names).")
    records_url: str | None = Field(
        None,
        description="Folder or fsspec URL of the records (s3://…); default "
        "$ROOT/monitoring/records.",
    )
    replica: str = Field(
        default_factory=socket.gethostname,
        description="This replica's folder under the records (default: the host name, the pod's "
        "name on Kubernetes); each replica writes only its own.",
    )
    segment_records: int = Field(500, ge=1, description="Records per segment file at most.")
    segment_seconds: float = Field(
        60.0, gt=0, description="A segment is written at least this often while records arrive."
    )
    keep_days: float = Field(90.0, gt=0, description="Segments older than this are deleted.")
    max_segments: int = Field(
        10_000, ge=1, description="Segments kept per replica at most (the oldest go first)."
    )
    drift: bool = Field(True, description="Test recent inputs against the model's drift reference.")
    window: int = Field(50, ge=2, description="Images in the window each drift check tests.")
    check_every: int = Field(25, ge=1, description="A drift check every this many images.")
    check_seconds: float = Field(
        300.0, gt=0, description="…or when this long has passed since the last, with new images."
    )
    alpha: float = Field(
        0.01, gt=0, lt=1, description="A drift test flags drift when its p-value is below this."
    )
    permutations: int = Field(500, ge=1, description="Permutations of the MMD test.")
