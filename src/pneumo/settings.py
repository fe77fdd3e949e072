"""Runtime settings: *where* things live, read from the environment (prefix ``PNEUMO_``).

What a run *does* lives in the experiment config (:mod:`pneumo.config`); where it reads and
writes is the environment's business, so the same config runs on a laptop and against S3.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Locations and storage options.

    Every location is an fsspec URL: a local path (the default) or ``s3://bucket/prefix``.
    S3 credentials come from the usual ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` /
    ``AWS_PROFILE`` variables, read by botocore itself.
    """

    model_config = SettingsConfigDict(env_prefix="PNEUMO_", extra="ignore", frozen=True)

    root: str = Field(
        default="pneumo-work",
        description="Base location; the others default to folders below it.",
    )
    data_url: str | None = Field(default=None, description="Raw datasets (fetch writes here).")
    prepared_url: str | None = Field(
        default=None, description="Manifests, image caches, data cards and EDA reports."
    )
    runs_url: str | None = Field(
        default=None, description="Training runs: resumable and best checkpoints, history."
    )
    mlflow_tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI; default a SQLite file under the root."
    )
    mlflow_experiment: str = Field(default="pneumo", description="MLflow experiment name.")
    download_dir: str | None = Field(
        default=None, description="Local folder for partial and finished downloads."
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint (MinIO, Scaleway, ...); unset for AWS."
    )
    s3_region: str | None = Field(default=None, description="Region name for the S3 endpoint.")
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra fsspec options as JSON, e.g. '{\"anon\": true}'.",
    )
    workers: int = Field(default=0, ge=0, description="Worker processes; 0 means all cores.")

    @field_validator("root", "data_url", "prepared_url", "runs_url", "download_dir")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        # Local locations are made absolute once, so no later chdir changes what they mean.
        if value is None or ("://" in value and not value.startswith("file://")):
            return value
        from pathlib import Path

        return str(Path(value.removeprefix("file://")).expanduser().resolve())

    @field_validator("storage_options", mode="before")
    @classmethod
    def _parse_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    def _below_root(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"

    @property
    def data(self) -> str:
        return self.data_url or self._below_root("data")

    @property
    def prepared(self) -> str:
        return self.prepared_url or self._below_root("prepared")

    @property
    def runs(self) -> str:
        return self.runs_url or self._below_root("runs")

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        if "://" in self.root and not self.root.startswith("file://"):
            from pathlib import Path

            # SQLite needs a local file: with the root on object storage, keep the database in
            # the user's cache (artifacts still go to the root); a team sets a server URI.
            return f"sqlite:///{Path.home() / '.cache' / 'pneumo' / 'mlflow.db'}"
        return f"sqlite:///{self._below_root('mlflow.db')}"

    @property
    def mlflow_artifacts(self) -> str:
        return self._below_root("mlartifacts")

    @property
    def downloads(self) -> str:
        if self.download_dir:
            return self.download_dir
        if "://" in self.root and not self.root.startswith("file://"):
            # Resumable downloads need a local file to append to; object storage has none.
            from pathlib import Path

            return str(Path.home() / ".cache" / "pneumo" / "downloads")
        return self._below_root("downloads")

    def fs_options(self, url: str) -> dict[str, Any]:
        """fsspec keyword arguments for ``url``'s protocol."""
        protocol = url.split("://", 1)[0] if "://" in url else "file"
        options: dict[str, Any] = {}
        if protocol in ("s3", "s3a"):
            client_kwargs: dict[str, Any] = {}
            if self.s3_endpoint_url:
                client_kwargs["endpoint_url"] = self.s3_endpoint_url
            if self.s3_region:
                client_kwargs["region_name"] = self.s3_region
            if client_kwargs:
                options["client_kwargs"] = client_kwargs
        options.update(self.storage_options)
        return options


def get_settings() -> Settings:
    """Read settings from the environment now (never at import time)."""
    return Settings()
