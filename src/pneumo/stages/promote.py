"""`pneumo promote`: move alias ``champion`` to a version through the gate; every move recorded.

The gate itself is :func:`pneumo.packaging.promotion.check_gate`. Records go to the registry
(see :class:`pneumo.packaging.registry.ModelRegistry`): registered-model tags ``promotion/NNNN``
and tags on the promoted version.
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pneumo.config import PromoteConfig, load_config
from pneumo.errors import PneumoError
from pneumo.packaging.external_results import results_in
from pneumo.packaging.promotion import check_gate, comparison_table
from pneumo.packaging.registry import CHALLENGER, CHAMPION, ModelRegistry
from pneumo.reports.terminal import history_summary, promotion_summary
from pneumo.settings import Settings, get_settings


@dataclass(frozen=True)
class Promotion:
    version: str
    previous: str | None
    kind: str  # "promotion" | "rollback"
    record: dict[str, Any]
    table: str

    def summary(self) -> str:
        return promotion_summary(self.version, self.previous, self.record, self.table)


class PromotionRefusedError(PneumoError):
    """The gate failed and --force was not given."""


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def promote(
    cfg: PromoteConfig,
    settings: Settings | None = None,
    *,
    name: str = "pneumonia",
    version: str | None = None,
    force: bool = False,
    reason: str = "",
) -> Promotion:
    settings = settings or get_settings()
    reg = ModelRegistry(settings, name)
    aliases = reg.aliases()
    target = version or aliases.get(CHALLENGER)
    if target is None:
        raise PneumoError(
            f"model '{name}' has no challenger to promote in {reg.uri}",
            hint="register a run first: `pneumo register RUN`",
        )
    reg.info(target)  # a clear error for a version that does not exist
    previous = aliases.get(CHAMPION)
    if previous == target:
        raise PneumoError(f"version {target} of '{name}' is already the champion")
    history = reg.promotions()
    rollback = any(str(r.get("version")) == target for r in history)
    card = reg.card(target).to_dict()
    champion = reg.card(previous).to_dict() if previous else None
    gate = check_gate(card, champion, cfg, rollback=rollback)
    table = comparison_table(target, card, previous, champion)
    if not gate.passed and not force:
        raise PromotionRefusedError(
            f"promotion of '{name}' v{target} refused: {'; '.join(gate.reasons)}\n\n{table}",
            hint="fix the cause, or override with --force --reason '...' (recorded)",
        )
    when, who = datetime.now(UTC).isoformat(timespec="seconds"), _who()
    forced = bool(force and not gate.passed)
    record: dict[str, Any] = {
        "version": target,
        "previous": previous,
        "kind": "rollback" if rollback else "promotion",
        "who": who,
        "when": when,
        "why": reason,
        "forced": forced,
        "gate": {"passed": gate.passed, "reasons": gate.reasons, "checks": gate.checks},
    }
    reg.set_alias(CHAMPION, target)
    reg.record_promotion(record)
    reg.set_version_tags(
        target,
        {"promoted_at": when, "promoted_by": who, "promotion_reason": reason,
         "promotion_forced": str(forced).lower()},
    )  # fmt: skip
    return Promotion(target, previous, str(record["kind"]), record, table)


@dataclass(frozen=True)
class History:
    name: str
    uri: str
    versions: list[tuple[str, str, str | None]]  # (version, test AUROC tag, run id)
    aliases: dict[str, str]
    records: list[dict[str, Any]]
    external: dict[str, dict[str, dict[str, Any]]]  # version → label → result record

    def summary(self) -> str:
        return history_summary(
            self.name, self.uri, self.versions, self.aliases, self.records, self.external
        )


def history(name: str, settings: Settings | None = None) -> History:
    """The versions of ``name``, its aliases and every promotion recorded."""
    reg = ModelRegistry(settings or get_settings(), name)
    found = reg.versions()
    versions = [(v.version, v.tags.get("test_auroc", "?"), v.run_id) for v in found]
    external = {v.version: results_in(v.tags) for v in found}
    return History(name, reg.uri, versions, reg.aliases(), reg.promotions(), external)


def run(
    config: str | None,
    overrides: list[str],
    *,
    version: str | None = None,
    force: bool = False,
    reason: str = "",
    show_history: bool = False,
) -> Promotion | History:
    cfg = load_config(config, overrides)
    if show_history:
        return history(cfg.registry.name)
    return promote(cfg.promote, name=cfg.registry.name, version=version, force=force, reason=reason)
