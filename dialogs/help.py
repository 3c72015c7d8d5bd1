"""The help flow: what a person can say, tailored to whether they lead security."""

from __future__ import annotations

from dialogs.views import HelpView

REVIEWER_COMMANDS = (
    ("my reviews", "show the items waiting for your answer, one card each"),
    ("status", "how far the current review is, and your part in it"),
    ("help", "this list"),
)
LEAD_COMMANDS = (
    ("overdue", "items past their deadline, and with whom"),
    ("findings [page]", "what the checks found on this review's items: counts by severity, grouped by check"),
    ("history <person or partner>", "every answer ever recorded on their access"),
    ("export", "download links: evidence report (PDF, HTML), evidence pack, attestations CSV and JSON"),
    ("remind <person>", "nudge a reviewer now"),
    ("start review", "open this period's review if it is not open"),
    ("sign off", "close this review and lock its answers (shows what is still open and asks first)"),
    ("watch status", "in a channel: post the campaign status there, kept up to date as answers arrive"),
    ("remediations", "what happened to revoked access: proposed, awaiting approval, done, blocked"),
    ("approve <ref>", "second approval (dual custody) for removing Global Administrator access"),
)
CUSTOMER_COMMANDS = (
    ("mine <customer>", "your items in one customer's review ('mine' also lists the customers waiting for you)"),
)
PARTNER_COMMANDS = (
    ("status [page]", "every customer's review, worst first: overdue items, failed collections"),
    ("status <customer>", "one customer's review, by name or tenant id"),
)


def help_view(is_security_lead: bool, is_partner_lead: bool = False, customers: bool = False) -> HelpView:
    """``is_partner_lead``: a CSP partner's security lead, whose 'status' goes across the customers;
    ``customers``: a CSP partner's deployment, where anyone may review items in customers' campaigns."""
    commands = (REVIEWER_COMMANDS + (CUSTOMER_COMMANDS if customers else ()) + (LEAD_COMMANDS if is_security_lead else ())
                + (PARTNER_COMMANDS if is_partner_lead else ()))
    footer = (
        "Each week I ask the owner of every privileged role, partner relationship and admin recovery contact "
        "to confirm it is still right. Keep what is needed, revoke what is not (say why), or pass on what you don't know."
    )
    if is_security_lead:
        footer += " As a security lead you see the whole campaign in 'status' and get every escalation and revoke."
    return HelpView("What I can do", commands, footer)
