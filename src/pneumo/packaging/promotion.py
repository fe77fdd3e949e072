"""The promotion gate: may a version become champion, and the table that says why.

The gate, for a challenger against the current champion:

- the challenger's card is complete (:data:`pneumo.packaging.modelcard.REQUIRED`);
- both were tested on the same data (same manifest hash), or the comparison means nothing;
- the challenger's test AUROC is at least the champion's minus ``promote.max_auroc_drop``.

With no champion yet only the card is checked. ``--version N`` promotes a chosen version; a
version that was champion before is a *rollback* and skips the AUROC comparison (one rolls back
because the newer model misbehaves where the test set could not see it). ``--force`` promotes
despite a failed gate; the record says so. Moving the alias and recording it is
:mod:`pneumo.stages.promote`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pneumo.config import PromoteConfig
from pneumo.packaging.card_fields import lookup, missing_fields
from pneumo.packaging.card_rows import metric_rows, plain
from pneumo.render.markdown import table
from pneumo.render.text import DASH


@dataclass
class Gate:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)


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
    manifest = [str(lookup(c, "data.manifest_hash"))[:12] if c else DASH for c in (card, champion)]
    rows.append(["data manifest", *manifest, ""])
    champ = f"v{previous}" if previous else "(none)"
    return table(["", f"candidate v{version}", f"champion {champ}", "Δ"], rows)
