"""The dataset report: summary, plots and a conversation browser in one self-contained HTML file."""

from personasim.report.page import MAX_CONVERSATIONS, REPORT, render_report, report_markdown, write_report

__all__ = ["MAX_CONVERSATIONS", "REPORT", "render_report", "report_markdown", "write_report"]
