"""The MLflow model registry, as pneumo uses it: one registered model, two aliases.

``challenger`` points at the newest registered version, ``champion`` at the one that serves.
Promotions are recorded on the registered model as tags ``promotion/NNNN`` (JSON: version,
previous champion, who, when, why, forced, gate verdict), so the history lives in the registry
itself, next to the versions. Only MLflow's tracking client is imported (never torch), so the
inference service can resolve ``models:/pneumonia@champion`` with ``pneumo[serve]``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pneumo.errors import PneumoError
from pneumo.object_store import prepare_tracking
from pneumo.packaging.modelcard import ModelCard
from pneumo.paths import CARD_FILE
from pneumo.processes import pid_alive
from pneumo.settings import Settings

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)
CARD_SHA_TAG = "card_sha256"  # on each version: what its card.json must hash to
MODEL_SHA_TAG = "model_sha256"
CHALLENGER = "challenger"
CHAMPION = "champion"
PROMOTION_TAG = "promotion/"


@dataclass(frozen=True)
class ModelURI:
    """``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``."""

    name: str
    alias: str | None = None
    version: str | None = None

    @classmethod
    def parse(cls, uri: str) -> ModelURI:
        body = uri.removeprefix("models:/")
        if body == uri or not body:
            raise PneumoError(f"{uri!r} is not a model URI like models:/pneumonia@champion")
        if "@" in body:
            name, alias = body.split("@", 1)
            return cls(name, alias=alias)
        name, _, version = body.partition("/")
        if not version.isdigit():
            raise PneumoError(
                f"{uri!r}: give an alias (models:/{name}@champion) or a version number "
                f"(models:/{name}/3)"
            )
        return cls(name, version=version)

    def __str__(self) -> str:
        return (
            f"models:/{self.name}@{self.alias}"
            if self.alias
            else f"models:/{self.name}/{self.version}"
        )


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: str
    source: str
    run_id: str | None
    tags: dict[str, str]


class ModelRegistry:
    def __init__(self, settings: Settings, name: str = "pneumonia") -> None:
        from mlflow.tracking import MlflowClient

        uri = prepare_tracking(settings)
        self.uri = uri
        self.name = name
        self.client: MlflowClient = MlflowClient(tracking_uri=uri, registry_uri=uri)

    # -- versions and aliases -------------------------------------------------------------
    def create_version(
        self, source: str, run_id: str | None, tags: dict[str, str], description: str
    ) -> str:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.name)
        except MlflowException:
            self.client.create_registered_model(
                self.name, description="Pneumonia on frontal chest radiographs (pneumo)."
            )
        mv = self.client.create_model_version(
            self.name,
            source=source,
            run_id=run_id,
            tags=tags,
            description=description,
            run_link=self.run_link(run_id),
        )
        return str(mv.version)

    def run_link(self, run_id: str | None) -> str | None:
        """The run's page in the MLflow UI, when the tracking store is a server that has one."""
        if run_id is None or not self.uri.startswith(("http://", "https://")):
            return None
        experiment = self.client.get_run(run_id).info.experiment_id
        return f"{self.uri.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"

    def aliases(self) -> dict[str, str]:
        from mlflow.exceptions import MlflowException

        try:
            model = self.client.get_registered_model(self.name)
        except MlflowException:
            return {}
        return {str(k): str(v) for k, v in model.aliases.items()}

    def alias(self, alias: str) -> str | None:
        return self.aliases().get(alias)

    def set_alias(self, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(self.name, alias, version)

    def info(self, version: str) -> VersionInfo:
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version(self.name, version)
        except MlflowException:
            raise PneumoError(
                f"model '{self.name}' has no version {version} in {self.uri}",
                hint="`pneumo promote --history` lists the versions",
            ) from None
        return VersionInfo(self.name, str(mv.version), str(mv.source), mv.run_id, dict(mv.tags))

    def versions(self) -> list[VersionInfo]:
        found = self.client.search_model_versions(f"name='{self.name}'")
        return sorted(
            (
                VersionInfo(self.name, str(v.version), str(v.source), v.run_id, dict(v.tags))
                for v in found
            ),
            key=lambda v: int(v.version),
        )

    def set_version_tags(self, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(self.name, version, key, value)

    def resolve(self, uri: ModelURI) -> str:
        """The version number a model URI points at now."""
        if uri.version:
            return uri.version
        version = self.alias(str(uri.alias))
        if version is None:
            raise PneumoError(
                f"no version of '{uri.name}' has alias '{uri.alias}' in {self.uri}",
                hint="register a run (`pneumo register`) and promote it (`pneumo promote`)",
            )
        return version

    # -- artifacts -------------------------------------------------------------------------
    def card(self, version: str) -> ModelCard:
        import mlflow.artifacts

        source = self.info(version).source
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{source.rstrip('/')}/{CARD_FILE}",
                    dst_path=tmp,
                    tracking_uri=self.uri,
                )
                document = json.loads(Path(path).read_text())
            except Exception as exc:
                raise PneumoError(
                    f"the card of '{self.name}' version {version} cannot be read from {source}: "
                    f"{exc}".splitlines()[0]
                ) from None
        return ModelCard.from_dict(document, f"the card of '{self.name}' version {version}")

    def download(self, version: str, cache: Path) -> Path:
        """The version's package folder under ``cache``, downloaded once (atomically).

        A cached folder is trusted only while its card and model hash to what the registry
        recorded for the version (the tags written by `pneumo register`); an edited or corrupt
        copy is deleted and downloaded again from the registry."""
        import mlflow.artifacts

        final = cache / self.name / version
        info = self.info(version)
        if final.is_dir():
            altered = _altered(final, info.tags)
            if not altered:
                return final
            log.warning("the cached %s v%s differs from the registry (%s): downloading it "
                        "again", self.name, version, altered)  # fmt: skip
            shutil.rmtree(final, ignore_errors=True)
        source = info.source
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.name}-{version}-{os.getpid()}-", dir=cache))
        try:
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=source, dst_path=str(tmp), tracking_uri=self.uri
            )
            final.parent.mkdir(parents=True, exist_ok=True)
            Path(path).rename(final)
        except Exception as exc:  # MLflow and the stores raise many types; say which version
            if not final.is_dir():
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise PneumoError(
                    f"cannot download {self.name} v{version} from {source}: {reason}",
                    hint="check the artifact store's credentials and endpoint",
                ) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    def clean_abandoned(self, cache: Path) -> int:
        """Delete the temporary folders of downloads whose process is gone (a kill mid-way)."""
        removed = 0
        for folder in cache.glob(f".{self.name}-*-*-*") if cache.is_dir() else []:
            parts = folder.name.split("-")
            pid = int(parts[-2]) if len(parts) >= 4 and parts[-2].isdigit() else 0
            if pid and pid_alive(pid):
                continue
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
        return removed

    # -- promotion history -----------------------------------------------------------------
    def promotions(self) -> list[dict[str, Any]]:
        from mlflow.exceptions import MlflowException

        try:
            tags = self.client.get_registered_model(self.name).tags
        except MlflowException:
            return []
        keys = sorted(k for k in tags if k.startswith(PROMOTION_TAG))
        return [json.loads(tags[k]) for k in keys]

    def record_promotion(self, record: dict[str, Any]) -> None:
        number = len(self.promotions()) + 1
        self.client.set_registered_model_tag(
            self.name, f"{PROMOTION_TAG}{number:04d}", json.dumps(record, sort_keys=True)
        )


def _altered(folder: Path, tags: dict[str, str]) -> str:
    """What in a cached package differs from the registry's record ("" when nothing does)."""
    from pneumo.packaging.package import sha256_bytes
    from pneumo.paths import MODEL_FILE

    for name, tag in ((CARD_FILE, CARD_SHA_TAG), (MODEL_FILE, MODEL_SHA_TAG)):
        expected = tags.get(tag)
        if not expected:
            continue  # registered before the tag existed
        path = folder / name
        if not path.is_file() or sha256_bytes(path.read_bytes()) != expected:
            return f"{name} does not hash to the registered {tag}"
    return ""
