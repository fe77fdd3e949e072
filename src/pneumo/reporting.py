"""Human-readable summaries of what a command did, for the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pneumo.data.prepare import PrepareResult
    from pneumo.evaluation.evaluate import EvaluationResult


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
