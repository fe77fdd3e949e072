"""MLflow, through an explicit client: no global tracking state, nothing set at import time.

By default runs go to a SQLite file under the root (no server to start) with artifacts in
``$ROOT/mlartifacts``; `PNEUMO_MLFLOW_TRACKING_URI` points at a shared server instead.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pneumo import storage
from pneumo.object_store import prepare_tracking
from pneumo.settings import Settings

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


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

    def start(self, run_name: str, tags: dict[str, str]) -> str:
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags)
        return str(run.info.run_id)

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
