"""The self-contained HTML report and the data behind it."""

from regulars.reports.html import ReportData, build_report, render_html, write_report

__all__ = ["ReportData", "build_report", "render_html", "write_report"]
