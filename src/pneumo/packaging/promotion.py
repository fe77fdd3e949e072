"""`pneumo promote`: move alias ``champion`` to a version, through a gate; every move recorded.

The gate, for a challenger against the current champion:

- the challenger's card is complete (:data:`pneumo.packaging.modelcard.REQUIRED`);
- both were tested on the same data (same manifest hash), or the comparison means nothing;
- the challenger's test AUROC is at least the champion's minus ``promote.max_auroc_drop``.

With no champion yet only the card is checked. ``--version N`` promotes a chosen version; a
version that was champion before is a *rollback* and skips the AUROC comparison (one rolls back
because the newer model misbehaves where the test set could not see it). ``--force`` promotes
despite a failed gate; the record says so. Records go to the registry (see
:class:`pneumo.packaging.registry.ModelRegistry`).
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pneumo.config import PromoteConfig
from pneumo.errors import PneumoError
from pneumo.packaging.modelcard import lookup, markdown_table, metric_rows, missing_fields, plain
from pneumo.packaging.registry import CHALLENGER, CHAMPION, ModelRegistry
from pneumo.settings import Settings, get_settings


@dataclass
class Gate:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)


class PromotionRefusedError(PneumoError):
    """The gate failed and --force was not given."""


@dataclass(frozen=True)
class Promotion:
    version: str
    previous: str | None
    kind: str  # "promotion" | "rollback"
    record: dict[str, Any]
    table: str


def check_gate(
    card: dict[str, Any], champion: dict[str, Any] | None, cfg: PromoteConfig, *, rollback: bool
) -> Gate:
    gate = Gate(passed=True)
    missing = missing_fields(card)
    if missing:
        gate.passed = False
        gate.reasons.append(f"the card is incomplete: missing {', '.join(missing)}")
    else:
        gate.checks.append("card complete")
    if champion is None:
        gate.checks.append("no champion yet")
        return gate
    if rollback:
        gate.checks.append("rollback to a former champion: AUROC comparison skipped")
        return gate
    ours, theirs = lookup(card, "data.manifest_hash"), lookup(champion, "data.manifest_hash")
    if ours != theirs:
        gate.passed = False
        gate.reasons.append(
            f"tested on different data (manifest {str(ours)[:12]} vs the champion's "
            f"{str(theirs)[:12]}): the AUROCs are not comparable"
        )
        return gate
    new, old = lookup(card, "metrics.auroc.value"), lookup(champion, "metrics.auroc.value")
    if new is None or old is None:
        gate.passed = False
        gate.reasons.append("a test AUROC is missing")
    elif new < old - cfg.max_auroc_drop:
        gate.passed = False
        gate.reasons.append(
            f"test AUROC {new:.4f} is more than {cfg.max_auroc_drop:g} below the champion's "
            f"{old:.4f}"
        )
    else:
        gate.checks.append(f"test AUROC {new:.4f} >= champion {old:.4f} - {cfg.max_auroc_drop:g}")
    return gate


def comparison_table(
    version: str, card: dict[str, Any], previous: str | None, champion: dict[str, Any] | None
) -> str:
    """A markdown table: candidate vs champion, metric by metric, with the delta."""
    rows = metric_rows(card, champion)
    for label, path in (("threshold", "threshold.value"), ("test images", "metrics.n")):
        rows.append([label, plain(lookup(card, path)), plain(lookup(champion or {}, path)), ""])
    manifest = [str(lookup(c, "data.manifest_hash"))[:12] if c else "—" for c in (card, champion)]
    rows.append(["data manifest", *manifest, ""])
    champ = f"v{previous}" if previous else "(none)"
    return markdown_table(["", f"candidate v{version}", f"champion {champ}", "Δ"], rows)


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
    card = reg.card(target)
    champion = reg.card(previous) if previous else None
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
