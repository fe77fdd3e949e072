"""report.md: the evaluation in prose and tables, ending with its caveats.

The caveats are derived from the numbers (few positives, image-level intervals, a threshold
evaluated on the split that chose it, tiny subgroups, poor calibration), so a reader sees the
limits of a result next to it rather than in someone's memory.
"""

from __future__ import annotations

from typing import Any

HEADLINE = (
    ("auroc", "AUROC"),
    ("auprc", "AUPRC (average precision)"),
    ("sensitivity", "Sensitivity (recall)"),
    ("specificity", "Specificity"),
    ("ppv", "PPV (precision)"),
    ("npv", "NPV"),
    ("accuracy", "Accuracy"),
    ("f1", "F1"),
)
# Fewer positives than this in the evaluated split earns a caveat about wide intervals.
FEW_POSITIVES = 50


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _interval(entry: Any) -> str:
    if not isinstance(entry, dict) or entry.get("ci_low") is None or entry.get("ci_high") is None:
        return "-"
    return f"{entry['ci_low']:.3f} - {entry['ci_high']:.3f}"


def _with_ci(entry: Any) -> str:
    if not isinstance(entry, dict) or entry.get("value") is None:
        return "n/a"
    ci = _interval(entry)
    return _fmt(entry["value"]) + ("" if ci == "-" else f" ({ci})")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def threshold_sentence(summary: dict[str, Any]) -> str:
    """How the operating threshold was chosen, from ``summary["threshold_rule"]``."""
    rule = summary.get("threshold_rule")
    value = f"**{summary['threshold']:.4g}** (an image is called positive when p >= threshold)"
    if not isinstance(rule, dict):
        return f"Threshold {value}; how it was chosen was not recorded."
    if rule.get("method") == "youden":
        how = "maximising Youden's J (sensitivity + specificity - 1)"
    else:
        target = rule.get("target")
        how = "taking the highest threshold whose sensitivity is >= " + _fmt(target, 2)
    where = rule.get("chosen_on", "val")
    n_val = f" (n={rule['n_val']:,})" if rule.get("n_val") else ""
    achieved = (
        f" There{n_val} it gave sensitivity {_fmt(rule.get('val_sensitivity'))}"
        f" / specificity {_fmt(rule.get('val_specificity'))}."
    )
    return f"Threshold {value}, chosen on the **{where}** split by {how}.{achieved}"


def render_markdown(summary: dict[str, Any], *, title: str, context: dict[str, Any]) -> str:
    boot = summary.get("bootstrap", {})
    unit = summary.get("resampling", "image")
    level = round(100 * float(boot.get("ci_level", 0.95)))
    lines = [f"# Evaluation report: {title}", ""]
    lines += ["## What was evaluated", ""]
    facts = [[str(k).replace("_", " "), _fmt(v, 4)] for k, v in context.items()]
    facts += [
        ["images", _fmt(summary["n"])],
        ["patients", _fmt(summary.get("n_patients")) if summary.get("n_patients") else "unknown"],
        ["positives (pneumonia)", f"{summary['positives']:,} ({summary['prevalence']:.1%})"],
    ]
    lines += _table(["", ""], facts)

    lines += ["## Headline metrics", ""]
    if boot.get("n_boot"):
        lines += [
            f"{level}% confidence intervals: percentile bootstrap, {boot['n_boot']:,} resamples of "
            f"**{unit}s** (seed {boot.get('seed')}).",
            "",
        ]
    else:
        lines += ["No confidence intervals were computed (n_boot = 0).", ""]
    rows = []
    for key, name in HEADLINE:
        entry = summary.get(key) or {}
        value = entry.get("value")
        rows.append(
            [
                name,
                _fmt(value) if value is not None else "n/a",
                _interval(entry),
                entry.get("reason", ""),
            ]
        )
    lines += _table(["Metric", "Value", f"{level}% CI", "Note"], rows)
    lines += ["![ROC curve](roc.png)", "", "![Precision-recall curve](pr.png)", ""]

    lines += ["## Operating threshold", "", threshold_sentence(summary), ""]
    lines += ["## Confusion matrix", ""]
    c = summary["confusion"]
    lines += _table(
        ["", "Predicted: no pneumonia", "Predicted: pneumonia"],
        [
            ["**Actual: no pneumonia**", f"TN {c['tn']:,}", f"FP {c['fp']:,}"],
            ["**Actual: pneumonia**", f"FN {c['fn']:,}", f"TP {c['tp']:,}"],
        ],
    )
    lines += ["![Confusion matrix](confusion.png)", ""]
    lines += _calibration(summary)
    lines += _subgroups(summary)
    lines += ["## Caveats", ""]
    lines += [f"- {c}" for c in caveats(summary, context)]
    return "\n".join(lines).rstrip() + "\n"


def _calibration(summary: dict[str, Any]) -> list[str]:
    bins = summary["reliability"]
    lines = [
        "## Calibration",
        "",
        f"Expected calibration error (ECE, {bins['n_bins']} equal-width bins): "
        f"**{summary['ece']:.3f}**; Brier score: **{summary['brier']:.3f}** "
        "(lower is better for both).",
        "",
    ]
    rows = [
        [f"{lo:.1f} - {hi:.1f}", f"{n:,}", _fmt(mp), _fmt(ob)]
        for lo, hi, n, mp, ob in zip(
            bins["edges"][:-1],
            bins["edges"][1:],
            bins["counts"],
            bins["mean_predicted"],
            bins["observed"],
            strict=True,
        )
    ]
    lines += _table(["Predicted p", "Images", "Mean predicted", "Observed rate"], rows)
    return [*lines, "![Reliability diagram](reliability.png)", ""]


def _subgroups(summary: dict[str, Any]) -> list[str]:
    lines = ["## Subgroups", ""]
    groups = summary.get("subgroups") or {}
    if not groups:
        return [*lines, "No subgroup information was available for this split.", ""]
    lines += [
        "Same threshold for every subgroup. Intervals are bootstrapped within each subgroup; "
        "a cell reads n/a where the metric is undefined.",
        "",
    ]
    for name, values in groups.items():
        lines += [f"### {str(name).capitalize()}", ""]
        rows = [
            [
                str(value),
                _fmt(e["n"]),
                f"{e['positives']:,} ({e['prevalence']:.0%})",
                _with_ci(e.get("auroc")),
                _with_ci(e.get("sensitivity")),
                _with_ci(e.get("specificity")),
                e.get("reason") or "",
            ]
            for value, e in values.items()
        ]
        header = [str(name), "n", "Positives", "AUROC", "Sensitivity", "Specificity", "Note"]
        lines += _table(header, rows)
    return lines


def caveats(summary: dict[str, Any], context: dict[str, Any]) -> list[str]:
    """Plain-language limits of this evaluation, derived from the numbers themselves."""
    out: list[str] = []
    if summary.get("resampling") == "patient":
        out.append(
            "Intervals resample patients (all images of a drawn patient together), so they "
            "account for images of one patient being correlated."
        )
    else:
        out.append(
            "Patient ids are unknown for this data, so intervals resample images. If patients "
            "contribute several images, these intervals are too narrow."
        )
    if summary.get("positives", 0) < FEW_POSITIVES:
        out.append(
            f"Only {summary.get('positives')} positive images: sensitivity and AUROC intervals "
            "are wide; treat point estimates with care."
        )
    split = str(context.get("split", ""))
    rule = summary.get("threshold_rule")
    if split == "val":
        out.append(
            "This is the validation split, which chose the threshold (and usually the "
            "checkpoint): its threshold metrics are optimistic. Quote the test split."
        )
    elif split == "train":
        out.append("This is the training split: every number here is optimistic.")
    if not isinstance(rule, dict):
        out.append(
            "How the threshold was chosen was not recorded; make sure it was not chosen "
            "on this split."
        )
    elif rule.get("method") == "sensitivity" and summary.get("sensitivity", {}).get("value"):
        sens, target = summary["sensitivity"]["value"], rule.get("target") or 0.0
        if sens < target:
            ci = _interval(summary["sensitivity"])
            out.append(
                f"Sensitivity here ({sens:.3f}{'' if ci == '-' else f', CI {ci}'}) falls short "
                f"of the {target:.2f} target met on validation: the threshold does not transfer "
                "exactly."
            )
    out.append(
        f"PPV and NPV depend on prevalence ({summary['prevalence']:.1%} here); they change in a "
        "population with a different pneumonia rate, sensitivity and specificity much less."
    )
    skipped = {k: v for k, v in summary.get("bootstrap", {}).get("skipped", {}).items() if v}
    if skipped:
        listed = ", ".join(f"{k} {v}" for k, v in skipped.items())
        out.append(f"Bootstrap resamples on which a metric was undefined were skipped: {listed}.")
    flagged = [
        f"{name} = {value} ({entry['reason']})"
        for name, values in (summary.get("subgroups") or {}).items()
        for value, entry in values.items()
        if entry.get("reason")
    ]
    if flagged:
        out.append("Subgroups too small or single-class to judge: " + "; ".join(flagged) + ".")
    if summary.get("subgroups"):
        out.append(
            "Subgroup intervals are not adjusted for multiple comparisons, and differences "
            "between subgroups are not tested; overlapping intervals do not show equal performance."
        )
    if summary.get("ece", 0.0) > 0.1:
        out.append(
            f"ECE {summary['ece']:.3f}: predicted probabilities are poorly calibrated; do not read "
            "them as risks without recalibration."
        )
    return out
