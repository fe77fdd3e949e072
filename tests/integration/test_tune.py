"""`pneumo tune` for real: Optuna's SQLite study under the root, MLflow child runs, best.yaml,
the report, kill-and-resume without repeating a finished trial, pruning under torchrun."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pneumo.config import load_config
from pneumo.training.fit import train
from pneumo.training.supervision import Supervision
from tests.conftest import TINY_TRAIN, tiny_prepared

SPACE = (
    "tune.space={train.lr: {low: 0.0001, high: 0.003, log: true}, "
    "train.dropout: {low: 0, high: 0.5}}"
)


def _tune(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pneumo", "tune", "--quiet", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


def _study(root: Path, name: str) -> Any:
    import optuna

    storage = f"sqlite:///{root / 'tuning' / 'optuna.db'}"
    return optuna.load_study(study_name=name, storage=storage)


def _runs(root: Path) -> list[Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("pneumo")
    assert experiment is not None
    return list(client.search_runs([experiment.experiment_id]))


def _trials_csv(root: Path, name: str) -> list[dict[str, str]]:
    with (root / "tuning" / name / "trials.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_a_study_of_child_runs_a_best_config_and_a_report(pneumo_root: Path) -> None:
    entry = tiny_prepared()
    args = ["-d", entry.name, "--trials", "3", "--study", "s1", *TINY_TRAIN, SPACE]
    first = _tune(*args, "tune.startup_trials=2", "tune.pruner=none")
    assert first.returncode == 0, first.stderr
    assert "study s1: 3 complete (3 run now" in first.stdout

    study = _study(pneumo_root, "s1")
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    runs = _runs(pneumo_root)
    parents = [r for r in runs if r.info.run_name == "tune-s1"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0].info.run_id
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent]
    assert sorted(r.data.tags["tune.trial"] for r in children) == ["0", "1", "2"]
    assert {t.user_attrs["run_id"] for t in study.trials} == {r.info.run_id for r in children}
    for r in children:  # each trial's sampled values are the run's own parameters
        trial = study.trials[int(r.data.tags["tune.trial"])]
        assert float(r.data.params["train.lr"]) == pytest.approx(trial.params["train.lr"])

    folder = pneumo_root / "tuning" / "s1"
    best = load_config(str(folder / "best.yaml"))
    assert best.train.lr == pytest.approx(study.best_trial.params["train.lr"])
    assert best.train.dropout == pytest.approx(study.best_trial.params["train.dropout"])
    assert best.train.backbone == "resnet18" and best.train.epochs == 2
    page = (folder / "report.html").read_text()
    for heading in ("Best trial", "Optimisation history", "Which settings mattered"):
        assert heading in page
    assert page.count("<img") == 2  # history and curves; importance needs 5 completed trials
    assert "importance is computed from 5 on" in page
    assert len(_trials_csv(pneumo_root, "s1")) == 3

    again = _tune(*args, "tune.startup_trials=2", "tune.pruner=none")
    assert again.returncode == 0, again.stderr
    assert "(0 run now" in again.stdout
    assert len(_runs(pneumo_root)) == len(runs)

    changed = _tune(*args, "tune.startup_trials=2", "tune.pruner=median")
    assert changed.returncode == 2
    assert "changed: tune.pruner" in changed.stderr

    trained = subprocess.run(
        [sys.executable, "-m", "pneumo", "train", "-q", "-d", entry.name, "-c",
         str(folder / "best.yaml")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr


@pytest.mark.slow
def test_a_killed_study_resumes_without_repeating_a_finished_trial(pneumo_root: Path) -> None:
    entry = tiny_prepared(patients=60)
    args = [
        "-d", entry.name, "--trials", "3", "--study", "k", *TINY_TRAIN, SPACE,
        "train.epochs=2", "train.checkpoint_every=1", "tune.pruner=none",
    ]  # fmt: skip
    cmd = [sys.executable, "-m", "pneumo", "tune", "--quiet", *args]
    proc = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 300
    killed_run = None
    while time.monotonic() < deadline and killed_run is None:
        if proc.poll() is not None:  # say why: the exit code alone does not
            stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise AssertionError(f"tune ended before it could be killed:\n{stderr[-3000:]}")
        time.sleep(0.2)
        if not (pneumo_root / "tuning" / "optuna.db").exists():
            continue
        try:
            trials = _study(pneumo_root, "k").trials
        except Exception:  # the study is being created
            continue
        running = [t for t in trials if t.number == 1 and t.state.name == "RUNNING"]
        attrs = running[0].user_attrs if running else {}
        if "run_dir" in attrs and (Path(attrs["run_dir"]) / "last.pt").exists():
            killed_run = attrs["run_id"]
    assert killed_run is not None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    again = _tune(*args)
    assert again.returncode == 0, again.stderr
    assert "continued the run(s) of killed trial(s) 1" in again.stdout
    study = _study(pneumo_root, "k")
    states = [t.state.name for t in study.trials]
    assert states[:2] == ["COMPLETE", "FAIL"] and states.count("COMPLETE") == 3
    retry = study.trials[2]
    assert retry.user_attrs["retry_of"] == 1 and retry.params == study.trials[1].params
    assert retry.user_attrs["run_id"] == killed_run  # its own run, continued
    finished = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len({tuple(sorted(t.params.items())) for t in finished}) == 3  # none repeated
    children = [r for r in _runs(pneumo_root) if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 3  # the killed trial's run was continued, not started again


def test_a_supervisor_stops_a_run_after_an_epoch(pneumo_root: Path) -> None:
    entry = tiny_prepared()
    seen: list[tuple[int, float | None]] = []
    started: list[tuple[str, str]] = []

    def judge(epoch: int, auroc: float | None) -> bool:
        seen.append((epoch, auroc))
        return True

    cfg = load_config(None, [*TINY_TRAIN, "train.epochs=3"])
    hooks = Supervision({"tune.trial": "7"}, lambda i, d: started.append((i, d)), judge)
    result = train(entry, cfg, progress=False, supervision=hooks)
    assert result.pruned and result.epochs_run == 1 and result.stopped_early
    assert [e for e, _ in seen] == [0] and started == [(result.run_id, result.run_dir)]
    run = next(r for r in _runs(pneumo_root) if r.info.run_id == result.run_id)
    assert run.data.tags["tune.trial"] == "7" and run.data.tags["pruned"] == "true"


@pytest.mark.slow
def test_under_torchrun_rank_zero_prunes_for_every_rank(pneumo_root: Path) -> None:
    entry = tiny_prepared(patients=40)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
        "--nnodes", "1", "-m", "pneumo", "tune", "--quiet", "-d", entry.name, "--trials", "2",
        "--study", "ddp", *TINY_TRAIN, "train.epochs=3", "train.device=cpu", SPACE,
        "tune.pruner=threshold", "tune.prune_below=1.0",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("study ddp:") == 1  # rank 0 alone reports
    rows = _trials_csv(pneumo_root, "ddp")
    assert [(r["state"], r["epochs"]) for r in rows] == [("pruned", "1"), ("pruned", "1")]
    runs = _runs(pneumo_root)
    assert len(runs) == 3  # one parent, one child per trial: only rank 0 tracks
    assert len(list((pneumo_root / "runs").iterdir())) == 2


def _open_at(url: str, start: float) -> str:
    from pneumo.stages.tune_study import storage_for

    while time.time() < start:  # all workers open the new database at the same moment
        pass
    try:
        storage_for(url)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def test_workers_opening_a_new_study_database_at_once_all_get_it(tmp_path: Path) -> None:
    # Without care, Optuna's schema creation races: "UNIQUE constraint failed: alembic_version"
    # or "table studies already exists" in all but one worker (seen in CI between a tune and a
    # reader of its database).
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(4) as pool:
        for i in range(3):
            url = f"sqlite:///{tmp_path / f'new{i}' / 'optuna.db'}"
            results = pool.starmap(_open_at, [(url, time.time() + 1.5)] * 4)
            assert results == ["ok"] * 4
