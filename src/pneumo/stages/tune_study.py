"""The Optuna side of `pneumo tune`: the study, its sampler and pruner, trials and their configs.

A study lives in a database (SQLite under the root by default, any SQLAlchemy URL for workers
on several machines). It remembers what it was started with (the base config without
``tune.trials``, the dataset and its manifest hash) and refuses to go on with anything else.

A trial whose process died (SIGKILL, a lost machine) stays RUNNING in the database; the next
`pneumo tune` on the study fails it and queues a retry that continues the killed trial's
training run from its ``last.pt`` (:mod:`pneumo.stages.tune_liveness` says which trials are
dead); finished trials are never run again.
"""

from __future__ import annotations

import hashlib
import random
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pneumo.config import ExperimentConfig, SearchRange, TuneConfig, dump_config
from pneumo.config import with_values as config_with
from pneumo.errors import ConfigError, PneumoError
from pneumo.reports.tuning import TrialRecord
from pneumo.stages.tune_liveness import ERROR, RETRY_OF, RUN_ID, retry_dead_trials

if TYPE_CHECKING:
    import optuna

# User attributes pneumo keeps on a study and on its trials.
FINGERPRINT, DATASET, PARENT_RUN = "pneumo.fingerprint", "pneumo.dataset", "pneumo.parent_run"
CONFIG = "pneumo.config"
MIN_FOR_IMPORTANCE = 5  # completed trials before parameter importance means anything


def kept(config: ExperimentConfig) -> ExperimentConfig:
    """What a study must keep: everything in the config but the number of trials."""
    return config.model_copy(update={"tune": config.tune.model_copy(update={"trials": 0})})


def fingerprint(config: ExperimentConfig, dataset: str, manifest_hash: str) -> str:
    text = f"{dataset}\n{manifest_hash}\n{dump_config(kept(config))}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_flat(value, f"{prefix}{key}."))
    return out


def changed(old: dict[str, Any], new: ExperimentConfig) -> list[str]:
    """The config keys whose values differ from those a study was started with."""
    before, now = _flat(old), _flat(kept(new).model_dump(mode="json"))
    return sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))


def number_kind(dotted: str) -> Literal["int", "float", "other"]:
    """Whether a config key holds integers, floats (optional floats too) or something else."""
    from pydantic import BaseModel

    model: type[BaseModel] = ExperimentConfig
    *sections, name = dotted.split(".")
    for section in sections:
        model = model.model_fields[section].annotation  # type: ignore[assignment]
    ann = model.model_fields[name].annotation
    if ann is int:
        return "int"
    if ann is float or ann == (float | None):
        return "float"
    return "other"


def check_space(config: ExperimentConfig) -> None:
    """Every searched key takes its range's ends (so no trial fails on a bad draw)."""
    for key, r in config.tune.space.items():
        kind = number_kind(key)
        if r.choices is None and kind == "other":
            raise ConfigError(
                f"tune.space.{key}: {key} is not a number",
                hint="give the values to try as choices: [...]",
            )
        ends = list(r.choices) if r.choices is not None else [r.low, r.high]
        for value in ends:
            if kind == "int" and r.choices is None:
                value = int(value)  # type: ignore[arg-type]
            config_with(config, {key: value}, f"tune.space.{key} = {value!r}")


def sample(trial: optuna.Trial, space: dict[str, SearchRange]) -> dict[str, Any]:
    """One value per searched key (an enqueued retry gets its fixed values back)."""
    values: dict[str, Any] = {}
    for key, r in space.items():
        if r.choices is not None:
            values[key] = trial.suggest_categorical(key, list(r.choices))
        elif number_kind(key) == "int":
            assert r.low is not None and r.high is not None
            step = int(r.step or 1)
            values[key] = trial.suggest_int(key, int(r.low), int(r.high), step=step, log=r.log)
        else:
            assert r.low is not None and r.high is not None
            values[key] = trial.suggest_float(key, r.low, r.high, step=r.step, log=r.log)
    return values


def trial_config(base: ExperimentConfig, values: dict[str, Any], number: int) -> ExperimentConfig:
    return config_with(base, values, f"trial {number}")


def pruner(tune: TuneConfig, epochs: int) -> optuna.pruners.BasePruner:
    """Pruners see one step per epoch, numbered from 1 (the epochs done)."""
    import optuna

    if tune.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=min(tune.min_epochs, epochs))
    if tune.pruner == "hyperband":
        low = min(tune.min_epochs, epochs)
        return optuna.pruners.HyperbandPruner(min_resource=low, max_resource=epochs)
    if tune.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=tune.startup_trials, n_warmup_steps=tune.min_epochs - 1
        )
    if tune.pruner == "threshold":
        return optuna.pruners.ThresholdPruner(
            lower=tune.prune_below, n_warmup_steps=tune.min_epochs - 1
        )
    return optuna.pruners.NopPruner()


def sampler(tune: TuneConfig, trials_so_far: int) -> optuna.samplers.BaseSampler:
    """TPE, seeded from ``tune.seed`` and the trials already run: a resumed study draws anew
    instead of replaying its first random trials. ``constant_liar`` keeps parallel workers from
    drawing the same point."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=tune.seed * 100_003 + trials_so_far,
            n_startup_trials=tune.startup_trials,
            constant_liar=True,
        )


@dataclass(frozen=True)
class Opened:
    study: optuna.Study
    storage: optuna.storages.BaseStorage
    created: bool
    retried: tuple[int, ...]  # trials of dead processes queued again


def storage_for(url: str) -> optuna.storages.BaseStorage:
    import optuna

    if url.startswith("sqlite:///"):
        from pathlib import Path

        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    # A generous SQLite timeout: several local workers may write at once.
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(SCHEMA_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except Exception as exc:  # SQLAlchemy's errors for a bad URL or an unreachable server
            if attempt + 1 < SCHEMA_ATTEMPTS and _lost_schema_race(exc):
                time.sleep(0.1 * (attempt + 1) + random.random() * 0.1)
                continue
            raise PneumoError(
                f"cannot open the tuning database {url}: {exc}",
                hint="check PNEUMO_TUNE_STORAGE / --storage (a SQLAlchemy URL)",
            ) from exc
    raise AssertionError("unreachable")


SCHEMA_ATTEMPTS = 8


def _lost_schema_race(exc: Exception) -> bool:
    """Did another worker create the schema of a new database at the same moment as this one?

    Optuna creates its tables and stamps alembic's version when it first opens a database; two
    workers doing that at once on a new file (or a new server database) make one of them fail with
    a duplicate table or version row. The schema is then there: opening again succeeds.
    """
    from sqlalchemy import exc as sa

    text = str(exc).lower()
    if isinstance(exc, sa.IntegrityError):
        return "alembic_version" in text or "unique" in text
    return isinstance(exc, sa.OperationalError) and (
        "already exists" in text or "database is locked" in text
    )


def open_study(
    name: str, url: str, config: ExperimentConfig, dataset: str, manifest_hash: str
) -> Opened:
    """The study ``name`` (created if new), checked against what it was started with."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = storage_for(url)
    existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage)}
    found = existing.get(name)
    so_far = found.n_trials if found is not None else 0
    study = optuna.create_study(
        storage=storage, study_name=name, direction="maximize", load_if_exists=True,
        sampler=sampler(config.tune, so_far), pruner=pruner(config.tune, config.train.epochs),
    )  # fmt: skip
    mark = fingerprint(config, dataset, manifest_hash)
    if found is None:
        study.set_user_attr(FINGERPRINT, mark)
        study.set_user_attr(DATASET, dataset)
        study.set_user_attr(CONFIG, kept(config).model_dump(mode="json"))
        return Opened(study, storage, True, ())
    if study.user_attrs.get(FINGERPRINT) != mark:
        keys = changed(study.user_attrs.get(CONFIG, {}), config)
        what = f"changed: {', '.join(keys[:6])}" + (" ..." if len(keys) > 6 else "")
        if not keys:
            what = f"the data changed (it tuned {study.user_attrs.get(DATASET)!r} as prepared then)"
        raise ConfigError(
            f"study {name!r} in {url} was started with another config or data ({what})",
            hint="give --study a new name, or rerun with the config and data it started with "
            "(only tune.trials may change)",
        )
    return Opened(study, storage, False, retry_dead_trials(study, storage))


def finished(study: optuna.Study) -> int:
    from optuna.trial import TrialState

    done = (TrialState.COMPLETE, TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=done))


def record(t: optuna.trial.FrozenTrial) -> TrialRecord:
    state = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed",
             "RUNNING": "running", "WAITING": "waiting"}[t.state.name]  # fmt: skip
    curve = {int(k): float(v) for k, v in t.intermediate_values.items()}
    value = t.value if t.value is not None else (curve[max(curve)] if curve else None)
    retry = t.user_attrs.get(RETRY_OF)
    return TrialRecord(
        t.number, state, value, dict(t.params), curve, t.user_attrs.get(RUN_ID),
        retry if isinstance(retry, int) else None, t.user_attrs.get(ERROR),
    )  # fmt: skip


def importances(study: optuna.Study) -> tuple[dict[str, float] | None, str]:
    """PED-ANOVA importances over completed trials, or None and why not."""
    import warnings

    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < MIN_FOR_IMPORTANCE:
        return None, (
            f"{len(complete)} completed trial(s): importance is computed from "
            f"{MIN_FOR_IMPORTANCE} on."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            found = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
            )
        except (RuntimeError, ValueError) as exc:
            return None, f"importance could not be computed: {exc}"
    return {k: float(v) for k, v in found.items()}, ""
