"""`pneumo tune`'s config section: the search space and how trials are pruned.

Which keys may be searched (train.* keys of :mod:`pneumo.config`) is checked there, where the
keys are known; this module knows no other section.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SearchRange(_Frozen):
    """One searched config key: a range (``low``..``high``, ``log`` for scales such as the
    learning rate, ``step`` for a grid) or a list of ``choices``. Whether values are drawn as
    integers or floats follows the key's own type in the config."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = Field(None, gt=0.0)
    choices: tuple[str | int | float | bool | None, ...] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> SearchRange:
        if self.choices is not None:
            if self.low is not None or self.high is not None or not self.choices:
                raise ValueError("give either choices (a non-empty list) or low and high")
            return self
        if self.low is None or self.high is None:
            raise ValueError("give low and high, or choices")
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and (self.low <= 0 or self.step is not None):
            raise ValueError("a log range needs low > 0 and no step")
        return self


def _default_space() -> dict[str, SearchRange]:
    return {
        "train.lr": SearchRange(low=1e-4, high=3e-3, log=True),
        "train.weight_decay": SearchRange(low=1e-6, high=1e-3, log=True),
        "train.dropout": SearchRange(low=0.0, high=0.5),
        "train.augment.rotation_deg": SearchRange(low=0.0, high=10.0),
    }


class TuneConfig(_Frozen):
    """`pneumo tune`: Optuna's TPE over ``space``, each trial a training run judged on val AUROC.

    Pruners stop a trial whose validation AUROC, epoch by epoch, trails the others: halving
    (asynchronous successive halving: at ``min_epochs``, then 3x, 9x as many, a trial goes on
    only if in the best third of those that got there), hyperband (successive halving in several
    brackets, one of which never prunes), median (below the median of earlier trials at the same
    epoch), threshold (below ``prune_below``), none.
    """

    trials: int = Field(20, ge=1, description="Finished (complete or pruned) trials to reach.")
    pruner: Literal["halving", "hyperband", "median", "threshold", "none"] = "halving"
    min_epochs: int = Field(1, ge=1, description="Epochs a trial runs before it can be pruned.")
    prune_below: float = Field(0.6, gt=0.0, le=1.0, description="threshold pruner's val AUROC.")
    startup_trials: int = Field(
        5, ge=0, description="Random trials before TPE models the results (and median prunes)."
    )
    seed: int = Field(0, description="Seed of the sampler.")
    space: dict[str, SearchRange] = Field(default_factory=_default_space)

    @model_validator(mode="after")
    def _not_empty(self) -> TuneConfig:
        if not self.space:
            raise ValueError("tune.space is empty: name at least one train.* key to search")
        return self
