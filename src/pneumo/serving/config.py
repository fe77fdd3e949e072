"""Service settings from the environment (prefix ``PNEUMO_``), next to :class:`Settings`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServeSettings(BaseSettings):
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
    max_batch: int = Field(16, ge=1, description="Most images in one ONNX Runtime call.")
    max_wait_ms: float = Field(
        5.0, ge=0, description="How long a batch waits for requests still being decoded."
    )
    poll_seconds: float = Field(
        30.0, ge=0, description="How often the registry alias is checked; 0: never (no hot swap)."
    )
    ort_threads: int = Field(0, ge=0, description="ONNX Runtime intra-op threads; 0: all cores.")
    model_cache: str | None = Field(None, description="Where downloaded models are kept.")

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k.strip() for k in self.api_keys.split(",") if k.strip())

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def cache_dir(self, root: str) -> Path:
        if self.model_cache:
            return Path(self.model_cache).expanduser()
        if "://" in root and not root.startswith("file://"):
            return Path("~/.cache/pneumo/models").expanduser()
        return Path(root.removeprefix("file://")) / "serving-cache"
