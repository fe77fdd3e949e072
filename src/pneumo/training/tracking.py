"""MLflow, through an explicit client: no global tracking state, nothing set at import time.

By default runs go to a SQLite file under the root (no server to start) with artifacts in
``$ROOT/mlartifacts``; `PNEUMO_MLFLOW_TRACKING_URI` points at a shared server instead.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pneumo import storage
from pneumo.object_store import prepare_tracking
from pneumo.packaging.provenance import code_version
from pneumo.settings import Settings

if TYPE_CHECKING:
    from mlflow.entities import DatasetInput
    from mlflow.tracking import MlflowClient

DIGEST_CHARS = 36  # MLflow's limit on a dataset digest (its SQL column is 36 characters)


def provenance_tags(command: str) -> dict[str, str]:
    """MLflow's system tags for where a run came from: the git commit of pneumo's code (when it
    runs from a checkout), the command, and the user."""
    tags = {
        "mlflow.source.name": command, "mlflow.source.type": "LOCAL",
        "mlflow.user": current_user(),
    }  # fmt: skip
    commit = code_version()["git_commit"]
    if commit:
        tags["mlflow.source.git.commit"] = str(commit)
    return tags


def current_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def dataset_input(card: dict[str, Any]) -> DatasetInput:
    """The prepared dataset of a data card as an MLflow dataset input: its name, the manifest
    hash as digest (cut to MLflow's 36 characters; whole in the profile), its location."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import Dataset, DatasetInput, InputTag

    source = resolve_dataset_source(str(card.get("location") or ""))
    digest = str(card["manifest_hash"])[:DIGEST_CHARS]
    described = MetaDataset(source, name=str(card.get("dataset")), digest=digest).to_dict()  # type: ignore[abstract]
    splits = {k: (v or {}).get("images") for k, v in (card.get("splits") or {}).items()}
    profile = {"manifest_hash": card["manifest_hash"], **(card.get("totals") or {}),
               "splits": splits}  # fmt: skip
    entity = Dataset(
        described["name"], described["digest"], described["source_type"],
        described["source"], None, json.dumps(profile, default=str),
    )  # fmt: skip
    return DatasetInput(entity, tags=[InputTag("mlflow.data.context", "training")])


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = json.dumps(value) if not isinstance(value, str) else value
    return out


class Tracker:
    """The few MLflow operations pneumo needs, bound to one experiment."""

    def __init__(self, settings: Settings) -> None:
        from mlflow.tracking import MlflowClient

        uri = prepare_tracking(settings)
        self.client: MlflowClient = MlflowClient(tracking_uri=uri)
        name = settings.mlflow_experiment
        found = self.client.get_experiment_by_name(name)
        self.experiment_id = (
            found.experiment_id
            if found is not None
            else self.client.create_experiment(
                name, artifact_location=storage.absolute(settings.mlflow_artifacts)
            )
        )
        self.uri = uri

    def start(
        self,
        run_name: str,
        tags: dict[str, str],
        data_card: dict[str, Any] | None = None,
        command: str = "pneumo train",
    ) -> str:
        """A new run with MLflow's provenance tags (git commit, source, user) and, given a
        prepared dataset's card, that dataset as the run's input."""
        run = self.client.create_run(
            self.experiment_id, run_name=run_name, tags={**provenance_tags(command), **tags}
        )
        run_id = str(run.info.run_id)
        if data_card is not None:
            self.client.log_inputs(run_id, datasets=[dataset_input(data_card)])
        return run_id

    def reopen(self, run_id: str) -> None:
        self.client.update_run(run_id, status="RUNNING")

    def params(self, run_id: str, config: dict[str, Any]) -> None:
        from mlflow.entities import Param

        params = [Param(k, v[:6000]) for k, v in _flatten(config).items()]
        for i in range(0, len(params), 100):
            self.client.log_batch(run_id, params=params[i : i + 100])

    def metrics(self, run_id: str, values: dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in values.items()]
        self.client.log_batch(run_id, metrics=metrics)

    def artifact(self, run_id: str, data: bytes, name: str, folder: str | None = None) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_bytes(data)
            self.client.log_artifact(run_id, str(path), folder)

    def tags(self, run_id: str, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def finish(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)
