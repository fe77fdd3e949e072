"""What people read: the evaluation report, the model-card page, the comparison report, the EDA
report (:mod:`pneumo.reports.eda`) and the terminal summaries. No torch here."""
