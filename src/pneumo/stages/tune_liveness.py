"""Which trials are alive: who runs a trial, its heartbeat, and retries of the dead ones.

A trial is claimed by its process (host and pid) and beats every :data:`BEAT_SECONDS` while it
trains. A RUNNING trial is dead when it is this host's and its process is gone (found at once),
or when its heartbeat is older than :data:`GRACE_SECONDS` (a worker lost on another machine).
A dead trial is marked failed and queued again with the same values and the run to continue.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pneumo.processes import pid_alive

if TYPE_CHECKING:
    import optuna

HOST, PID, RUN_ID, RUN_DIR = "host", "pid", "run_id", "run_dir"
RETRY_OF, ERROR, HEARTBEAT = "retry_of", "error", "heartbeat"
BEAT_SECONDS = 60.0
GRACE_SECONDS = 600.0


def is_dead(t: optuna.trial.FrozenTrial, now: float) -> bool:
    """This host's trial whose process is gone, or anyone's whose heartbeat stopped long ago."""
    beat = t.user_attrs.get(HEARTBEAT)
    if isinstance(beat, int | float) and now - beat > GRACE_SECONDS:
        return True
    pid = t.user_attrs.get(PID)
    return (
        t.user_attrs.get(HOST) == socket.gethostname()
        and isinstance(pid, int)
        and (not pid_alive(pid))
    )


def retry_dead_trials(study: optuna.Study, storage: optuna.storages.BaseStorage) -> tuple[int, ...]:
    """Fail the RUNNING trials of dead processes and queue their retries."""
    from optuna.trial import TrialState

    study_id = storage.get_study_id_from_name(study.study_name)
    retried = []
    now = time.time()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not is_dead(t, now):
            continue  # still running here, or on a machine whose heartbeat is recent
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        storage.set_trial_user_attr(trial_id, ERROR, "its process died (killed?)")
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs=retry_attrs(t))
        retried.append(t.number)
    return tuple(retried)


def retry_attrs(t: optuna.Trial | optuna.trial.FrozenTrial) -> dict[str, Any]:
    """What a retry of ``t`` starts with: which trial it retries, and the run to continue."""
    attrs: dict[str, Any] = {RETRY_OF: t.number}
    for key in (RUN_ID, RUN_DIR):
        if t.user_attrs.get(key):
            attrs[key] = t.user_attrs[key]
    return attrs


def claim(trial: optuna.Trial) -> None:
    """Mark ``trial`` as this process's, for :func:`retry_dead_trials`."""
    trial.set_user_attr(HOST, socket.gethostname())
    trial.set_user_attr(PID, os.getpid())


class Heartbeat:
    """``with Heartbeat(study, storage, trial):`` beats for ``trial`` until the block ends."""

    def __init__(
        self, study: optuna.Study, storage: optuna.storages.BaseStorage, trial: optuna.Trial
    ) -> None:
        study_id = storage.get_study_id_from_name(study.study_name)
        self.trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        self.storage = storage
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="tune-heartbeat", daemon=True)

    def beat(self) -> None:
        self.storage.set_trial_user_attr(self.trial_id, HEARTBEAT, time.time())

    def _run(self) -> None:
        while not self.stop.wait(BEAT_SECONDS):
            try:
                self.beat()
            except Exception:  # a busy database: the next beat tries again
                continue

    def __enter__(self) -> Heartbeat:
        self.beat()
        self.thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop.set()
        self.thread.join()
