"""The review policy: who owns what, when reviews run, and what silence means.

Loaded from a TOML file written by the security team. Every error names the key and the line, because
the person fixing it is reading the file, not our code.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import re
import tomllib
import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, NamedTuple, NoReturn

from croniter import CroniterBadDateError, croniter

from bot.engine.model import (
    MAX_JUSTIFICATION,
    MIN_JUSTIFICATION,
    STAGE_ORDER,
    PolicyExceptionGrant,
    Stage,
)
from bot.toml_lines import BARE_KEY_CHARS, KeyPath, locate


class NoAnswer(StrEnum):
    """What happens to an item nobody answered by its deadline."""

    ESCALATE = "escalate"  # stays open, marked overdue, with the security leads
    KEEP = "keep"
    REVOKE = "revoke"


class RemediationMode(StrEnum):
    OFF = "off"
    DRY_RUN = "dry-run"
    APPLY = "apply"


@dataclass(frozen=True)
class EscalationStep:
    """Hand an unanswered item to ``to`` once ``after`` has passed since the campaign opened."""

    to: Stage
    after: timedelta


@dataclass(frozen=True)
class BreakGlassAccount:
    """An emergency account: reviewed like any other but never proposed for revoke."""

    principal: str  # object id or user principal name
    rationale: str


@dataclass(frozen=True)
class Policy:
    """A validated policy. People are named by Entra object id or user principal name."""

    tenant_id: str
    tenant_name: str
    role_owners: Mapping[str, tuple[str, ...]]  # role template id or lower-case role name -> owners
    partner_owners: Mapping[str, tuple[str, ...]]  # partner tenant id or lower-case name, "*" = any
    recovery_owners_include_admin: bool  # also ask the admin to confirm their own contact details
    fallback_reviewers: tuple[str, ...]
    security_leads: tuple[str, ...]
    delegates: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # reviewer -> delegates
    schedule_cron: str = "0 9 * * MON"
    timezone: str = "UTC"
    deadline: timedelta = timedelta(days=5)
    reminder_every: timedelta = timedelta(days=1)
    escalation: tuple[EscalationStep, ...] = (
        EscalationStep(Stage.FALLBACK, timedelta(days=3)),
        EscalationStep(Stage.SECURITY_LEADS, timedelta(days=4)),
    )
    no_answer: NoAnswer = NoAnswer.ESCALATE
    revoke_wins: bool = True  # with several reviewers, a later Revoke overrides an earlier Keep
    remediation: RemediationMode = RemediationMode.OFF
    dual_custody_global_admin: bool = True
    break_glass: tuple[BreakGlassAccount, ...] = ()
    exceptions: tuple[PolicyExceptionGrant, ...] = ()
    justification_max_chars: int = MAX_JUSTIFICATION  # the longest justification an answer may carry
    # [review] change_escalate: how long a review opened by an access change (a new Global Administrator seen in
    # the audit log) waits for its owner before the security leads get it; hours, not the weekly days.
    change_escalate: timedelta = timedelta(hours=4)
    teams_tenant_ids: tuple[str, ...] = ()  # other tenants whose Teams users may talk to the bot
    slack_users: Mapping[str, str] = field(default_factory=dict)  # person -> Slack member id, beside e-mail matching
    # [[subscriptions]]: Azure subscription id or lower-case name, "*" = any -> who reviews its privileged roles
    subscription_owners: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def served_tenants(self) -> frozenset[str]:
        """Every tenant an activity may come from: the reviewed tenant and the extra chat tenants."""
        return frozenset((self.tenant_id, *self.teams_tenant_ids))


# --- Loading -----------------------------------------------------------------------------------------
#
# tomllib turns the text into plain values but forgets where each came from, and a security engineer
# fixing a policy needs "line 12", not a Python traceback. So the loader works in two passes: tomllib
# parses (and reports syntax errors with their line), then ``locate`` re-reads the same text only to
# note the line of every table header, key and array element, and every semantic error looks its line
# up there by the path of the offending value.


MAX_JUSTIFICATION_LIMIT = 20_000
MAX_CHANGE_ESCALATE = timedelta(days=1)
_REVIEW_KEYS = ("justification_max_chars", "change_escalate")

DURATION_HINT = 'expected a duration like "5d", "36h" or "90m"'

SUBJECT_KEY_PREFIXES = ("role:", "partner:", "recovery:", "azure:")

_DURATION = re.compile(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_PRINCIPAL_NAME = re.compile(r"[^@\s]+@[^@\s]+")
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")
_SYNTAX_POSITION = re.compile(r"\(at line (\d+), column \d+\)")
_UNQUOTED_DURATION = re.compile(r"=\s*(?:[0-9]+[dhm])+\s*(?:#.*)?$")
_MISSING: Any = object()

_TOP_LEVEL = (
    "tenant",
    "reviewers",
    "roles",
    "partners",
    "subscriptions",
    "recovery_contacts",
    "delegates",
    "schedule",
    "escalation",
    "outcome",
    "remediation",
    "break_glass",
    "exceptions",
    "review",
    "slack",
)
_ESCALATION_TARGETS = {"manager": Stage.MANAGER, "fallback": Stage.FALLBACK, "security_leads": Stage.SECURITY_LEADS}
_PERSON_HINT = 'expected an Entra object id (a GUID) or a user principal name like "alexw@contoso.com"'


def policy_people(policy: Policy) -> tuple[str, ...]:
    """Everyone the policy names as reviewer, fallback, security lead or delegate (UPN or object id)."""
    named: list[str] = [*policy.fallback_reviewers, *policy.security_leads]
    for people in (*policy.role_owners.values(), *policy.partner_owners.values(), *policy.subscription_owners.values(),
                   *policy.delegates.values()):
        named.extend(people)
    named.extend(policy.delegates)
    return tuple(dict.fromkeys(named))


class PolicyError(ValueError):
    """A policy file that cannot be used, located for the person who has to fix it.

    ``key`` is the dotted path of the offending value (``schedule.deadline``, ``roles[2].owners``, the
    index counting ``[[roles]]`` tables from 1 as they appear in the file); ``line`` is None only when
    there is no line to point at (a required table that is absent, a file nested too deeply to read).
    """

    def __init__(self, source: str, line: int | None, key: str | None, detail: str) -> None:
        self.source = source
        self.line = line
        self.key = key
        self.detail = detail
        self.problems: tuple[PolicyError, ...] = (self,)  # every problem found, in the order of the file
        where = source if line is None else f"{source}, line {line}"
        super().__init__(f"{where}: {detail}")

    @classmethod
    def every(cls, problems: Iterable[PolicyError]) -> PolicyError:
        """One error that leads with the first problem in the file and carries all of them in ``problems``."""
        ordered = sorted(dict.fromkeys(problems, None), key=lambda p: (p.line is None, p.line or 0))
        first = ordered[0]
        if len(ordered) == 1:
            return first
        error = cls(first.source, first.line, first.key, f"{first.detail} (and {len(ordered) - 1} more problem(s))")
        error.problems = tuple(ordered)
        return error

    def __eq__(self, other: object) -> bool:  # the same problem found twice (a table read by two sections)
        return isinstance(other, PolicyError) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


def load_policy(path: Path) -> Policy:
    """Read and validate a policy file; raise PolicyError naming the file, key and line of any problem.

    A byte-order mark is accepted because Windows editors add one and TOML itself does not allow it.
    """
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise PolicyError(str(path), line, None, "the file is not UTF-8 text") from None
    return parse_policy(text, str(path))


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Validate policy TOML text; ``source`` is how errors name the file."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _syntax_error(text, source, error) from None
    except ValueError as error:  # tomllib lets int() refuse numbers of more than 4300 digits
        raise PolicyError(source, None, None, f"not valid TOML: {error}") from None
    except RecursionError:
        raise PolicyError(source, None, None, "not valid TOML: arrays or tables nested too deeply") from None
    return _Loader(text, source, document).policy()


def customer_policy(base: Path, override: Path | None, tenant_id: str, tenant_name: str) -> Policy:
    """A CSP partner's policy for one customer tenant: the partner's policy file ``base`` with the top-level tables
    of the customer's ``override`` file (any of ``[reviewers]``, ``[[roles]]``, ``[[partners]]``, ``[schedule]``,
    ...) in place of the base's tables of the same name, for ``tenant_id``. The override may not name a tenant:
    which customer it is for is the file's name (bot/partner_campaigns.py). Errors name the override's lines."""
    partner = load_policy(base)
    if override is None:
        return dataclasses.replace(partner, tenant_id=tenant_id, tenant_name=tenant_name)
    raw = override.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
        document = tomllib.loads(text)
    except UnicodeDecodeError:
        raise PolicyError(str(override), None, None, "the file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise _syntax_error(text, str(override), error) from None
    if "tenant" in document:
        raise PolicyError(str(override), None, "tenant",
                          "a customer's overrides do not name a tenant: the file's name says which customer it is for")
    merged = {**tomllib.loads(base.read_bytes().decode("utf-8-sig")), **document,
              "tenant": {"id": tenant_id, "name": tenant_name}}
    return _Loader(text, str(override), merged).policy()


@dataclass(frozen=True)
class PolicyReference:
    """A value as written in a policy file, with its place, for checks the loader cannot make alone
    (e.g. whether a role name exists, which needs Entra's catalogue and the tenant's own roles)."""

    source: str
    line: int | None
    path: KeyPath
    value: str

    def problem(self, detail: str) -> str:
        """The problem worded like the loader's errors: file, line, table, key and value."""
        subject = f"{_describe(self.path, self.value)} = {_render(self.value)}"
        return str(PolicyError(self.source, self.line, _dotted(self.path), f"{subject}: {detail}"))


def role_references(path: Path) -> list[PolicyReference]:
    """The role name or template id of every ``[[roles]]`` table of a policy file that loads."""
    text = path.read_bytes().decode("utf-8-sig")
    lines = locate(text).lines
    found = []
    for index, table in enumerate(tomllib.loads(text).get("roles") or []):
        value = table.get("role") if isinstance(table, dict) else None
        if isinstance(value, str):
            key: KeyPath = ("roles", index, "role")
            found.append(PolicyReference(str(path), lines.get(key), key, value.strip()))
    return found


def parse_duration(text: str) -> timedelta:
    """Turn "5d", "36h", "90m" or a combination in that order ("1d12h") into a timedelta.

    Durations are written as strings rather than TOML numbers so that a reader never has to guess the
    unit. Zero is a valid duration here; callers decide whether they need a positive one.
    """
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"{text!r}: {DURATION_HINT}")
    days, hours, minutes = (int(group) if group else 0 for group in match.groups())
    try:
        return timedelta(days=days, hours=hours, minutes=minutes)
    except OverflowError:
        raise ValueError(f"{text!r}: a duration this long cannot be represented") from None


def format_duration(duration: timedelta) -> str:
    """The inverse of parse_duration for whole minutes, so messages quote durations as written."""
    minutes = int(duration.total_seconds()) // 60
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{value}{unit}" for value, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if value]
    return "".join(parts) or "0m"


class _Schedule(NamedTuple):
    cron: str
    timezone: str
    deadline: timedelta
    reminder_every: timedelta


def _section(fallback: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Read a section of the policy; on a problem, note it and go on with ``fallback(*args)``, so the
    loader reports every problem at once. Nothing read on a fallback is ever used: ``policy()`` raises."""

    def wrap(read: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(read)
        def reading(self: _Loader, *args: Any) -> Any:
            try:
                return read(self, *args)
            except PolicyError as error:
                self.found.append(error)
                return fallback(*args)

        return reading

    return wrap


# What later sections check against when [schedule] itself is broken: no deadline to fall short of.
_UNREADABLE_SCHEDULE = _Schedule(Policy.schedule_cron, Policy.timezone, timedelta.max, Policy.reminder_every)


class _Loader:
    """Walks the parsed document table by table, turning every problem into a located PolicyError."""

    def __init__(self, text: str, source: str, document: dict[str, Any]) -> None:
        self.source = source
        self.document = document
        self.lines = locate(text).lines
        self.found: list[PolicyError] = []  # problems of sections that were read on past them

    def policy(self) -> Policy:
        """The policy, or a PolicyError carrying every problem: one mistake must not hide the next."""
        try:
            policy = self.build()
        except PolicyError as error:
            self.found.append(error)
        if self.found:
            raise PolicyError.every(self.found)
        return policy

    # -- the policy, section by section -------------------------------------------------------------

    def build(self) -> Policy:
        self.only((), self.document, _TOP_LEVEL)
        tenant_id, tenant_name, teams_tenant_ids = self.tenant()
        fallback, security_leads = self.reviewers()
        schedule = self.schedule()
        return Policy(
            tenant_id=tenant_id,
            tenant_name=tenant_name,
            role_owners=self.owner_map("roles", "role"),
            partner_owners=self.owner_map("partners", "partner"),
            subscription_owners=self.owner_map("subscriptions", "subscription"),
            recovery_owners_include_admin=self.recovery_include_admin(),
            fallback_reviewers=fallback,
            security_leads=security_leads,
            delegates=self.delegates(),
            schedule_cron=schedule.cron,
            timezone=schedule.timezone,
            deadline=schedule.deadline,
            reminder_every=schedule.reminder_every,
            escalation=self.escalation(schedule.deadline, Policy.escalation),
            no_answer=self.no_answer(),
            revoke_wins=self.revoke_wins(),
            remediation=self.remediation_mode(),
            dual_custody_global_admin=self.dual_custody(),
            break_glass=self.break_glass(),
            exceptions=self.exceptions(),
            justification_max_chars=self.justification_max_chars(),
            change_escalate=self.change_escalate(),
            teams_tenant_ids=teams_tenant_ids,
            slack_users=self.slack_users(),
        )

    @_section(lambda: ("", "", ()))
    def tenant(self) -> tuple[str, str, tuple[str, ...]]:
        self.table(("tenant",), ("id", "name", "teams_tenant_ids"), required=True)
        tenant_id = self.string(("tenant", "id"))
        if not _GUID.fullmatch(tenant_id):
            self.fail(("tenant", "id"), "expected the tenant id, a GUID like 2f4a9b6c-3d1e-4f5a-8b7c-9d0e1f2a3b4c")
        extra = self.present(("tenant", "teams_tenant_ids"), [])
        if not isinstance(extra, list):
            self.fail(("tenant", "teams_tenant_ids"), f"expected an array of tenant ids (GUIDs), got {_toml_type(extra)}")
        for index, other in enumerate(extra):
            if not isinstance(other, str) or not _GUID.fullmatch(other):
                self.fail(
                    ("tenant", "teams_tenant_ids"), f"entry {index + 1}, {_render(other)}: expected a tenant id (a GUID)",
                    at=("tenant", "teams_tenant_ids", index),
                )
        return tenant_id.lower(), self.string(("tenant", "name")), tuple(other.lower() for other in extra)

    @_section(lambda: Policy.change_escalate)
    def change_escalate(self) -> timedelta:
        if self.table(("review",), _REVIEW_KEYS) is None or self.lookup(("review", "change_escalate")) is _MISSING:
            return Policy.change_escalate
        value = self.duration(("review", "change_escalate"), Policy.change_escalate)
        if value > MAX_CHANGE_ESCALATE:
            self.fail(("review", "change_escalate"),
                      f"must be at most \"{format_duration(MAX_CHANGE_ESCALATE)}\": a change to privileged access is "
                      "asked about at once and reaches the security leads within hours, not at the weekly pace")
        return value

    @_section(lambda: Policy.justification_max_chars)
    def justification_max_chars(self) -> int:
        if self.table(("review",), _REVIEW_KEYS) is None:
            return Policy.justification_max_chars
        value = self.present(("review", "justification_max_chars"), Policy.justification_max_chars)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(("review", "justification_max_chars"), f"expected a whole number of characters, got {_toml_type(value)}")
        if not MIN_JUSTIFICATION <= value <= MAX_JUSTIFICATION_LIMIT:
            self.fail(
                ("review", "justification_max_chars"),
                f"must be between {MIN_JUSTIFICATION} (the shortest justification a Revoke needs) and "
                f"{MAX_JUSTIFICATION_LIMIT} (a justification is a few sentences, not a document)",
            )
        return value

    @_section(dict)
    def slack_users(self) -> dict[str, str]:
        """``[slack] users``: people mapped to their Slack member ids explicitly, for those whose Slack e-mail
        is not their directory address (the others are matched by e-mail)."""
        if self.table(("slack",), ("users",)) is None:
            return {}
        users = self.present(("slack", "users"), {})
        if not isinstance(users, dict):
            self.fail(("slack", "users"), f'expected a table like {{ "alexw@contoso.com" = "U012AB3CDE" }}, got {_toml_type(users)}')
        for person, slack_id in users.items():
            if not _is_person(person):
                self.fail(("slack", "users", person), f"the key: {_PERSON_HINT}")
            if not isinstance(slack_id, str) or not _SLACK_USER.fullmatch(slack_id):
                self.fail(("slack", "users", person), "expected a Slack member id like U012AB3CDE (profile → ⋮ → Copy member ID)")
        return dict(users)

    @_section(lambda: ((), ()))
    def reviewers(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        self.table(("reviewers",), ("fallback", "security_leads"), required=True)
        return self.people(("reviewers", "fallback")), self.people(("reviewers", "security_leads"))

    def owner_map(self, array: str, name_key: str) -> dict[str, tuple[str, ...]]:
        """[[roles]], [[partners]] or [[subscriptions]]: a lower-cased name or id -> its owners, each listed once."""
        owners: dict[str, tuple[str, ...]] = {}
        first_listed: dict[str, KeyPath] = {}
        for path in self.tables((array,), (name_key, "owners")):
            try:  # each table on its own: a typo in one hides nothing about the next
                name_path = path + (name_key,)
                key = self.string(name_path).strip().lower()
                if key in first_listed:
                    earlier = first_listed[key]
                    self.fail(
                        name_path,
                        f"already listed in {_header(earlier)} (line {self.line_of(earlier + (name_key,))}); "
                        "list each once with all its owners",
                    )
                first_listed[key] = path
                owners[key] = self.people(path + ("owners",))
            except PolicyError as error:
                self.found.append(error)
        return owners

    @_section(lambda: False)
    def recovery_include_admin(self) -> bool:
        if self.table(("recovery_contacts",), ("include_admin",)) is None:
            return False
        return self.boolean(("recovery_contacts", "include_admin"), default=False)

    @_section(dict)
    def delegates(self) -> dict[str, tuple[str, ...]]:
        table = self.table(("delegates",), None)
        if table is None:
            return {}
        delegates: dict[str, tuple[str, ...]] = {}
        for reviewer in table:
            path: KeyPath = ("delegates", reviewer)
            if not _is_person(reviewer):
                self.fail(path, f"the key must be the reviewer: {_PERSON_HINT}")
            people = self.people(path)
            if reviewer.lower() in (person.lower() for person in people):
                self.fail(path, "a reviewer cannot be their own delegate")
            delegates[reviewer] = people
        return delegates

    @_section(lambda: _UNREADABLE_SCHEDULE)
    def schedule(self) -> _Schedule:
        keys = ("cron", "timezone", "deadline", "reminder_every")
        self.table(("schedule",), keys)
        cron = self.string(("schedule", "cron"), default=Policy.schedule_cron, example='"0 9 * * MON"')
        if not _cron_is_usable(cron):
            self.fail(
                ("schedule", "cron"),
                'expected a cron expression with five fields, minute hour day month weekday, that fires '
                'at some time (e.g. "0 9 * * MON" for Mondays at 09:00)',
            )
        timezone = self.string(("schedule", "timezone"), default=Policy.timezone, example='"Europe/London"')
        if timezone not in _time_zones():
            close = difflib.get_close_matches(timezone, _time_zones(), n=1)
            self.fail(
                ("schedule", "timezone"),
                "unknown time zone; expected an IANA name like \"Europe/London\" or \"UTC\""
                + (f"; did you mean {close[0]!r}?" if close else ""),
            )
        return _Schedule(
            cron,
            timezone,
            self.duration(("schedule", "deadline"), Policy.deadline),
            self.duration(("schedule", "reminder_every"), Policy.reminder_every),
        )

    @_section(lambda deadline, default: default)
    def escalation(self, deadline: timedelta, default: tuple[EscalationStep, ...]) -> tuple[EscalationStep, ...]:
        if self.lookup(("escalation",)) is _MISSING:
            for step in default:
                if step.after >= deadline:
                    self.fail(
                        ("schedule", "deadline"),
                        f"the default escalation hands items on after {format_duration(step.after)}; a deadline "
                        "this short expires them first: set a longer deadline or list [[escalation]] steps",
                    )
            return default
        steps: list[EscalationStep] = []
        previous: KeyPath | None = None
        for path in self.tables(("escalation",), ("to", "after")):
            to = _ESCALATION_TARGETS[self.choice(path + ("to",), tuple(_ESCALATION_TARGETS))]
            after = self.duration(path + ("after",), None)
            if previous is not None and STAGE_ORDER.index(to) <= STAGE_ORDER.index(steps[-1].to):
                self.fail(
                    path + ("to",),
                    f"comes after a step to {steps[-1].to.value!r} ({_header(previous)}); escalation goes "
                    "owner -> fallback -> security_leads, so a step back would never fire",
                )
            if previous is not None and after <= steps[-1].after:
                self.fail(
                    path + ("after",),
                    f"must be later than the step before it ({_header(previous)}, after = "
                    f'"{format_duration(steps[-1].after)}")',
                )
            if after >= deadline:
                self.fail(
                    path + ("after",),
                    f'must be less than the deadline ("{format_duration(deadline)}", [schedule] deadline): '
                    "at the deadline the item expires instead",
                )
            steps.append(EscalationStep(to, after))
            previous = path
        return tuple(steps)

    @_section(lambda: Policy.revoke_wins)
    def revoke_wins(self) -> bool:
        if self.table(("outcome",), ("no_answer", "revoke_wins")) is None:
            return Policy.revoke_wins
        return self.boolean(("outcome", "revoke_wins"), default=Policy.revoke_wins)

    @_section(lambda: Policy.no_answer)
    def no_answer(self) -> NoAnswer:
        if self.table(("outcome",), ("no_answer", "revoke_wins")) is None:
            return Policy.no_answer
        return NoAnswer(self.choice(("outcome", "no_answer"), tuple(NoAnswer), default=Policy.no_answer.value))

    @_section(lambda: Policy.remediation)
    def remediation_mode(self) -> RemediationMode:
        if self.table(("remediation",), ("mode", "dual_custody_global_admin")) is None:
            return Policy.remediation
        mode = self.choice(("remediation", "mode"), tuple(RemediationMode), default=Policy.remediation.value)
        return RemediationMode(mode)

    @_section(lambda: Policy.dual_custody_global_admin)
    def dual_custody(self) -> bool:
        if self.lookup(("remediation",)) is _MISSING:
            return Policy.dual_custody_global_admin
        return self.boolean(("remediation", "dual_custody_global_admin"), default=Policy.dual_custody_global_admin)

    @_section(tuple)
    def break_glass(self) -> tuple[BreakGlassAccount, ...]:
        accounts: list[BreakGlassAccount] = []
        first_listed: dict[str, KeyPath] = {}
        for path in self.tables(("break_glass",), ("principal", "rationale")):
            principal = self.person(path + ("principal",))
            if principal.lower() in first_listed:
                earlier = first_listed[principal.lower()]
                self.fail(path + ("principal",), f"already listed in {_header(earlier)}")
            first_listed[principal.lower()] = path
            accounts.append(BreakGlassAccount(principal, self.string(path + ("rationale",))))
        return tuple(accounts)

    @_section(tuple)
    def exceptions(self) -> tuple[PolicyExceptionGrant, ...]:
        grants: list[PolicyExceptionGrant] = []
        for path in self.tables(("exceptions",), ("subject", "rationale", "approved_by", "expires")):
            subject = self.string(path + ("subject",))
            is_key = subject.lower().startswith(SUBJECT_KEY_PREFIXES) and subject.split(":", 1)[1].strip() != ""
            if not is_key and not _is_person(subject):
                self.fail(
                    path + ("subject",),
                    'expected a subject key ("role:…", "partner:…", "recovery:…") or the user principal name '
                    "or object id of the account it excepts",
                )
            grants.append(
                PolicyExceptionGrant(
                    subject=subject,
                    rationale=self.string(path + ("rationale",)),
                    approved_by=self.person(path + ("approved_by",)),
                    expires=self.date(path + ("expires",)),
                )
            )
        return tuple(grants)

    # -- typed access -------------------------------------------------------------------------------

    def lookup(self, path: KeyPath) -> Any:
        value: Any = self.document
        for part in path:
            if isinstance(part, int):
                if not isinstance(value, list) or part >= len(value):
                    return _MISSING
            elif not isinstance(value, dict) or part not in value:
                return _MISSING
            value = value[part]
        return value

    def table(self, path: KeyPath, keys: tuple[str, ...] | None, *, required: bool = False) -> dict[str, Any] | None:
        """The table at ``path`` (None when absent); ``keys`` are the only keys allowed, None for any."""
        value = self.lookup(path)
        if value is _MISSING:
            if required:
                self.fail(path, "required table is missing", table=True)
            return None
        if not isinstance(value, dict):
            self.fail(path, f"expected a table ({_header(path)}), got {_toml_type(value)}")
        if keys is not None:
            self.only(path, value, keys)
        return value

    def tables(self, path: KeyPath, keys: tuple[str, ...]) -> list[KeyPath]:
        """The paths of the tables of the array of tables at ``path``, each checked for unknown keys."""
        value = self.lookup(path)
        if value is _MISSING:
            return []
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            got = _toml_type(value)
            if isinstance(value, list):
                got = "an array holding " + next(_toml_type(item) for item in value if not isinstance(item, dict))
            self.fail(path, f"expected an array of tables ([[{_dotted(path)}]]), got {got}")
        paths = [path + (index,) for index in range(len(value))]
        for item_path, item in zip(paths, value):
            self.only(item_path, item, keys)
        return paths

    def only(self, path: KeyPath, table: dict[str, Any], keys: tuple[str, ...]) -> None:
        """Note every key of ``table`` not in ``keys`` (the known ones are still read)."""
        for key in table:
            if key not in keys:
                close = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
                what = "table" if isinstance(table[key], dict) or _is_table_array(table[key]) else "key"
                hint = f"did you mean {close[0]!r}?" if close else "expected one of " + ", ".join(keys)
                self.found.append(self.error(path + (key,), f"unknown {what}; {hint}"))

    def present(self, path: KeyPath, default: Any) -> Any:
        value = self.lookup(path)
        if value is _MISSING:
            if default is _MISSING:
                self.fail(path, "required key is missing")
            return default
        return value

    def string(self, path: KeyPath, *, default: Any = _MISSING, example: str | None = None) -> str:
        value = self.present(path, default)
        if not isinstance(value, str):
            expected = f"a string such as {example}" if example else "a string"
            self.fail(path, f"expected {expected}, got {_toml_type(value)}")
        if not value.strip():
            self.fail(path, "must not be empty")
        return value

    def boolean(self, path: KeyPath, *, default: bool) -> bool:
        value = self.present(path, default)
        if not isinstance(value, bool):
            self.fail(path, f"expected a boolean (true or false), got {_toml_type(value)}")
        return value

    def choice(self, path: KeyPath, choices: tuple[str, ...], *, default: Any = _MISSING) -> str:
        """One of ``choices`` (plain strings or StrEnum members, always shown as the text to write)."""
        allowed = tuple(str(choice) for choice in choices)
        listed = ", ".join(f'"{choice}"' for choice in allowed)
        value = self.present(path, default)
        if not isinstance(value, str):
            self.fail(path, f"expected a string, one of {listed}, got {_toml_type(value)}")
        if value not in allowed:
            close = difflib.get_close_matches(value, allowed, n=1)
            self.fail(path, f"expected one of {listed}" + (f"; did you mean '{close[0]}'?" if close else ""))
        return value

    def duration(self, path: KeyPath, default: timedelta | None) -> timedelta:
        text = self.string(path, default=_MISSING if default is None else format_duration(default), example='"5d"')
        try:
            value: timedelta | None = parse_duration(text)
        except ValueError:
            value = None
        if value is None:
            self.fail(path, DURATION_HINT + ', combinable as in "1d12h"')
        if value <= timedelta(0):
            self.fail(path, "must be longer than zero")
        return value

    def date(self, path: KeyPath) -> date:
        value = self.present(path, _MISSING)
        if isinstance(value, datetime):
            self.fail(path, "expected a date without a time, like 2027-01-31")
        if not isinstance(value, date):
            quoted = " (without quotes)" if isinstance(value, str) else ""
            self.fail(path, f"expected a TOML date like 2027-01-31{quoted}, got {_toml_type(value)}")
        return value

    def person(self, path: KeyPath) -> str:
        value = self.string(path, example='"alexw@contoso.com"')
        if not _is_person(value):
            self.fail(path, _PERSON_HINT)
        return value

    def people(self, path: KeyPath) -> tuple[str, ...]:
        """A required, non-empty array of people; a bad entry is reported on its own line."""
        value = self.present(path, _MISSING)
        if not isinstance(value, list):
            self.fail(path, f'expected an array of people like ["alexw@contoso.com"], got {_toml_type(value)}')
        if not value:
            self.fail(path, "must name at least one person")
        for index, person in enumerate(value):
            if not isinstance(person, str):
                self.fail(path, f"entry {index + 1} is {_toml_type(person)}; expected a string", at=path + (index,))
            if not _is_person(person):
                self.fail(path, f"entry {index + 1}, {_render(person)}: {_PERSON_HINT}", at=path + (index,))
        return tuple(value)

    # -- errors -------------------------------------------------------------------------------------

    def line_of(self, path: KeyPath) -> int | None:
        """The line of ``path``, or of the nearest enclosing table when the key itself is absent."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    def fail(self, path: KeyPath, detail: str, *, at: KeyPath | None = None, table: bool = False) -> NoReturn:
        """Raise at ``path``; ``at`` points the line elsewhere (an array entry), ``table`` names a table."""
        raise self.error(path, detail, at=at, table=table)

    def error(self, path: KeyPath, detail: str, *, at: KeyPath | None = None, table: bool = False) -> PolicyError:
        value = self.lookup(path)
        subject = _header(path) if table else _describe(path, value)
        if value is not _MISSING and not isinstance(value, dict) and not _is_table_array(value):
            subject += f" = {_render(value)}"
        return PolicyError(self.source, self.line_of(at or path), _dotted(path), f"{subject}: {detail}")



def _syntax_error(text: str, source: str, error: tomllib.TOMLDecodeError) -> PolicyError:
    """Re-raise tomllib's error at its line, naming the key written there when one can be found."""
    message = str(error)
    found = _SYNTAX_POSITION.search(message)
    text_lines = text.split("\n")
    if found:
        line = int(found.group(1))
    else:  # "at end of document": point at the last line that holds anything
        line = len(text.rstrip().split("\n"))
    key = locate("\n".join(text_lines[:line])).key_at(line)
    detail = f"not valid TOML: {message}"
    if line <= len(text_lines) and _UNQUOTED_DURATION.search(text_lines[line - 1]):
        detail += '; durations are strings, write them in quotes, e.g. deadline = "5d"'
    if key is None:
        return PolicyError(source, line, None, detail)
    return PolicyError(source, line, _dotted(key), f"{_describe(key, _MISSING)}: {detail}")


def _is_person(text: str) -> bool:
    return bool(_GUID.fullmatch(text) or _PRINCIPAL_NAME.fullmatch(text))


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


def _cron_is_usable(cron: str) -> bool:
    """Valid for croniter, minute-resolution (campaign periods are named to the minute) and ever firing."""
    if not cron.startswith("@") and len(cron.split()) != 5:
        return False
    if not croniter.is_valid(cron):
        return False
    try:
        croniter(cron, datetime(2026, 1, 1)).get_next(datetime)
    except CroniterBadDateError:  # e.g. "0 0 30 2 *": the 30th of February never comes
        return False
    return True


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, datetime):
        return "a date-time"
    if isinstance(value, date):
        return "a date"
    if isinstance(value, time):
        return "a time"
    if isinstance(value, list):
        return "an array"
    return "a table"


def _render(value: Any) -> str:
    """A value as it would be written in TOML, shortened so a message stays on one line."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, (date, time)):
        text = value.isoformat()
    elif isinstance(value, list):
        text = "[" + ", ".join(_render(item) for item in value) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{_key_text(key)} = {_render(item)}" for key, item in value.items()) + "}"
    else:
        text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _key_text(key: str) -> str:
    return key if key and all(char in BARE_KEY_CHARS for char in key) else json.dumps(key, ensure_ascii=False)


def _dotted(path: KeyPath) -> str:
    """``schedule.deadline``, ``roles[2].owners`` (tables counted from 1), ``delegates."a@b.com"``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part + 1}]"
        else:
            text += ("." if text else "") + _key_text(part)
    return text


def _header(path: KeyPath) -> str:
    """How a person finds the table in the file: ``[schedule]`` or ``[[roles]] #2``."""
    if path and isinstance(path[-1], int):
        return f"[[{_dotted(path[:-1])}]] #{path[-1] + 1}"
    return f"[{_dotted(path)}]"


def _describe(path: KeyPath, value: Any) -> str:
    """``[schedule] deadline``, ``[[roles]] #2``, ``[tenant]`` or a top-level ``key``: the words a reader
    searches the file for."""
    if not path:
        return "the policy"
    last = path[-1]
    if isinstance(last, int) or isinstance(value, dict):
        return _header(path)
    if _is_table_array(value):
        return f"[[{_dotted(path)}]]"
    if len(path) == 1:
        return _key_text(last)
    return f"{_header(path[:-1])} {_key_text(last)}"
