"""report.md: the evaluation in prose and tables, ending with its caveats.

The caveats are derived from the numbers (few positives, image-level intervals, a threshold
evaluated on the split that chose it, tiny subgroups, poor calibration), so a reader sees the
limits of a result next to it rather than in someone's memory.
"""

from __future__ import annotations

from typing import Any

from pneumo import paths
from pneumo.metrics.names import LABELS, METRICS
from pneumo.render.markdown import table
from pneumo.render.text import interval, number, percent, with_interval
from pneumo.reports.external_text import expected_vs_observed, external_caveats, left_out

# The headline table's rows: every metric, named as people read it.
HEADLINE = tuple((key, LABELS[key]) for key in METRICS)
# Fewer positives than this in the evaluated split earns a caveat about wide intervals.
FEW_POSITIVES = 50
CI_SEP = " - "  # an interval in report.md: "0.880 - 0.940"
SUBGROUP_METRICS = ("auroc", "sensitivity", "specificity")


def _interval(entry: Any) -> str:
    return interval(entry, sep=CI_SEP) or "-"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [table(header, rows), ""]


def _share(count: int, fraction: float, digits: int) -> str:
    """``"1,234 (12.3%)"``: a count and its share."""
    return f"{number(count)} ({percent(fraction, digits, unit='%')})"


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
        how = "taking the highest threshold whose sensitivity is >= " + number(target, 2)
    where = rule.get("chosen_on", "val")
    n_val = f" (n={number(rule['n_val'])})" if rule.get("n_val") else ""
    achieved = (
        f" There{n_val} it gave sensitivity {number(rule.get('val_sensitivity'))}"
        f" / specificity {number(rule.get('val_specificity'))}."
        if rule.get("val_sensitivity") is not None
        else ""
    )
    if rule.get("carried"):
        own = "validation" if where == "val" else where
        return (
            f"Threshold {value}: the one the model carries, chosen on **its own {own}** split "
            f"by {how}, and applied here unchanged (not re-chosen on this data).{achieved}"
        )
    return f"Threshold {value}, chosen on the **{where}** split by {how}.{achieved}"


def render_markdown(
    summary: dict[str, Any],
    *,
    title: str,
    context: dict[str, Any],
    sections: list[str] | tuple[str, ...] = (),
) -> str:
    """The report; ``sections`` (markdown lines) go in before the caveats."""
    boot = summary.get("bootstrap", {})
    unit = summary.get("resampling", "image")
    level = round(100 * float(boot.get("ci_level", 0.95)))
    lines = [f"# Evaluation report: {title}", ""]
    lines += ["## What was evaluated", ""]
    patients = summary.get("n_patients")
    facts = [[str(k).replace("_", " "), number(v, 4)] for k, v in context.items()]
    facts += [
        ["images", number(summary["n"])],
        ["patients", number(patients) if patients else "unknown"],
        ["positives (pneumonia)", _share(summary["positives"], summary["prevalence"], 1)],
    ]
    lines += _table(["", ""], facts)

    lines += ["## Headline metrics", ""]
    if boot.get("n_boot"):
        lines += [
            f"{level}% confidence intervals: percentile bootstrap, {number(boot['n_boot'])} "
            f"resamples of **{unit}s** (seed {boot.get('seed')}).",
            "",
        ]
    else:
        lines += ["No confidence intervals were computed (n_boot = 0).", ""]
    rows = []
    for key, name in HEADLINE:
        entry = summary.get(key) or {}
        value = entry.get("value")
        rows.append([name, number(value, missing="n/a"), _interval(entry), entry.get("reason", "")])
    lines += _table(["Metric", "Value", f"{level}% CI", "Note"], rows)
    lines += [f"![ROC curve]({paths.ROC_FIGURE})", ""]
    lines += [f"![Precision-recall curve]({paths.PR_FIGURE})", ""]
    if "expected" in summary:
        lines += expected_vs_observed(summary)
        lines += left_out(summary, context.get("images_listed"))

    lines += ["## Operating threshold", "", threshold_sentence(summary), ""]
    lines += ["## Confusion matrix", ""]
    c = summary["confusion"]
    lines += _table(
        ["", "Predicted: no pneumonia", "Predicted: pneumonia"],
        [
            ["**Actual: no pneumonia**", f"TN {number(c['tn'])}", f"FP {number(c['fp'])}"],
            ["**Actual: pneumonia**", f"FN {number(c['fn'])}", f"TP {number(c['tp'])}"],
        ],
    )
    lines += [f"![Confusion matrix]({paths.CONFUSION_FIGURE})", ""]
    lines += _calibration(summary)
    lines += _subgroups(summary)
    lines += sections
    lines += ["## Caveats", ""]
    external = external_caveats(summary) if "expected" in summary else []
    lines += [f"- {c}" for c in (*external, *caveats(summary, context))]
    return "\n".join(lines).rstrip() + "\n"


def _calibration(summary: dict[str, Any]) -> list[str]:
    bins = summary["reliability"]
    lines = [
        "## Calibration",
        "",
        f"Expected calibration error (ECE, {bins['n_bins']} equal-width bins): "
        f"**{number(summary['ece'])}**; Brier score: **{number(summary['brier'])}** "
        "(lower is better for both).",
        "",
    ]
    rows = [
        [f"{number(lo, 1)}{CI_SEP}{number(hi, 1)}", number(n), number(mp), number(ob)]
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
    return [*lines, f"![Reliability diagram]({paths.RELIABILITY_FIGURE})", ""]


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
                number(e["n"]),
                _share(e["positives"], e["prevalence"], 0),
                *(with_interval(e.get(k), sep=CI_SEP) for k in SUBGROUP_METRICS),
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
            ci = interval(summary["sensitivity"], sep=CI_SEP)
            shown = number(sens) + ("" if ci is None else f", CI {ci}")
            out.append(
                f"Sensitivity here ({shown}) falls short of the {number(target, 2)} target met "
                "on validation: the threshold does not transfer exactly."
            )
    out.append(
        f"PPV and NPV depend on prevalence ({percent(summary['prevalence'], 1, unit='%')} here); "
        "they change in a population with a different pneumonia rate, sensitivity and "
        "specificity much less."
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
            f"ECE {number(summary['ece'])}: predicted probabilities are poorly calibrated; do "
            "not read them as risks without recalibration."
        )
    return out
