"""Honest evaluation of the binary Pneumonia classifier, in numpy alone (no torch, no plotting).

- :mod:`~pneumo.metrics.names`: the metrics reported, their order and labels.
- :mod:`~pneumo.metrics.curves`: sklearn-exact ROC and PR curves, areas, the confusion matrix.
- :mod:`~pneumo.metrics.resampling`: the vectorised (patient-level) bootstrap.
- :mod:`~pneumo.metrics.blocks`: metric blocks with intervals, per split and per subgroup.
- :mod:`~pneumo.metrics.threshold`: the operating threshold, chosen on validation.
- :mod:`~pneumo.metrics.calibration`: reliability bins, ECE, Brier score.
- :mod:`~pneumo.metrics.summary`: everything a report states about one split.

This package imports nothing else of pneumo (a leaf of the layers); the report is
:mod:`pneumo.reports.evaluation`, the command :mod:`pneumo.stages.evaluate`.
"""
