"""The ``pneumo eda`` report: statistics, figures (Agg) and the self-contained HTML page."""
