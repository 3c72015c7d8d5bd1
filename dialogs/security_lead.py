"""What a security lead can ask in chat: overdue, findings, history, export, remind, start review, sign off.

Everyone else gets a polite refusal that says who can: these commands show other people's access.
"""

from __future__ import annotations

from bot.exports import ExportRequest
from bot.remediation.workflow import Status
from bot.service import SEVERITY_ORDER, ReviewService
from dialogs.pending import answer_line
from dialogs.status import period_label
from dialogs.views import Actor, ConfirmView, FindingGroup, FindingsView, StatusRow, StatusView, TextView, Tone, View

LEAD_ONLY = (
    "Only the security leads named in the review policy can use “{command}”, because it shows other people's access. "
    "Say 'my reviews' for your own items."
)
MAX_ROWS = 40  # a FactSet this long still reads well on a phone and stays far below Teams' card size limit


def refuse(command: str) -> TextView:
    return TextView(LEAD_ONLY.format(command=command), Tone.WARNING)


def is_lead(service: ReviewService, actor: Actor) -> bool:
    return bool(actor.object_id) and service.is_security_lead(actor.object_id or "")


def overdue(service: ReviewService) -> View:
    late = service.overdue()
    if not late:
        return TextView("Nothing is overdue.", Tone.GOOD)
    rows = tuple(
        StatusRow(item.subject.title, f"with {', '.join(service.display_name(r) for r in item.reviewers)}; due {item.due:%d %b}")
        for item, _ in late[:MAX_ROWS]
    )
    return StatusView(f"{len(late)} overdue item(s)", rows, warnings=_more(len(late)))


FINDING_GROUPS_PER_PAGE = 8
NAMES_PER_GROUP = 12
SEVERITIES = ("critical", "high", "medium", "low")


def findings(service: ReviewService, argument: str = "") -> View:
    """Counts by severity first, then one group per check (most severe first) naming what it was found on,
    a page of groups at a time ('findings 2' for the next)."""
    found = service.findings()
    tenant = service.tenant_findings
    if not found and not tenant:
        return TextView("No findings on the current review's items.", Tone.GOOD)
    groups: dict[str, tuple[str, str, str, list[str]]] = {}
    for r in tenant:
        groups.setdefault(r.check.id, (r.severity.value, r.check.title, r.check.scuba or "", []))[3].append(r.message)
    for item, finding in found:
        groups.setdefault(finding.check_id, (finding.severity, finding.title, finding.scuba or "", []))[3].append(
            item.subject.title
        )
    ordered = sorted(groups.values(), key=lambda g: (SEVERITY_ORDER.get(g[0], 9), -len(g[3]), g[1]))
    pages = max(1, -(-len(ordered) // FINDING_GROUPS_PER_PAGE))
    page = int(argument) if argument.strip().isdecimal() else 1  # isdigit() would let "²" through to int()
    if not 1 <= page <= pages:
        return TextView(f"There are {pages} page(s) of findings: say 'findings 1' to 'findings {pages}'.")
    shown = ordered[(page - 1) * FINDING_GROUPS_PER_PAGE : page * FINDING_GROUPS_PER_PAGE]
    counts = {severity: sum(len(g[3]) for g in ordered if g[0] == severity) for severity in SEVERITIES}
    total = sum(len(g[3]) for g in ordered)
    return FindingsView(
        title=f"{total} finding(s) from {len(ordered)} check(s) in the current review",
        by_severity=tuple(StatusRow(severity.capitalize(), str(n)) for severity, n in counts.items() if n),
        groups=tuple(
            FindingGroup(severity, title, reference, tuple(on[:NAMES_PER_GROUP]), max(0, len(on) - NAMES_PER_GROUP))
            for severity, title, reference, on in shown
        ),
        page=page,
        pages=pages,
        next_hint=f"findings {page + 1}" if page < pages else "",
    )


async def history(service: ReviewService, query: str) -> View:
    if not query.strip():
        return TextView("Say 'history' and a person's e-mail address or a partner's name, e.g. 'history meganb@contoso.com'.")
    answers = await service.history(query)
    if not answers:
        return TextView(f"No recorded answers about “{query.strip()}”.")
    rows = tuple(
        StatusRow(
            f"{decision.at:%Y-%m-%d} · {item.subject.title}",
            answer_line(service, decision) + (f" — “{decision.justification}”" if decision.justification else ""),
        )
        for item, decision, _ in answers[-MAX_ROWS:]
    )
    return StatusView(f"History of {query.strip()}", rows)


def export(service: ReviewService, actor: Actor) -> View:
    campaigns = service.campaigns()
    if not campaigns:
        return TextView("No review campaign is open yet.")
    campaign = campaigns[0].campaign
    links = {fmt: service.export_link(ExportRequest(campaign.id, fmt, actor.object_id or ""))
             for fmt in ("pdf", "html", "zip", "csv", "json")}
    return TextView(
        f"Evidence for the {campaign.tenant_name} review {campaign.period} (links work for one hour): "
        f"[evidence report (PDF)]({links['pdf']}) · [report (HTML)]({links['html']}) · "
        f"[evidence pack (zip)]({links['zip']}) · [attestations CSV]({links['csv']}) · [attestations JSON]({links['json']})"
    )


async def remind(service: ReviewService, actor: Actor, who: str) -> View:
    reviewer = service.resolve_person(who) if who.strip() else None
    if reviewer is None:
        return TextView("Say 'remind' and the reviewer's e-mail address, e.g. 'remind pattif@contoso.com'.")
    count = await service.remind(reviewer, actor.name)
    if not count:
        return TextView(f"{service.display_name(reviewer)} has nothing waiting.", Tone.GOOD)
    return TextView(f"Reminded {service.display_name(reviewer)} of {count} item(s).", Tone.GOOD)


async def start_review(service: ReviewService) -> View:
    state, opened = await service.open_current_campaign()
    if opened:
        return TextView(f"Started the {state.campaign.tenant_name} review {state.campaign.period}: "
                        f"{state.campaign.item_count} items; reviewers are being asked now.", Tone.GOOD)
    return TextView(f"This period's review ({state.campaign.period}) is already open. Say 'status'.")


SIGN_OFF = "sign off"  # the intent a sign-off confirmation carries
MAX_REMAINING = 15


async def sign_off(service: ReviewService, actor: Actor, argument: str = "") -> View:
    """'sign off' shows what remains and asks; 'sign off confirm' (or Confirm on that card) signs off."""
    said = argument.strip().lower()
    if said == "cancel":
        return TextView("Sign-off cancelled: nothing changed.")
    if said and said != "confirm":
        return TextView("Say 'sign off', then 'sign off confirm' to close the review with items still open.")
    return await confirm_sign_off(service, actor, None, confirmed=said == "confirm")


async def confirm_sign_off(service: ReviewService, actor: Actor, campaign_id: str | None, confirmed: bool) -> View:
    """Sign off (``campaign_id``: the one the confirmation showed; None: the newest), or ask first."""
    if not confirmed and campaign_id is not None:
        return TextView("Sign-off cancelled: nothing changed.")
    outcome = await service.sign_off(actor.object_id or "", actor.name, confirmed, campaign_id)
    if not outcome.needs_confirmation:
        return TextView(outcome.message, Tone.GOOD if outcome.ok else Tone.WARNING)
    campaign = service.item(outcome.remaining[0].id)[1]
    rows = tuple(
        StatusRow(item.subject.title, "with " + (", ".join(service.display_name(r) for r in item.reviewers) or "nobody"))
        for item in outcome.remaining[:MAX_REMAINING]
    )
    return ConfirmView(
        title=f"Sign off the {campaign.tenant_name} review {period_label(campaign.period)}?",
        text=outcome.message,
        rows=rows,
        intent=SIGN_OFF,
        ref=campaign.id,
        confirm_title="Sign off",
        more=max(0, len(outcome.remaining) - MAX_REMAINING),
    )


def remediations(service: ReviewService) -> View:
    found = service.remediations()
    if not found:
        mode = service.policy.remediation.value
        if mode == "off":  # "no remediation yet" right after a revoke read as if one were coming
            return TextView("Remediation is off, so accessbot removes nothing: each revoke is posted to the security "
                            "leads, and the access is removed by you in Entra ID. With [remediation] mode = \"dry-run\" "
                            "in the policy, this lists the Microsoft Graph calls a revoke would make.")
        return TextView(f"No remediation yet (remediation mode: {mode}).")
    rows = tuple(
        StatusRow(
            f"{r.ref} · {r.plan.title}",
            f"{r.status.value.replace('_', ' ')} ({r.mode.value})"
            + (f"; approved by {r.approved_by}" if r.approved_by else "")
            + (f"; {r.attempts} attempt(s)" if r.attempts else "")
            + (f"; next attempt {r.retry_at:%Y-%m-%d %H:%M} UTC" if r.status is Status.READY and r.retry_at else "")
            + (f"; blocked: {r.plan.blocked}" if r.plan.blocked else ""),
        )
        for r in found[:MAX_ROWS]
    )
    return StatusView(f"{len(found)} remediation(s)", rows, warnings=_more(len(found)))


async def approve(service: ReviewService, actor: Actor, ref: str) -> View:
    if not ref.strip():
        return TextView("Say 'approve' and the remediation's reference, e.g. 'approve 3f9a1c2e' (see 'remediations').")
    message = await service.approve_remediation(ref, actor.object_id or "", actor.name)
    return TextView(message, Tone.GOOD if message.startswith("Approved") else Tone.WARNING)


def _more(total: int) -> tuple[str, ...]:
    return (f"Showing the first {MAX_ROWS} of {total}.",) if total > MAX_ROWS else ()
