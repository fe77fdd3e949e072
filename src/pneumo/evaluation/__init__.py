"""Honest evaluation of the binary Pneumonia classifier: numpy and matplotlib only, no torch.

- :mod:`~pneumo.evaluation.metrics`: sklearn-exact curves and areas, confusion ratios,
  patient-level bootstrap intervals and :func:`~pneumo.evaluation.metrics.summarize`.
- :mod:`~pneumo.evaluation.threshold`: the operating threshold, chosen on validation.
- :mod:`~pneumo.evaluation.calibration`: reliability bins, ECE, Brier score.
- :mod:`~pneumo.evaluation.report`: metrics.json, report.md and the figures.
- :mod:`~pneumo.evaluation.evaluate`: ``pneumo evaluate``, which runs a model (torch) and calls
  the above.

Import the submodules directly; this package imports nothing so that ``import pneumo`` stays
cheap.
"""
