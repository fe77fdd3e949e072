"""Which RUNNING trials are dead: this host's with no process, anyone's whose heartbeat stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna

from pneumo.stages import tune_liveness as liveness


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_dead_trials_are_failed_and_queued_again_with_their_run(tmp_path: Path) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    here, gone = socket.gethostname(), _dead_pid()
    attrs = {
        "killed here": {liveness.HOST: here, liveness.PID: gone},
        "alive here": {liveness.HOST: here, liveness.PID: os.getpid()},
        "silent elsewhere": {liveness.HOST: "node-7", liveness.PID: 1,
                             liveness.HEARTBEAT: time.time() - 2 * liveness.GRACE_SECONDS},
        "beating elsewhere": {liveness.HOST: "node-7", liveness.PID: 1,
                              liveness.HEARTBEAT: time.time()},
    }  # fmt: skip
    for i, values in enumerate(attrs.values()):
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        for key, value in values.items():
            trial.set_user_attr(key, value)
        trial.set_user_attr(liveness.RUN_DIR, f"/runs/{i}")
    assert liveness.retry_dead_trials(study, storage) == (0, 2)
    states = [t.state.name for t in study.trials]
    assert states == ["FAIL", "RUNNING", "FAIL", "RUNNING", "WAITING", "WAITING"]
    retry = study.trials[4]
    assert retry.user_attrs == {liveness.RETRY_OF: 0, liveness.RUN_DIR: "/runs/0"}
    assert retry.system_attrs["fixed_params"] == study.trials[0].params
    assert "died" in study.trials[0].user_attrs[liveness.ERROR]


def test_a_heartbeat_beats_while_its_block_runs(tmp_path: Path) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    before = time.time()
    with liveness.Heartbeat(study, storage, trial) as beating:
        assert beating.thread.is_alive()
    assert not beating.thread.is_alive()
    assert study.trials[0].user_attrs[liveness.HEARTBEAT] >= before
