"""Honest evaluation of the binary Pneumonia classifier: numpy and matplotlib only, no torch.

- :mod:`~pneumo.metrics.curves`: sklearn-exact curves and areas, confusion ratios,
  patient-level bootstrap intervals and :func:`~pneumo.metrics.curves.summarize`.
- :mod:`~pneumo.metrics.threshold`: the operating threshold, chosen on validation.
- :mod:`~pneumo.metrics.calibration`: reliability bins, ECE, Brier score.
- :mod:`~pneumo.reports.evaluation`: metrics.json, report.md and the figures.
- :mod:`~pneumo.stages.evaluate`: ``pneumo evaluate``, which runs a model (torch) and calls
  the above.

Import the submodules directly; this package imports nothing so that ``import pneumo`` stays
cheap.
"""
