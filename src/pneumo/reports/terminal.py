"""Human-readable summaries of what a command did, for the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pneumo.data.preparation import PrepareResult
    from pneumo.packaging.promotion import Promotion
    from pneumo.stages.evaluate import EvaluationResult
    from pneumo.stages.register import Registered


def summarize_prepare(result: PrepareResult) -> str:
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
    for split, s in card["splits"].items():
        patients = f", {s['patients']:,} patients" if s.get("patients") is not None else ""
        prevalence = f"{s['prevalence']:.1%}" if s.get("prevalence") is not None else "n/a"
        positives = f"{s['pneumonia']:,} positive ({prevalence})"
        lines.append(f"  {split:<5} {s['images']:>7,} images{patients}, {positives}")
    probs = card["problems"]
    if probs["total"]:
        lines.append(f"{probs['total']} problem(s), left out of the manifest:")
        lines.extend(f"  {n:>5}  {reason}" for reason, n in probs["by_reason"].items())
        lines.extend(
            f"    {e['file']}: {e['reason']}" + (f" ({e['detail']})" if e.get("detail") else "")
            for e in probs["examples"][:10]
        )
        lines.append(f"  all of them: {result.out}/problems.csv")
    lines.extend(f"note: {n}" for n in card.get("notes", []))
    lines.append(f"manifest: {result.manifest}")
    lines.append(f"data card: {result.out}/data_card.json")
    return "\n".join(lines)


def _ci(metric: dict[str, float | None] | None) -> str:
    if not metric or metric.get("value") is None:
        return "n/a"
    low, high = metric.get("ci_low"), metric.get("ci_high")
    ci = f" (95% CI {low:.3f}-{high:.3f})" if low is not None and high is not None else ""
    return f"{metric['value']:.3f}{ci}"


def summarize_evaluation(result: EvaluationResult) -> str:
    s = result.summary
    rule = s.get("threshold_rule", {})
    lines = [
        f"{s['n']:,} images, {s['positives']:,} with Pneumonia ({result.out})",
        f"AUROC {_ci(s.get('auroc'))}   AUPRC {_ci(s.get('auprc'))}",
        f"threshold {s['threshold']:.4f} ({rule.get('method', '?')} on validation)",
    ]
    for key in ("accuracy", "sensitivity", "specificity", "ppv", "npv"):
        value = s.get(key)
        lines.append(f"  {key:<12} {_ci(value if isinstance(value, dict) else {'value': value})}")
    lines.append(f"report: {result.files.get('report.md', result.out)}")
    return "\n".join(lines)


def summarize_registration(result: Registered) -> str:
    card = result.card
    parity = card["parity"]
    return "\n".join(
        [
            f"registered '{result.name}' version {result.version} (alias challenger) "
            f"from run {result.run_id}",
            f"test AUROC {_ci(card['metrics'].get('auroc'))}, threshold "
            f"{card['threshold']['value']:.4f} ({card['threshold']['method']} on "
            f"{card['threshold']['chosen_on']})",
            f"ONNX parity: max |Δp| {parity['max_abs_diff']:.1e} on {parity['images']} "
            f"validation images (tolerance {parity['tolerance']:.0e})",
            f"package: {result.folder} (model card: card.html)",
            "next: `pneumo promote` (gate against the champion), then `pneumo serve`",
        ]
    )


def summarize_promotion(result: Promotion) -> str:
    verb = "rolled back" if result.kind == "rollback" else "promoted"
    forced = " (FORCED past a failed gate)" if result.record["forced"] else ""
    before = f"v{result.previous}" if result.previous else "none"
    checks = "; ".join(result.record["gate"]["checks"] + result.record["gate"]["reasons"])
    return (
        f"{verb} version {result.version} to champion{forced} (was {before})\n"
        f"gate: {checks}\n\n{result.table}"
    )


def summarize_history(name: str) -> str:
    from pneumo.packaging.registry import ModelRegistry
    from pneumo.settings import get_settings

    reg = ModelRegistry(get_settings(), name)
    aliases = reg.aliases()
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(version, []).append(alias)
    lines = [f"model '{name}' in {reg.uri}"]
    for v in reg.versions():
        marks = ",".join(sorted(by_version.get(v.version, [])))
        lines.append(
            f"  v{v.version:<4} {marks:<22} test AUROC {v.tags.get('test_auroc', '?'):<9} "
            f"run {v.run_id}"
        )
    records = reg.promotions()
    lines.append("promotions:" if records else "no promotions yet")
    for r in records:
        forced = " FORCED" if r.get("forced") else ""
        lines.append(
            f"  {r['when']}  {r['kind']:<9} v{r['version']} (was {r.get('previous') or '-'})"
            f"{forced} by {r['who']}: {r.get('why') or '(no reason given)'}"
        )
    return "\n".join(lines)
