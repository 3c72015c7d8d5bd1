"""The evidence report as one self-contained HTML document (charts inlined as SVG data URIs, no external
file), which is also what WeasyPrint turns into the PDF: the two can never say different things.

Every string from a tenant, a policy or a person is escaped. A CSP partner's report has a section per
customer tenant, each starting on a new page in print.
"""

from __future__ import annotations

import base64
import json
from html import escape
from typing import Iterable

from bot.report.charts import chart_image, completion_svg, severity_svg
from bot.report.figures import EvidenceReport, Tally, TenantReport
from dialogs.charts import Bar, DonutChart, Series, Slice, StackedBarChart

_STYLE = """
@page { size: A4; margin: 16mm 14mm 18mm; @bottom-right { content: "page " counter(page) " of " counter(pages);
  font: 8pt 'DejaVu Sans', sans-serif; color: #616161; } }
body { font: 9.5pt/1.35 'DejaVu Sans', sans-serif; color: #212121; margin: 0; }
h1 { font-size: 20pt; margin: 0 0 4mm; } h2 { font-size: 14pt; margin: 7mm 0 2mm; border-bottom: 1px solid #bdbdbd; }
h3 { font-size: 11pt; margin: 5mm 0 2mm; }
table { border-collapse: collapse; width: 100%; margin: 2mm 0 4mm; font-size: 8.5pt; }
th, td { border: 1px solid #e0e0e0; padding: 1.2mm 1.6mm; text-align: left; vertical-align: top; }
th { background: #f5f5f5; } td.n, th.n { text-align: right; }
.cover { page-break-after: always; } .tenant { page-break-before: always; }
.facts td:first-child { width: 38%; font-weight: bold; } .muted { color: #616161; }
.charts img { max-width: 100%; } .pair { display: flex; gap: 4mm; align-items: flex-start; }
.pair img { width: 48%; } blockquote { margin: 1mm 0 0; color: #424242; font-style: italic; }
pre { white-space: pre-wrap; word-break: break-all; font-size: 7.5pt; background: #f5f5f5; padding: 2mm; }
code { font-size: 8pt; }
"""


def _img(svg: bytes, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="data:image/svg+xml;base64,{base64.b64encode(svg).decode()}">'


def _table(head: Iterable[str], rows: Iterable[Iterable[object]], numeric: Iterable[int] = ()) -> str:
    right = set(numeric)
    cells = "".join(f'<th{" class=n" if i in right else ""}>{escape(h)}</th>' for i, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(f'<td{" class=n" if i in right else ""}>{escape(str(v))}</td>' for i, v in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _tally_table(first: str, tallies: Iterable[Tally]) -> str:
    return _table((first, "Kept", "Revoked", "Open or unanswered", "Excepted", "Items"),
                  ((t.label, t.kept, t.revoked, t.open, t.excepted, t.total) for t in tallies), numeric=(1, 2, 3, 4, 5))


def _tally_chart(title: str, tallies: Iterable[Tally]) -> str:
    bars = tuple(Bar(t.label, (Slice("Kept", t.kept, Series.KEPT), Slice("Revoked", t.revoked, Series.REVOKED),
                               Slice("Open", t.open, Series.OPEN), Slice("Excepted", t.excepted, Series.EXCEPTED)))
                 for t in tallies)
    return _img(chart_image(StackedBarChart(title, bars)), title) if bars else ""


def _facts(pairs: Iterable[tuple[str, object]]) -> str:
    return '<table class="facts">' + "".join(
        f"<tr><td>{escape(k)}</td><td>{escape(str(v))}</td></tr>" for k, v in pairs) + "</table>"


def _progress(tenants: Iterable[TenantReport]) -> DonutChart:
    """Every item of the report once: answered, open (not overdue), overdue, excepted."""
    summaries = [t.summary for t in tenants]
    overdue = sum(s.overdue for s in summaries)
    return DonutChart("Progress", (
        Slice("Answered", sum(s.done for s in summaries), Series.ANSWERED),
        Slice("Open", sum(s.open for s in summaries) - overdue, Series.OPEN),
        Slice("Overdue", overdue, Series.OVERDUE),
        Slice("Excepted", sum(s.excepted for s in summaries), Series.EXCEPTED),
    ))


def _cover(report: EvidenceReport) -> str:
    tenants = report.tenants
    periods = sorted({t.period for t in tenants})
    reviewers = sorted({name for t in tenants for name in t.reviewers})
    title = tenants[0].tenant_name if len(tenants) == 1 else f"{len(tenants)} customer tenants"
    parts = [
        '<section class="cover">',
        f"<h1>Access review evidence: {escape(title)}</h1>",
        _facts([
            ("Tenant" if len(tenants) == 1 else "Tenants", ", ".join(f"{t.tenant_name} ({t.tenant_id})" for t in tenants)),
            ("Period", ", ".join(periods)),
            ("Opened", ", ".join(sorted({f"{t.opened_at:%Y-%m-%d %H:%M} UTC" for t in tenants}))),
            ("Due", ", ".join(sorted({f"{t.due:%Y-%m-%d %H:%M} UTC" for t in tenants}))),
            ("Reviewers", ", ".join(reviewers) or "none"),
            ("Items reviewed", sum(t.summary.total for t in tenants)),
            ("Generated", f"{report.generated_at:%Y-%m-%d %H:%M} UTC"),
            ("Ledger head", f"record {report.ledger_head.seq}, {report.ledger_head.hash}"),
        ]),
        f'<div class="charts">{_img(chart_image(_progress(tenants)), "Progress")}</div>',
        "<h2>Decisions by tenant</h2>",
        _tally_table("Tenant", (t.outcome for t in tenants)),
    ]
    if len(tenants) > 1:
        parts.append(_tally_chart("Decisions by tenant", (t.outcome for t in tenants)))
    parts.append('<p class="muted">Every figure in this report is recounted from the attestations listed with each '
                 "tenant, which are the records of the signed ledger; the last page says how to verify them.</p>")
    parts.append("</section>")
    return "".join(parts)


def _tenant(t: TenantReport) -> str:
    s = t.summary
    parts = [
        '<section class="tenant">',
        f"<h2>{escape(t.tenant_name)} <span class=muted>({escape(t.tenant_id)})</span></h2>",
        _facts([
            ("Campaign", t.campaign_id), ("Period", t.period),
            ("Opened / due", f"{t.opened_at:%Y-%m-%d %H:%M} UTC / {t.due:%Y-%m-%d %H:%M} UTC"),
            ("Signed off", t.signed_off or "not yet"),
            ("Items", s.total), ("Answered", f"{s.done} ({s.kept} kept, {s.revoked} revoked)"),
            ("Unanswered at sign-off" if t.signed_off else "Open", s.open), ("Overdue", s.overdue),
            ("Accepted exceptions", s.excepted), ("Expired by policy", s.expired),
            ("Reviewers", ", ".join(t.reviewers) or "none"),
        ]),
        '<div class="charts">', _img(completion_svg(t.completion, s.total, t.opened_at, t.due), "Completion over time"),
        "</div>",
        "<h3>Decisions by verdict</h3>",
        _table(("Verdict", "Attestations"), t.verdicts, numeric=(1,)) if t.verdicts else "<p>No decision recorded.</p>",
        "<h3>Decisions by role</h3>", _tally_table("Role or kind", t.by_role),
        '<div class="charts">', _tally_chart("Decisions by role", t.by_role), "</div>",
        "<h3>Findings by severity and control</h3>",
    ]
    if t.findings:
        parts.append(_table(("Severity", "Findings"), t.findings_by_severity, numeric=(1,)))
        parts.append(f'<div class="charts">{_img(severity_svg(t.findings_by_severity), "Findings by severity")}</div>')
        parts.append(_table(("Severity", "Control", "Check", "Items", "Kept", "Revoked", "Open"),
                            ((f.severity, f.scuba or "—", f.check_id, f.items, f.kept, f.revoked, f.open) for f in t.findings),
                            numeric=(3, 4, 5, 6)))
        parts.append("<p>The guidance each check carries out, word for word:</p><ul>")
        parts.extend(f"<li><code>{escape(f.check_id)}</code> — {escape(f.title)}"
                     f"<blockquote>“{escape(f.guidance)}” ({escape(f.guidance_source)})</blockquote></li>"
                     for f in t.findings)
        parts.append("</ul>")
    else:
        parts.append("<p>No check found anything on the reviewed access.</p>")
    parts.append("<h3>Exceptions</h3>")
    parts.append(_table(("Access", "Rationale", "Approved by", "Expires", "State"),
                        ((e.subject, e.rationale, e.approved_by, e.expires, e.state) for e in t.exceptions))
                 if t.exceptions else "<p>No accepted exception.</p>")
    parts.append("<h3>Remediation steps</h3>")
    if t.remediations:
        parts.append(_table(("Access", "Mode", "Status", "Approved by", "Attempts", "Steps", "Results"),
                            ((r.subject, r.mode, r.status, r.approved_by or "—", r.attempts, "; ".join(r.steps),
                              "; ".join(r.results) or "—") for r in t.remediations), numeric=(4,)))
    else:
        parts.append("<p>No revoked access needed remediation.</p>")
    parts.append(f"<h3>Attestations ({len(t.attestations)})</h3>")
    parts.append(_table(("Ledger #", "At (UTC)", "Access", "Verdict", "By", "Justification", "Record hash"),
                        ((a.seq, a.at[:19].replace("T", " "), a.subject, a.verdict, a.actor, a.justification, a.hash[:16] + "…")
                         for a in t.attestations), numeric=(0,)))
    parts.append("</section>")
    return "".join(parts)


def _ledger(report: EvidenceReport) -> str:
    parts = ['<section class="tenant"><h2>Verifying this evidence</h2>']
    if report.checkpoint is None:
        parts.append("<p><strong>The ledger is not signed</strong>: there is no checkpoint to check it against. Its hash "
                     "chain can still be verified with the public key of whoever signs it from now on.</p>")
    else:
        # The file names sit in a list of their own: WeasyPrint 70 breaks the first line of a paragraph after
        # one word when inline markup follows in it.
        parts.append("<p>The ledger is a hash chain; this signed checkpoint vouches for every record up to it. "
                     "Both are also in the evidence pack. Save</p><ul><li>the checkpoint below as "
                     "<code>ledger-checkpoint.json</code>,</li><li>the public key below as "
                     "<code>ledger-public-key.pem</code>,</li></ul><p>then run:</p>")
        parts.append(f"<pre>{escape(report.verify_command)}</pre>")
        parts.append("<h3>Signed ledger checkpoint</h3>")
        parts.append(f"<pre>{escape(json.dumps(report.checkpoint.to_dict(), indent=2))}</pre>")
    if report.public_key_pem:
        parts.append(f"<h3>Public key</h3><p>Fingerprint (SHA-256): <code>{escape(report.key_fingerprint)}</code></p>")
        parts.append(f"<pre>{escape(report.public_key_pem)}</pre>")
    parts.append("</section>")
    return "".join(parts)


def report_html(report: EvidenceReport) -> str:
    names = ", ".join(t.tenant_name for t in report.tenants)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Access review evidence — {escape(names)}</title><style>{_STYLE}</style></head><body>"
        + _cover(report) + "".join(_tenant(t) for t in report.tenants) + _ledger(report) + "</body></html>"
    )

