"""The policy loader: the shipped files load, and every mistake is named by file, key and line."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.engine.model import Stage
from bot.policy import (
    EscalationStep,
    NoAnswer,
    Policy,
    PolicyError,
    RemediationMode,
    load_policy,
    parse_duration,
    parse_policy,
)

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"

# Seven lines; whatever a test appends starts on line 8.
BASE = """\
[tenant]
id = "2F4A9B6C-3D1E-4F5A-8B7C-9D0E1F2A3B4C"
name = "Contoso"

[reviewers]
fallback = ["leeg@contoso.com"]
security_leads = ["alexw@contoso.com"]
"""


def error_in(extra: str, base: str = BASE) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        parse_policy(base + extra, "policy/contoso.toml")
    return caught.value


def test_shipped_demo_policy_loads_with_the_demo_tenants_owners() -> None:
    policy = load_policy(POLICY_DIR / "demo.toml")
    assert policy.tenant_id == "2f4a9b6c-3d1e-4f5a-8b7c-9d0e1f2a3b4c"
    assert policy.tenant_name == "Contoso"
    assert len(policy.role_owners) == 8
    assert policy.role_owners["exchange administrator"] == ("pattif@contoso.com",)
    others = {role: owners for role, owners in policy.role_owners.items() if role != "exchange administrator"}
    assert set(others.values()) == {("alexw@contoso.com",)}
    assert policy.partner_owners == {"*": ("alexw@contoso.com",)}
    assert policy.fallback_reviewers == ("leeg@contoso.com",)
    assert policy.security_leads == ("alexw@contoso.com", "lynner@contoso.com")
    assert policy.delegates == {"alexw@contoso.com": ("lynner@contoso.com",), "pattif@contoso.com": ("adelev@contoso.com",)}
    assert (policy.schedule_cron, policy.timezone) == ("0 9 * * MON", "Europe/London")
    assert (policy.deadline, policy.reminder_every) == (timedelta(days=5), timedelta(days=1))
    assert policy.escalation == (
        EscalationStep(Stage.FALLBACK, timedelta(days=3)),
        EscalationStep(Stage.SECURITY_LEADS, timedelta(days=4)),
    )
    assert policy.no_answer is NoAnswer.ESCALATE
    assert policy.remediation is RemediationMode.OFF
    assert [account.principal for account in policy.break_glass] == ["breakglass01@contoso.onmicrosoft.com"]
    (grant,) = policy.exceptions
    assert (grant.subject, grant.approved_by, grant.expires) == (
        "breakglass01@contoso.onmicrosoft.com",
        "alexw@contoso.com",
        date(2027, 3, 31),
    )


def test_shipped_example_policy_loads() -> None:
    policy = load_policy(POLICY_DIR / "example.toml")
    assert policy.role_owners["62e90394-69f5-4237-9190-012177145e10"] == ("alexw@contoso.com",)
    assert policy.recovery_owners_include_admin is False
    assert policy.dual_custody_global_admin is True


def test_minimal_policy_gets_the_documented_defaults() -> None:
    policy = parse_policy(BASE)
    assert policy.tenant_id == "2f4a9b6c-3d1e-4f5a-8b7c-9d0e1f2a3b4c"
    defaults = Policy("t", "n", {}, {}, False, ("f@x.com",), ("s@x.com",))
    assert policy.escalation == defaults.escalation
    assert (policy.schedule_cron, policy.timezone, policy.deadline) == ("0 9 * * MON", "UTC", timedelta(days=5))
    assert policy.no_answer is NoAnswer.ESCALATE and policy.remediation is RemediationMode.OFF
    assert policy.dual_custody_global_admin is True and policy.recovery_owners_include_admin is False


def test_role_and_partner_keys_are_lower_cased() -> None:
    policy = parse_policy(
        BASE
        + '[[roles]]\nrole = "62E90394-69F5-4237-9190-012177145E10"\nowners = ["alexw@contoso.com"]\n'
        + '[[roles]]\nrole = "Exchange Administrator"\nowners = ["pattif@contoso.com"]\n'
        + '[[partners]]\npartner = "Northwind IT Services"\nowners = ["alexw@contoso.com"]\n'
    )
    assert set(policy.role_owners) == {"62e90394-69f5-4237-9190-012177145e10", "exchange administrator"}
    assert set(policy.partner_owners) == {"northwind it services"}


def test_toml_syntax_error_names_its_line_and_key() -> None:
    error = error_in('[schedule]\ncron = "0 9 * * MON"\ndeadline = 5d\n')
    assert error.line == 10
    assert error.key == "schedule.deadline"
    assert str(error).startswith("policy/contoso.toml, line 10: [schedule] deadline: not valid TOML")
    assert 'deadline = "5d"' in str(error)


def test_unterminated_string_at_end_of_document_points_at_the_last_written_line() -> None:
    error = error_in('[tenant.extra]\nnote = "never closed\n\n\n')
    assert error.line == 9
    assert error.key == "tenant.extra.note"


def test_unknown_key_is_named_with_the_closest_known_key() -> None:
    error = error_in('[schedule]\ntimezone = "UTC"\ndeadlin = "5d"\n')
    assert error.line == 10
    assert error.key == "schedule.deadlin"
    assert "unknown key; did you mean 'deadline'?" in str(error)


def test_unknown_table_is_named_with_the_closest_known_table() -> None:
    error = error_in('\n[schedul]\ndeadline = "5d"\n')
    assert (error.line, error.key) == (9, "schedul")
    assert "[schedul]: unknown table; did you mean 'schedule'?" in str(error)


def test_missing_required_key_points_at_its_table() -> None:
    text = BASE.replace('name = "Contoso"\n', "")
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.toml")
    assert (caught.value.line, caught.value.key) == (1, "tenant.name")
    assert str(caught.value) == "p.toml, line 1: [tenant] name: required key is missing"


def test_missing_required_table_names_the_table() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(BASE.split("[reviewers]")[0], "p.toml")
    assert (caught.value.line, caught.value.key) == (None, "reviewers")
    assert str(caught.value) == "p.toml: [reviewers]: required table is missing"


def test_empty_reviewer_list_is_refused() -> None:
    error = error_in("", base=BASE.replace('["leeg@contoso.com"]', "[]"))
    assert (error.line, error.key) == (6, "reviewers.fallback")
    assert "must name at least one person" in str(error)


def test_value_of_the_wrong_type_names_the_expected_type() -> None:
    error = error_in('[recovery_contacts]\ninclude_admin = "yes"\n')
    assert (error.line, error.key) == (9, "recovery_contacts.include_admin")
    assert 'include_admin = "yes": expected a boolean (true or false), got a string' in str(error)


def test_duration_written_as_a_number_names_the_expected_string() -> None:
    error = error_in("[schedule]\nreminder_every = 1\n")
    assert (error.line, error.key) == (9, "schedule.reminder_every")
    assert 'expected a string such as "5d", got an integer' in str(error)


def test_bad_duration_is_named() -> None:
    error = error_in('[schedule]\ndeadline = "5 days"\n')
    assert (error.line, error.key) == (9, "schedule.deadline")
    assert str(error).startswith(
        'policy/contoso.toml, line 9: [schedule] deadline = "5 days": expected a duration like "5d", "36h" or "90m"'
    )


def test_zero_deadline_is_refused() -> None:
    error = error_in('[schedule]\ndeadline = "0d"\n')
    assert (error.line, error.key) == (9, "schedule.deadline")
    assert "must be longer than zero" in str(error)


def test_bad_cron_is_named() -> None:
    error = error_in('[schedule]\ncron = "0 9 * MON"\n')
    assert (error.line, error.key) == (9, "schedule.cron")
    assert "cron expression" in str(error)


def test_cron_that_never_fires_is_refused() -> None:
    error = error_in('[schedule]\ncron = "0 9 30 2 *"\n')
    assert (error.line, error.key) == (9, "schedule.cron")


def test_unknown_time_zone_suggests_the_closest() -> None:
    error = error_in('[schedule]\ncron = "0 9 * * MON"\ntimezone = "Europe/Londn"\n')
    assert (error.line, error.key) == (10, "schedule.timezone")
    assert "did you mean 'Europe/London'?" in str(error)


def test_escalation_steps_must_be_increasing() -> None:
    error = error_in(
        '[[escalation]]\nto = "fallback"\nafter = "3d"\n\n[[escalation]]\nto = "security_leads"\nafter = "2d"\n'
    )
    assert (error.line, error.key) == (14, "escalation[2].after")
    assert "[[escalation]] #2 after = \"2d\": must be later than the step before it" in str(error)


def test_escalation_must_come_before_the_deadline() -> None:
    error = error_in(
        '[schedule]\ndeadline = "3d"\n\n[[escalation]]\nto = "fallback"\nafter = "1d"\n'
        '[[escalation]]\nto = "security_leads"\nafter = "3d"\n'
    )
    assert (error.line, error.key) == (16, "escalation[2].after")
    assert "must be less than the deadline" in str(error)


def test_default_escalation_beyond_a_short_deadline_is_refused() -> None:
    error = error_in('[schedule]\ndeadline = "2d"\n')
    assert (error.line, error.key) == (9, "schedule.deadline")
    assert "default escalation" in str(error)


def test_escalation_never_steps_back_down_the_chain() -> None:
    error = error_in(
        '[[escalation]]\nto = "security_leads"\nafter = "3d"\n[[escalation]]\nto = "fallback"\nafter = "4d"\n'
    )
    assert (error.line, error.key) == (12, "escalation[2].to")


def test_escalation_target_must_be_known() -> None:
    error = error_in('[[escalation]]\nto = "security_lead"\nafter = "3d"\n')
    assert (error.line, error.key) == (9, "escalation[1].to")
    assert "did you mean 'security_leads'?" in str(error)


def test_duplicate_role_names_the_second_listing() -> None:
    error = error_in(
        '[[roles]]\nrole = "Global Administrator"\nowners = ["alexw@contoso.com"]\n\n'
        '[[roles]]\nrole = "global administrator"\nowners = ["leeg@contoso.com"]\n'
    )
    assert (error.line, error.key) == (13, "roles[2].role")
    assert "already listed in [[roles]] #1 (line 9)" in str(error)


def test_bad_person_is_named_on_its_own_line() -> None:
    error = error_in('[[partners]]\npartner = "*"\nowners = [\n    "alexw@contoso.com",\n    "Lee Gu",\n]\n')
    assert (error.line, error.key) == (12, "partners[1].owners")
    assert 'entry 2, "Lee Gu": expected an Entra object id' in str(error)


def test_person_with_two_at_signs_is_refused() -> None:
    error = error_in('[[break_glass]]\nprincipal = "bg@@contoso.com"\nrationale = "safe"\n')
    assert (error.line, error.key) == (9, "break_glass[1].principal")


def test_reviewer_who_delegates_to_themself_is_refused() -> None:
    error = error_in('[delegates]\n"alexw@contoso.com" = ["lynner@contoso.com", "ALEXW@contoso.com"]\n')
    assert (error.line, error.key) == (9, 'delegates."alexw@contoso.com"')


EXCEPTION = (
    '[[exceptions]]\nsubject = "role:62e90394:alex"\nrationale = "accepted"\napproved_by = "alexw@contoso.com"\n'
)


def test_exception_date_written_as_a_string_is_refused() -> None:
    error = error_in(EXCEPTION + 'expires = "2027-01-31"\n')
    assert (error.line, error.key) == (12, "exceptions[1].expires")
    assert "expected a TOML date like 2027-01-31 (without quotes), got a string" in str(error)


def test_exception_date_with_a_time_is_refused() -> None:
    error = error_in(EXCEPTION + "expires = 2027-01-31T10:00:00Z\n")
    assert (error.line, error.key) == (12, "exceptions[1].expires")
    assert "without a time" in str(error)


def test_impossible_exception_date_is_a_syntax_error_at_its_line() -> None:
    error = error_in(EXCEPTION + "expires = 2027-02-30\n")
    assert (error.line, error.key) == (12, "exceptions[1].expires")


def test_exception_subject_must_be_a_subject_key_or_a_person() -> None:
    error = error_in(EXCEPTION.replace("role:62e90394:alex", "role:") + "expires = 2027-01-31\n")
    assert (error.line, error.key) == (9, "exceptions[1].subject")


def test_error_in_the_second_roles_table_points_at_that_table() -> None:
    error = error_in(
        '[[roles]]\nrole = "Global Administrator"\nowners = ["alexw@contoso.com"]\n\n'
        '[[roles]]\nrole = "Exchange Administrator"\n'
    )
    assert (error.line, error.key) == (12, "roles[2].owners")
    assert "[[roles]] #2 owners: required key is missing" in str(error)


def test_dotted_key_is_located_in_the_table_it_is_written_in() -> None:
    error = error_in('schedule.cron = "0 9 * * MON"\n')
    assert (error.line, error.key) == (8, "reviewers.schedule")
    assert "did you mean" not in str(error)


def test_header_inside_a_multiline_string_is_not_taken_for_a_table() -> None:
    error = error_in(
        '[[break_glass]]\nrationale = """\n[[break_glass]]\nprincipal = "bg@contoso.com"\n"""\n'
        'principal = "Lee Gu"\n'
    )
    assert (error.line, error.key) == (13, "break_glass[1].principal")


def test_error_inside_an_array_of_inline_tables_names_the_line_of_the_entry() -> None:
    inline_roles = (
        "roles = [\n"
        '  { role = "Global Administrator", owners = ["alexw@contoso.com"] },\n'
        '  { role = "Exchange Administrator", owners = [\n'
        '    "not a person"] },\n'
        "]\n"
    )
    error = error_in(BASE, base=inline_roles)
    assert (error.line, error.key) == (4, "roles[2].owners")


def test_file_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_bytes(BASE.encode() + b'\n[tenant.x]\nnote = "caf\xe9"\n')
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert caught.value.line == 10


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5d", timedelta(days=5)),
        ("36h", timedelta(hours=36)),
        ("90m", timedelta(minutes=90)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("2d3h4m", timedelta(days=2, hours=3, minutes=4)),
        ("0m", timedelta(0)),
    ],
)
def test_parse_duration_reads_days_hours_and_minutes(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5", "5 days", "1h1d", "5D", "-1d", "1.5d", "d", "9" * 20 + "d"])
def test_parse_duration_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


DEMO_TEXT = (POLICY_DIR / "demo.toml").read_text(encoding="utf-8")


@st.composite
def edited_demo_policies(draw: st.DrawFn) -> str:
    """The demo policy with a slice cut out and arbitrary text put in its place: mostly valid TOML."""
    start = draw(st.integers(0, len(DEMO_TEXT)))
    end = draw(st.integers(start, min(len(DEMO_TEXT), start + 200)))
    filler = draw(st.text(alphabet=st.sampled_from('[]{}"\'=.,#\n abc@1-_:dhmTZ'), max_size=30) | st.text(max_size=30))
    return DEMO_TEXT[:start] + filler + DEMO_TEXT[end:]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text() | edited_demo_policies())
def test_any_text_gives_a_policy_or_a_located_policy_error(text: str) -> None:
    try:
        policy = parse_policy(text, "fuzz.toml")
    except PolicyError as error:
        assert str(error).startswith("fuzz.toml")
        assert error.line is None or 1 <= error.line <= text.count("\n") + 1
    else:
        assert isinstance(policy, Policy)


def test_justification_cap_defaults_to_2000_and_can_be_set() -> None:
    assert parse_policy(BASE).justification_max_chars == 2000
    assert parse_policy(BASE + "\n[review]\njustification_max_chars = 500\n").justification_max_chars == 500


@pytest.mark.parametrize(
    ("value", "said"), [("3", "between 5"), ("1000000", "and 20000"), ('"2000"', "whole number"), ("true", "whole number")]
)
def test_a_justification_cap_out_of_range_or_of_the_wrong_type_is_named(value: str, said: str) -> None:
    error = error_in(f"\n[review]\njustification_max_chars = {value}\n")
    assert error.line == 10 and error.key == "review.justification_max_chars" and said in str(error)


def test_the_served_tenants_are_the_reviewed_one_and_the_listed_chat_tenants() -> None:
    other = "0B0E0C0D-0000-4000-8000-00000000BEEF"
    base = BASE.replace('name = "Contoso"', f'name = "Contoso"\nteams_tenant_ids = ["{other}"]')
    assert parse_policy(base).served_tenants == {"2f4a9b6c-3d1e-4f5a-8b7c-9d0e1f2a3b4c", other.lower()}
    assert parse_policy(BASE).served_tenants == {"2f4a9b6c-3d1e-4f5a-8b7c-9d0e1f2a3b4c"}


def test_a_chat_tenant_that_is_not_a_tenant_id_is_named() -> None:
    error = error_in("", BASE.replace('name = "Contoso"', 'name = "Contoso"\nteams_tenant_ids = ["contoso.com"]'))
    assert error.key == "tenant.teams_tenant_ids" and "entry 1" in str(error) and "GUID" in str(error)


def test_a_misspelt_choice_suggests_the_value_to_write_not_a_python_name() -> None:
    error = error_in('[remediation]\nmode = "aply"\n')
    assert (error.line, error.key) == (9, "remediation.mode")
    assert str(error).endswith('[remediation] mode = "aply": expected one of "off", "dry-run", "apply"; did you mean \'apply\'?')
    assert "RemediationMode" not in str(error)


def test_every_problem_in_the_file_is_reported_not_only_the_first() -> None:
    error = error_in(
        '[remediaton]\nmode = "off"\n'  # lines 8-9: an unknown table
        '[schedule]\ndeadline = "five days"\n'  # line 11
        '[[roles]]\nrole = "Exchange Administrator"\nowners = ["patti"]\n'  # line 14
        '[[roles]]\nrole = "Global Administrator"\nowners = ["alexw@contoso.com"]\n'
        '[[roles]]\nrole = "Security Administrator"\nowners = 3\n'  # line 20
        '[outcome]\nno_anser = "keep"\n'  # line 22
    )
    found = [(problem.line, problem.key) for problem in error.problems]
    assert found == [(8, "remediaton"), (11, "schedule.deadline"), (14, "roles[1].owners"), (20, "roles[3].owners"),
                     (22, "outcome.no_anser")]
    assert "[remediaton]: unknown table; did you mean 'remediation'?" in str(error.problems[0])
    assert (error.line, error.key) == (8, "remediaton") and "(and 4 more problem(s))" in str(error)


def test_a_policy_with_one_problem_carries_just_that_one() -> None:
    error = error_in('[schedule]\ndeadline = "5x"\n')
    assert error.problems == (error,) and "more problem" not in str(error)


def test_people_are_mapped_to_slack_member_ids() -> None:
    policy = parse_policy(BASE + '\n[slack]\nusers = { "pattif@contoso.com" = "U012AB3CDE" }\n')
    assert policy.slack_users == {"pattif@contoso.com": "U012AB3CDE"}
    assert parse_policy(BASE).slack_users == {}


@pytest.mark.parametrize(
    ("users", "said"),
    [('{ "pattif@contoso.com" = "patti" }', "Slack member id"), ('{ "Patti" = "U012AB3CDE" }', "principal name"),
     ('"pattif@contoso.com"', "expected a table")],
)
def test_a_slack_user_map_entry_that_is_not_a_person_and_a_member_id_is_named(users: str, said: str) -> None:
    error = error_in(f"\n[slack]\nusers = {users}\n")
    assert error.key.startswith("slack.users") and said in str(error)


def test_change_reviews_escalate_after_the_policys_hours_four_by_default() -> None:
    assert parse_policy(BASE).change_escalate == timedelta(hours=4)
    assert parse_policy(BASE + '\n[review]\nchange_escalate = "90m"\n').change_escalate == timedelta(minutes=90)
    assert parse_policy(BASE + "\n[review]\njustification_max_chars = 500\n").change_escalate == timedelta(hours=4)


@pytest.mark.parametrize(("value", "said"), [('"3d"', "at most \"1d\""), ('"soon"', "duration"), ("4", "string")])
def test_a_change_escalation_of_days_or_not_a_duration_is_refused_on_its_line(value: str, said: str) -> None:
    error = error_in(f"\n[review]\nchange_escalate = {value}\n")
    assert error.line == 10 and error.key == "review.change_escalate" and said in str(error)
