"""The evidence report an auditor files: figures (``figures.py``, pure), charts (``charts.py``, matplotlib),
one HTML document (``html.py``) and the PDF WeasyPrint prints from that same HTML."""

from __future__ import annotations

import threading

from bot.report.figures import EvidenceReport
from bot.report.html import report_html

CONTENT_TYPES = {"pdf": "application/pdf", "html": "text/html; charset=utf-8"}
# WeasyPrint holds every box of the document in memory: from a 1,000- to a 4,000-item campaign the process
# grows by about 450 MB (docs/benchmarks.md). One PDF at a time, so a few security leads clicking at once cannot multiply it.
_ONE_PDF_AT_A_TIME = threading.Lock()


def render_report(report: EvidenceReport, fmt: str) -> bytes:
    """The report as ``fmt`` (pdf or html). Slow (charts, layout): callers run it off the event loop."""
    if fmt == "html":
        return report_html(report).encode("utf-8")
    if fmt == "pdf":
        from weasyprint import HTML  # imported on first use: importing it takes most of a second

        html = report_html(report)
        with _ONE_PDF_AT_A_TIME:
            return HTML(string=html).write_pdf()
    raise ValueError(f"unknown report format {fmt!r}: use pdf or html")
