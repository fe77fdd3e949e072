"""Runtime settings: *where* things live, read from the environment (prefix ``PNEUMO_``).

What a run *does* lives in the experiment config (:mod:`pneumo.config`); where it reads and
writes is the environment's business, so the same config runs on a laptop and against S3.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pneumo import paths


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
    tune_storage: str | None = Field(
        default=None,
        description="Optuna storage (SQLAlchemy URL); default a SQLite file under the root.",
    )
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
    stream_cache: str | None = Field(
        default=None, description="Local folder for shards streamed from object storage."
    )
    stream_shards: int = Field(
        default=4, ge=2, description="Most streamed shards on local disk at once (per rank)."
    )

    @field_validator("root", "data_url", "prepared_url", "runs_url", "download_dir")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        # Local locations are made absolute once, so no later chdir changes what they mean.
        if value is None or ("://" in value and not value.startswith("file://")):
            return value
        return str(Path(value.removeprefix("file://")).expanduser().resolve())

    @field_validator("storage_options", mode="before")
    @classmethod
    def _parse_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @property
    def _remote_root(self) -> bool:
        """The root is on object storage: what must be a local file goes to the user's cache."""
        return "://" in self.root and not self.root.startswith("file://")

    def _below_root(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"

    @property
    def data(self) -> str:
        return self.data_url or self._below_root(paths.DATA_DIR)

    @property
    def prepared(self) -> str:
        return self.prepared_url or self._below_root(paths.PREPARED_DIR)

    @property
    def runs(self) -> str:
        return self.runs_url or self._below_root(paths.RUNS_DIR)

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        if self._remote_root:
            # SQLite needs a local file: with the root on object storage, keep the database in
            # the user's cache (artifacts still go to the root); a team sets a server URI.
            return f"sqlite:///{user_cache() / paths.MLFLOW_DB}"
        return f"sqlite:///{self._below_root(paths.MLFLOW_DB)}"

    @property
    def local_registry_only(self) -> bool:
        """The root is shared object storage but the registry a SQLite file on this machine."""
        return self._remote_root and not self.mlflow_tracking_uri

    @property
    def tuning(self) -> str:
        return self._below_root(paths.TUNING_DIR)

    @property
    def tuning_storage(self) -> str:
        if self.tune_storage:
            return self.tune_storage
        if self._remote_root:
            # As MLflow's SQLite file: a database needs a local file; share a server URL instead.
            return f"sqlite:///{user_cache() / paths.TUNING_DIR / paths.OPTUNA_DB}"
        return f"sqlite:///{self._below_root(paths.TUNING_DIR)}/{paths.OPTUNA_DB}"

    @property
    def mlflow_artifacts(self) -> str:
        return self._below_root(paths.MLFLOW_ARTIFACTS_DIR)

    @property
    def downloads(self) -> str:
        if self.download_dir:
            return self.download_dir
        if self._remote_root:
            # Resumable downloads need a local file to append to; object storage has none.
            return str(user_cache() / paths.DOWNLOADS_DIR)
        return self._below_root(paths.DOWNLOADS_DIR)

    @property
    def stream_folder(self) -> Path:
        if self.stream_cache:
            return Path(self.stream_cache).expanduser()
        return user_cache() / paths.USER_SHARDS_DIR

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


def user_cache() -> Path:
    """pneumo's folder in the user's cache, for what must be local when the root is not."""
    return Path.home().joinpath(*paths.USER_CACHE)


def get_settings() -> Settings:
    """Read settings from the environment now (never at import time)."""
    return Settings()


MULTIPART_OVERHEAD = 64 * 1024  # bytes a multipart part adds around one file, at most


class ServeSettings(BaseSettings):
    """What `pneumo serve` needs besides the locations: address, keys, limits, batching."""

    model_config = SettingsConfigDict(env_prefix="PNEUMO_", extra="ignore", frozen=True)

    serve_model: str = Field(
        "models:/pneumonia@champion",
        description="models:/NAME@ALIAS, models:/NAME/VERSION, or a model package folder.",
    )
    serve_host: str = Field("127.0.0.1", description="Interface to bind; 0.0.0.0 in a container.")
    serve_port: int = Field(8000, ge=0, le=65535)
    api_keys: str = Field("", description="Comma-separated bearer keys; empty: no authentication.")
    max_upload_mb: float = Field(20.0, gt=0, description="Largest accepted file, in MB.")
    max_files: int = Field(16, ge=1, description="Most files in one batch request.")
    max_image_pixels: int = Field(
        50_000_000,
        ge=1,
        description="Largest image accepted, in pixels, read from the file's header: the "
        "biggest radiographs (43 x 43 cm detectors at 100 um, full-field mammography) are "
        "under 25 million; 50 million leaves room for stitched long-leg or spine films.",
    )
    decode_budget_mb: float = Field(
        768.0,
        gt=0,
        description="Memory all decodes in flight may use together, in MB; an image whose "
        "decode alone would need more is refused, the others wait for their share.",
    )
    heavy_decode_mb: float = Field(
        256.0,
        gt=0,
        description="Decodes needing more, in MB, run one at a time in a paced lane (a 4300 "
        "px 16-bit detector image needs ~370 MB, a 1024 px PNG 2 MB).",
    )
    heavy_decode_share: float = Field(
        0.5, gt=0, le=1, description="Most of one core the heavy-decode lane may keep busy."
    )
    max_batch: int = Field(16, ge=1, description="Most images in one ONNX Runtime call.")
    header_timeout_s: float = Field(
        10.0, gt=0, description="A request's headers must arrive within this; else 408, closed."
    )
    body_idle_s: float = Field(10.0, gt=0, description="Longest pause within a request body.")
    body_timeout_s: float = Field(60.0, gt=0, description="Longest a whole request body may take.")
    keepalive_s: int = Field(5, ge=1, description="An idle keep-alive connection is closed.")
    max_connections: int = Field(
        256, ge=1, description="Open connections at most; past it Uvicorn answers 503."
    )
    shutdown_grace_s: int = Field(
        20,
        ge=1,
        description="On SIGTERM: stop accepting, finish requests in flight within this, exit "
        "(below Kubernetes' terminationGracePeriodSeconds, 30 in deploy/k8s).",
    )
    max_in_flight: int = Field(
        64, ge=1, description="Requests on /v1/ at once; past it 503 with Retry-After."
    )
    max_wait_ms: float = Field(
        5.0, ge=0, description="How long a batch waits for requests still being decoded."
    )
    poll_seconds: float = Field(
        30.0, ge=0, description="How often the registry alias is checked; 0: never (no hot swap)."
    )
    ort_threads: int = Field(0, ge=0, description="ONNX Runtime intra-op threads; 0: all cores.")
    ort_spin: bool = Field(
        False,
        description="Let ONNX Runtime's threads spin for work after each call (its default). Off: "
        "they sleep, and leave the cores to the decoding and the maps that follow each call.",
    )
    model_cache: str | None = Field(None, description="Where downloaded models are kept.")
    serve_docs: bool = Field(
        True, description="Serve /docs (Swagger UI from local files) and /openapi.json."
    )

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k.strip() for k in self.api_keys.split(",") if k.strip())

    @property
    def decode_budget_bytes(self) -> int:
        return int(self.decode_budget_mb * 1024 * 1024)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def body_limit_bytes(self, files: int) -> int:
        """The largest request body carrying ``files`` uploads, each with its multipart framing
        (deploy/nginx's client_max_body_size values are these, for the defaults)."""
        return (self.max_upload_bytes + MULTIPART_OVERHEAD) * files

    def infer_json_limit_bytes(self) -> int:
        """The largest JSON part of a /v2 inference request: one file's worth in base64."""
        return self.body_limit_bytes(1) * 4 // 3

    def infer_body_limit_bytes(self) -> int:
        """The largest /v2 inference request: max_files files as binary data after the JSON."""
        return max(self.body_limit_bytes(self.max_files), self.infer_json_limit_bytes())

    def cache_dir(self, root: str) -> Path:
        if self.model_cache:
            return Path(self.model_cache).expanduser()
        if "://" in root and not root.startswith("file://"):
            return user_cache() / paths.USER_MODELS_DIR
        return Path(root.removeprefix("file://")) / paths.SERVING_CACHE_DIR
