"""What a command did, in a few lines for the terminal (each stage's result calls one of these).

Every function takes plain values (a data card, a metrics summary, a model card, registry
records), never a stage's own objects, so reports stay below the stages that use them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pneumo import paths
from pneumo.data.preparation import PrepareResult
from pneumo.metrics.names import CARD_METRICS
from pneumo.packaging.external_results import one_line
from pneumo.render.text import with_interval
from pneumo.reports.tuning import STATES, Study


def _ci(entry: Any) -> str:
    return with_interval(entry if isinstance(entry, Mapping) else {"value": entry}, label="95% CI ")


def prepare_summary(result: PrepareResult) -> str:
    card = result.card
    totals = card["totals"]
    lines = []
    if result.up_to_date:
        lines.append(f"up to date: inputs and config unchanged since the last run ({result.out})")
    if totals.get("quarantined"):
        lines.append(
            f"{totals['listed']:,} images listed, {totals['quarantined']:,} quarantined (see below)"
        )
    lines.append(
        f"{card['dataset']}: {totals['images']:,} usable images"
        + (f", {totals['patients']:,} patients" if totals.get("patients") is not None else "")
        + f", {totals['pneumonia']:,} with Pneumonia ({card['mode']})"
    )
    lines.append(f"split: {card['split_method']}")
    twins = card.get("near_duplicates")
    if twins:
        lines.append(
            f"twins (re-encoded or resized copies): {twins['groups']} group(s) of "
            f"{twins['images']} image(s), {twins['across_splits']} across splits, "
            f"{twins['moved_images']} image(s) moved to keep each group in one split"
        )
    for split, s in card["splits"].items():
        patients = f", {s['patients']:,} patients" if s.get("patients") is not None else ""
        prevalence = f"{s['prevalence']:.1%}" if s.get("prevalence") is not None else "n/a"
        positives = f"{s['pneumonia']:,} positive ({prevalence})"
        lines.append(f"  {split:<5} {s['images']:>7,} images{patients}, {positives}")
    lines.extend(_problems(card["problems"], result.out))
    lines.extend(f"note: {n}" for n in card.get("notes", []))
    lines.append(f"manifest: {result.manifest}")
    lines.append(f"data card: {result.data_card}")
    return "\n".join(lines)


def _problems(problems: Mapping[str, Any], folder: str) -> list[str]:
    if not problems["total"]:
        return []
    lines = [f"{problems['total']} problem(s), left out of the manifest:"]
    lines.extend(f"  {n:>5}  {reason}" for reason, n in problems["by_reason"].items())
    lines.extend(
        f"    {e['file']}: {e['reason']}" + (f" ({e['detail']})" if e.get("detail") else "")
        for e in problems["examples"][:10]
    )
    lines.append(f"  all of them: {folder}/{paths.PROBLEMS}")
    return lines


def evaluation_summary(metrics: Mapping[str, Any], out: str, report: str) -> str:
    rule = metrics.get("threshold_rule", {})
    lines = [
        f"{metrics['n']:,} images, {metrics['positives']:,} with Pneumonia ({out})",
        f"AUROC {_ci(metrics.get('auroc'))}   AUPRC {_ci(metrics.get('auprc'))}",
        f"threshold {metrics['threshold']:.4f} ({rule.get('method', '?')} on validation)",
    ]
    for key in CARD_METRICS[2:]:  # the ratios at the threshold
        lines.append(f"  {key:<12} {_ci(metrics.get(key))}")
    lines.append(f"report: {report}")
    return "\n".join(lines)


def external_summary(metrics: Mapping[str, Any], out: str, report: str, recorded: list[str]) -> str:
    """An external evaluation: the usual summary, what the model expected, what was left out."""
    lines = [evaluation_summary(metrics, out, report).replace("on validation)", "carried)")]
    for split, own in metrics.get("expected", {}).items():
        shown = [k for k in CARD_METRICS if (own.get(k) or {}).get("value") is not None]
        figures = [f"{k} {own[k]['value']:.3f}" for k in shown]
        lines.append(f"expected (its own {split} split): " + ", ".join(figures))
    left = metrics["exclusions"]
    if left.get("checked_against"):
        lines.append(
            f"left out: {left['seen_identical']:,} identical to and {left['seen_twins']:,} "
            "re-encoded copies of the model's training or validation images"
        )
    else:
        lines.append("NOT checked against the model's training images (none known here)")
    lines.append(f"          {left['unusable']:,} unusable, {left['duplicates']:,} duplicates")
    lines.append("recorded on: " + ("; ".join(recorded) if recorded else "nothing (not tracked)"))
    return "\n".join(lines)


def training_summary(
    run_id: str,
    epochs: int,
    early: bool,
    best: tuple[float, int],
    folder: str,
    tracking: tuple[str, str],
) -> str:
    """``best`` is (val AUROC, epoch index); ``tracking`` (tracking URI, experiment)."""
    stop = " (early stop)" if early else ""
    return (
        f"run {run_id}: {epochs} epoch(s){stop}, best val AUROC {best[0]:.4f} at epoch "
        f"{best[1] + 1}\ncheckpoint: {folder}/{paths.BEST}\n"
        f"history: {folder}/{paths.HISTORY_FIGURE}\n"
        f"MLflow: {tracking[0]} (experiment '{tracking[1]}')"
    )


def registration_summary(
    name: str, version: str, run_id: str, folder: str, card: Mapping[str, Any]
) -> str:
    parity, threshold = card["parity"], card["threshold"]
    return "\n".join(
        [
            f"registered '{name}' version {version} (alias challenger) from run {run_id}",
            f"test AUROC {_ci(card['metrics'].get('auroc'))}, threshold "
            f"{threshold['value']:.4f} ({threshold['method']} on {threshold['chosen_on']})",
            f"ONNX parity: max |Δp| {parity['max_abs_diff']:.1e} on {parity['images']} "
            f"validation images (tolerance {parity['tolerance']:.0e})",
            f"package: {folder} (model card: card.html)",
            "next: `pneumo promote` (gate against the champion), then `pneumo serve`",
        ]
    )


def promotion_summary(
    version: str, previous: str | None, record: Mapping[str, Any], table: str
) -> str:
    verb = "rolled back" if record["kind"] == "rollback" else "promoted"
    forced = " (FORCED past a failed gate)" if record["forced"] else ""
    before = f"v{previous}" if previous else "none"
    checks = "; ".join(record["gate"]["checks"] + record["gate"]["reasons"])
    return f"{verb} version {version} to champion{forced} (was {before})\ngate: {checks}\n\n{table}"


def history_summary(
    name: str,
    uri: str,
    versions: Sequence[tuple[str, str, str | None]],
    aliases: Mapping[str, str],
    records: Sequence[Mapping[str, Any]],
    external: Mapping[str, Mapping[str, dict[str, Any]]] | None = None,
) -> str:
    """``versions`` holds (version, test AUROC tag, run id) in version order; ``external`` each
    version's results on data it never saw (label → record)."""
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(version, []).append(alias)
    lines = [f"model '{name}' in {uri}"]
    for version, auroc, run_id in versions:
        marks = ",".join(sorted(by_version.get(version, [])))
        lines.append(f"  v{version:<4} {marks:<22} test AUROC {auroc:<9} run {run_id}")
        for label, record in (external or {}).get(version, {}).items():
            lines.append(f"         external {one_line(label, record)}")
    lines.append("promotions:" if records else "no promotions yet")
    for r in records:
        forced = " FORCED" if r.get("forced") else ""
        lines.append(
            f"  {r['when']}  {r['kind']:<9} v{r['version']} (was {r.get('previous') or '-'})"
            f"{forced} by {r['who']}: {r.get('why') or '(no reason given)'}"
        )
    return "\n".join(lines)


def tuning_summary(study: Study, folder: str, ran: int, retried: Sequence[int]) -> str:
    counts = ", ".join(f"{study.count(s)} {s}" for s in STATES if study.count(s))
    lines = [f"study {study.name}: {counts} ({ran} run now; {study.target} finished asked for)"]
    if retried:
        lines.append(f"  continued the run(s) of killed trial(s) {', '.join(map(str, retried))}")
    best = study.best
    if best is not None:
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in sorted(best.params.items()))  # fmt: skip
        lines.append(f"best: trial {best.number}, val AUROC {best.value:.4f} ({params})")
        lines.append(f"  run {best.run_id}; its config: {folder}/{paths.BEST_CONFIG}")
        lines.append(f"  train it again: pneumo train -c {folder}/{paths.BEST_CONFIG}")
    lines.append(f"report: {folder}/{paths.REPORT_HTML}")
    lines.append(f"study database: {study.storage}")
    if study.parent_run:
        lines.append(f"MLflow parent run: {study.parent_run}")
    return "\n".join(lines)
