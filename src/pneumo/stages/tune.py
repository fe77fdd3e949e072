"""`pneumo tune`: Optuna's TPE over the config's ``tune.space``, each trial a training run.

Each trial trains on the prepared train split and is judged by validation AUROC, reported
epoch by epoch so the pruner can stop trials that trail (the test split is never opened). The
study is kept in a database (:mod:`pneumo.stages.tune_study`), so the same command run again
continues it: finished trials stay finished, and a trial killed mid-run continues its own
training run. Every trial is an MLflow child run of the study's parent run.

After every trial, ``$ROOT/tuning/<study>/`` gets ``best.yaml`` (the best trial's whole config,
for ``pneumo train -c``), ``report.html`` and ``trials.csv``, so a kill loses nothing that was
learnt. Under torchrun, rank 0 owns the study: it sends every rank the trial's config, asks the
pruner after each epoch and broadcasts its verdict (:class:`pneumo.training.fit.Supervision`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pneumo
from pneumo import paths, storage
from pneumo.config import ExperimentConfig, dump_config, load_config
from pneumo.data.prepared import load_prepared
from pneumo.data.sources import datasets
from pneumo.data.sources.datasets import Dataset
from pneumo.errors import ConfigError, PneumoError
from pneumo.reports import tuning as report
from pneumo.reports.terminal import tuning_summary
from pneumo.settings import Settings, get_settings
from pneumo.stages import tune_liveness as liveness
from pneumo.stages import tune_study as studies
from pneumo.stages.train import is_finished
from pneumo.training import distributed
from pneumo.training.fit import TrainResult, train
from pneumo.training.supervision import Supervision
from pneumo.training.tracking import Tracker

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
MAX_FAILURES = 3  # failed trials in a row before the study stops


@dataclass(frozen=True)
class Tuned:
    study: report.Study | None  # None on the other ranks of a torchrun job
    folder: str
    ran: int
    retried: tuple[int, ...]

    def summary(self) -> str:
        if self.study is None:
            return ""
        return tuning_summary(self.study, self.folder, self.ran, self.retried)


def run(
    dataset: str | None,
    config: str | None,
    overrides: list[str],
    *,
    study: str | None = None,
    storage_url: str | None = None,
    trials: int | None = None,
    out: str | None = None,
    progress: bool = True,
) -> Tuned:
    settings = get_settings()
    if trials is not None:
        overrides = [*overrides, f"tune.trials={trials}"]
    cfg = load_config(config, overrides)
    entry = datasets.resolve(dataset, settings)
    info, _ = distributed.setup(cfg.train.device)
    try:
        if not info.main:
            _follow(entry, settings, info, progress=False)
            return Tuned(None, "", 0, ())
        try:
            name = study or f"{entry.name}-{cfg.train.backbone}"
            return Tuner(entry, cfg, settings, name, storage_url, info).run(out, progress)
        finally:
            distributed.broadcast_object(info, None)  # the other ranks stop waiting
    finally:
        distributed.teardown(info)


def _follow(entry: Dataset, settings: Settings, info: distributed.Dist, progress: bool) -> None:
    """A rank other than 0: train each trial rank 0 sends, until it sends None."""
    while (payload := distributed.broadcast_object(info, None)) is not None:
        cfg_json, resume = payload
        try:
            cfg = ExperimentConfig.model_validate(cfg_json)
            train(entry, cfg, settings, resume=resume, progress=progress)
        except PneumoError as exc:  # rank 0 meets the same error and records it
            log.debug("rank %d: trial failed: %s", info.rank, exc.message)


class Tuner:
    """Rank 0's side of a study: asks for trials, trains them, tells the results, writes."""

    def __init__(
        self,
        entry: Dataset,
        cfg: ExperimentConfig,
        settings: Settings,
        name: str,
        storage_url: str | None,
        info: distributed.Dist,
    ) -> None:
        if not NAME.fullmatch(name):
            raise ConfigError(
                f"study name {name!r} must be letters, digits, '.', '_' or '-' (up to 100)",
                hint="pass --study NAME",
            )
        studies.check_space(cfg)
        self.entry, self.cfg, self.settings, self.name, self.info = (
            entry, cfg, settings, name, info,
        )  # fmt: skip
        self.url = storage_url or settings.tuning_storage
        manifest_hash = load_prepared(entry, settings, images=False).card["manifest_hash"]
        self.opened = studies.open_study(name, self.url, cfg, entry.name, manifest_hash)
        self.study: optuna.Study = self.opened.study
        self.folder = storage.join(settings.tuning, name)
        self.tracker = Tracker(settings)
        self.parent = self._parent_run()

    def _parent_run(self) -> str:
        known = self.study.user_attrs.get(studies.PARENT_RUN)
        if isinstance(known, str):
            self.tracker.reopen(known)
            return known
        tags = {"tune.study": self.name, "dataset": self.entry.name, "tune.storage": self.url}
        parent = self.tracker.start(f"tune-{self.name}", tags, command="pneumo tune")
        self.tracker.params(parent, {"tune": self.cfg.tune.model_dump(mode="json")})
        self.tracker.artifact(parent, dump_config(self.cfg).encode(), paths.CONFIG)
        self.study.set_user_attr(studies.PARENT_RUN, parent)
        return parent

    def run(self, out: str | None, progress: bool) -> Tuned:
        if self.opened.retried:
            log.info("trial(s) %s died with their process: queued again, to continue their "
                     "runs", ", ".join(map(str, self.opened.retried)))  # fmt: skip
        target, ran, failures = self.cfg.tune.trials, 0, 0
        last_error = ""
        while (done := studies.finished(self.study)) < target:
            trial = self.study.ask()
            liveness.claim(trial)
            log.info("trial %d (%d of %d finished)", trial.number, done, target)
            with liveness.Heartbeat(self.study, self.opened.storage, trial):
                error = self._trial(trial, progress)
            ran += 1
            failures = failures + 1 if error else 0
            last_error = error or last_error
            self._write(out)
            if failures >= MAX_FAILURES:
                raise PneumoError(
                    f"{failures} trials in a row failed, the last with: {last_error}",
                    hint=f"see {storage.join(self.folder, paths.REPORT_HTML)}; narrow "
                    "tune.space (e.g. a lower train.lr high)",
                )
        summary = self._write(out)
        for name in (paths.REPORT_HTML, paths.BEST_CONFIG, paths.TRIALS_TABLE):
            path = storage.join(self.folder, name)
            if storage.exists(path, self.settings):
                data = storage.read_bytes(path, self.settings)
                self.tracker.artifact(self.parent, data, name)
        self.tracker.finish(self.parent)
        return Tuned(summary, self.folder, ran, self.opened.retried)

    def _trial(self, trial: optuna.Trial, progress: bool) -> str | None:
        """Train one trial and tell the study how it went; its error message if it failed."""
        from optuna.trial import TrialState

        values = studies.sample(trial, self.cfg.tune.space)
        log.info("  %s", ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in values.items()))  # fmt: skip
        try:
            cfg = studies.trial_config(self.cfg, values, trial.number)
            result = self._train(trial, cfg, progress)
        except PneumoError as exc:
            trial.set_user_attr(liveness.ERROR, exc.message)
            self.study.tell(trial, state=TrialState.FAIL)
            log.warning("  trial %d failed: %s", trial.number, exc.message)
            return exc.message
        except BaseException:  # Ctrl-C or a crash: queue it again, to continue its run
            self.study.tell(trial, state=TrialState.FAIL)
            self.study.enqueue_trial(values, user_attrs=liveness.retry_attrs(trial))
            raise
        if result.pruned:
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.study.tell(trial, result.best_val_auroc)
        self.tracker.metrics(self.parent, {"trial_val_auroc": result.best_val_auroc}, trial.number)
        verdict = "pruned" if result.pruned else "complete"
        log.info("  trial %d %s after %d epoch(s): best val AUROC %.4f", trial.number, verdict,
                 result.epochs_run, result.best_val_auroc)  # fmt: skip
        return None

    def _train(self, trial: optuna.Trial, cfg: ExperimentConfig, progress: bool) -> TrainResult:
        resume = trial.user_attrs.get(liveness.RUN_DIR)
        if resume and not storage.exists(storage.join(resume, paths.LAST), self.settings):
            resume = None  # killed before its first checkpoint: start it afresh
            orphan = trial.user_attrs.get(liveness.RUN_ID)
            if isinstance(orphan, str):
                self.tracker.finish(orphan, "KILLED")
        if resume and is_finished(resume, self.settings):
            return self._finished_run(trial, resume)
        tags = {
            "mlflow.parentRunId": self.parent, "tune.study": self.name,
            "tune.trial": str(trial.number),
        }  # fmt: skip

        def on_start(run_id: str, run_dir: str) -> None:
            trial.set_user_attr(liveness.RUN_ID, run_id)
            trial.set_user_attr(liveness.RUN_DIR, run_dir)
            if resume:
                self._report_history(trial, resume)

        def after_epoch(epoch: int, val_auroc: float | None) -> bool:
            if val_auroc is None:
                return False
            trial.report(val_auroc, epoch + 1)
            return trial.should_prune()

        distributed.broadcast_object(self.info, (cfg.model_dump(mode="json"), resume))
        supervision = Supervision(tags, on_start, after_epoch)
        return train(
            self.entry, cfg, self.settings, resume=resume, progress=progress,
            supervision=supervision,
        )  # fmt: skip

    def _history(self, run_dir: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = storage.read_json(
            storage.join(run_dir, paths.HISTORY), self.settings
        )
        return rows

    def _report_history(self, trial: optuna.Trial, run_dir: str) -> None:
        """A retry continues a killed trial's run: the pruner sees its epochs so far again."""
        if not storage.exists(storage.join(run_dir, paths.HISTORY), self.settings):
            return
        for row in self._history(run_dir):
            if row.get("val_auroc") is not None:
                trial.report(row["val_auroc"], row["epoch"] + 1)

    def _finished_run(self, trial: optuna.Trial, run_dir: str) -> TrainResult:
        """The killed trial's run had trained to its end: take its result as it stands."""
        self._report_history(trial, run_dir)
        rows = [r for r in self._history(run_dir) if r.get("val_auroc") is not None]
        if not rows:
            raise PneumoError(f"run {run_dir} finished without a validation AUROC")
        best = max(rows, key=lambda r: r["val_auroc"])
        run_id = str(trial.user_attrs.get(liveness.RUN_ID, ""))
        return TrainResult(
            run_id, run_dir, storage.join(run_dir, paths.BEST), best["epoch"],
            best["val_auroc"], len(rows), False,
        )  # fmt: skip

    def _write(self, out: str | None) -> report.Study:
        """best.yaml, trials.csv and report.html as the study stands now."""
        summary = self._summary()
        files = {paths.TRIALS_TABLE: report.trials_csv(summary)}
        best = summary.best
        if best is not None:
            files[paths.BEST_CONFIG] = dump_config(
                studies.trial_config(self.cfg, dict(best.params), best.number)
            )
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        files[paths.REPORT_HTML] = report.page(summary, pneumo.__version__, stamp)
        for name, text in files.items():
            storage.write_text(storage.join(self.folder, name), text, self.settings)
        if out and best is not None:
            storage.write_text(out, files[paths.BEST_CONFIG], self.settings)
        return summary

    def _summary(self) -> report.Study:
        trials = [studies.record(t) for t in self.study.get_trials(deepcopy=False)]
        importance, why = studies.importances(self.study)
        return report.Study(
            self.name, self.url, self.entry.name, self.cfg.tune.pruner, self.cfg.tune.trials,
            trials, importance, why, self.parent,
            storage.join(self.folder, paths.BEST_CONFIG),
        )  # fmt: skip
