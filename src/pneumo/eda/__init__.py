"""Exploratory data analysis: the ``pneumo eda`` HTML report (figures drawn with Agg)."""

from pneumo.eda.report import render_report, write_report

__all__ = ["render_report", "write_report"]
