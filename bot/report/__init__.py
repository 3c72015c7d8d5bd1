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

SERVER_PDF_ATTESTATIONS = 2_000
"""The most attestations a PDF the server lays out may list. WeasyPrint costs about 7 ms of CPU per table row,
holding Python's lock, and every box in memory: a 20,000-item week would take the server minutes and gigabytes
while its reviewers click. Above this the server answers with the command that makes the PDF on an operator's
machine (``accessbot campaign report --format pdf``), and the HTML report of the same figures stays a link."""


class ReportTooLarge(Exception):
    """The PDF is for the command line (``SERVER_PDF_ATTESTATIONS``); the message says how to make it."""


def check_pdf_size(report: EvidenceReport, campaign_id: str) -> None:
    rows = sum(len(tenant.attestations) for tenant in report.tenants)
    if rows > SERVER_PDF_ATTESTATIONS:
        raise ReportTooLarge(
            f"This week's evidence report lists {rows:,} attestations: a PDF that large is made on an operator's "
            f"machine, not by the bot while people answer it. Run:\n\n  accessbot campaign report --campaign "
            f"{campaign_id} --format pdf --out evidence.pdf\n\nThe HTML report of the same figures is one of the "
            "links the export command gave you.")


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
