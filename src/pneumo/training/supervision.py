"""What a caller that runs many trainings (`pneumo tune`) adds to each of them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Supervision:
    """What a caller that runs many trainings (`pneumo tune`) adds to one of them.

    ``tags`` go on the MLflow run (e.g. ``mlflow.parentRunId``); ``on_start(run_id, run_dir)``
    runs once the run has its id and folder (again on resume); ``after_epoch(epoch, val_auroc)``
    runs after every epoch's validation and returns True to stop the run there (pruning). Both
    run on rank 0 only; rank 0's verdict is broadcast, so every rank of a torchrun job stops at
    the same epoch.
    """

    tags: Mapping[str, str] = field(default_factory=dict)
    on_start: Callable[[str, str], None] | None = None
    after_epoch: Callable[[int, float | None], bool] | None = None
