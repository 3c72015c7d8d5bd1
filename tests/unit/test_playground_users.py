"""Every person in the Playground's mock context is a real demo person with the role its comment names, so
`accessbot demo --as EMAIL` lets a newcomer try each role (it used to show nothing: unknown ids)."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from bot.config import DEMO_POLICY, DEMO_SNAPSHOT, REPO_ROOT
from bot.engine.campaigns import open_campaign
from bot.engine.routing import routing_from_policy
from bot.playground import UnknownPlaygroundUser, playground_config_as
from bot.policy import load_policy
from checks.findings import assess
from checks.snapshot import load_snapshot

PLAYGROUND = REPO_ROOT / ".m365agentsplayground.yml"
MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)


def playground_people(config: str | None = None) -> list[dict[str, str]]:
    """currentUser and users of the yml (or of ``config``), each with the role from the '# role: <role> — …'
    comment above it (the file is plain YAML of two levels; no YAML library is needed to read it)."""
    people: list[dict[str, str]] = []
    role = ""
    current: dict[str, str] | None = None
    text = PLAYGROUND.read_text(encoding="utf-8") if config is None else config
    for line in text.splitlines():
        if comment := re.match(r"\s*# role: (\w+)", line):
            role = comment.group(1)
        elif re.match(r"(currentUser:|  - id:)", line):
            current = {"role": role}
            people.append(current)
            role = ""
            if line.startswith("  - id:"):
                current["id"] = line.split(":", 1)[1].strip()
        elif current is not None and (field := re.match(r"\s+(\w+): (.+)", line)) and not line.startswith("  - "):
            current.setdefault(field.group(1), field.group(2).strip())
        elif not line.startswith(" "):
            current = None
    return people


@pytest.fixture(scope="module")
def demo():  # type: ignore[no-untyped-def]
    policy, snapshot = load_policy(DEMO_POLICY), load_snapshot(DEMO_SNAPSHOT)
    routing = routing_from_policy(policy, snapshot.resolve_principal, snapshot.manager_of)
    subjects, _ = assess(snapshot, MONDAY, [b.principal for b in policy.break_glass])
    opened = open_campaign(tenant_id=policy.tenant_id, tenant_name=policy.tenant_name, period="2026-11-23T09:00",
                           subjects=subjects, routing=routing, policy=policy, now=MONDAY)
    return snapshot, routing, opened.items


def test_the_playground_offers_five_people_besides_alex_and_every_role_among_them() -> None:
    people = playground_people()
    assert len(people) == 6 and all(person["role"] for person in people), people
    assert {"lead", "reviewer", "delegate"} <= {person["role"] for person in people[1:]}


@pytest.mark.parametrize("person", playground_people(), ids=lambda p: p["name"])
def test_each_playground_person_is_in_the_demo_tenant_with_the_role_its_comment_names(person, demo) -> None:  # type: ignore[no-untyped-def]
    snapshot, routing, items = demo
    oid = person["aadObjectId"]
    assert snapshot.resolve_principal(person["userPrincipleName"]) == oid
    assert snapshot.display_name(oid) == person["name"]
    reviews = [item for item in items if oid in item.reviewers]
    delegated = [item for item in items if routing.may_act_for(oid, item.reviewers) not in (None, oid)]
    role = person["role"]
    if role == "lead":
        assert oid in routing.security_leads
    elif role == "reviewer":
        assert reviews and oid not in routing.security_leads and oid not in routing.fallback
    elif role == "delegate":
        assert delegated and not reviews and oid not in routing.security_leads
    elif role == "fallback":
        assert oid in routing.fallback and not reviews
    elif role == "admin":
        assert any(oid in item.subject.holder_ids for item in items) and not reviews and not delegated
    else:
        pytest.fail(f"unknown role {role!r} in the comment above {person['name']}")


def _identities(people: list[dict[str, str]]) -> set[tuple[str, ...]]:
    keys = ("id", "name", "userPrincipleName", "aadObjectId", "givenName", "surname", "email")
    return {tuple(person.get(key, "") for key in keys) for person in people}


def test_demo_as_patti_makes_her_the_playgrounds_user_in_a_personal_chat_of_her_own() -> None:
    """The Playground has no switch-user button: `accessbot demo --as` is how a newcomer tries another role."""
    config = PLAYGROUND.read_text(encoding="utf-8")
    as_patti = playground_config_as(config, "PattiF@contoso.com")
    people = playground_people(as_patti)
    assert people[0]["aadObjectId"] == "f66eb8b7-79c8-407b-8b95-85a879f2381e"
    assert (people[0]["name"], people[0]["email"], people[0]["id"]) == (
        "Patti Fernandez", "pattif@contoso.com", "user-id-pattif")
    assert "Alex Wilber" in [person["name"] for person in people[1:]]
    assert _identities(people) == _identities(playground_people(config))  # the same six people, fields whole
    assert "id: a:accessbot-personal-pattif" in as_patti and "a:accessbot-personal-alexw" not in as_patti
    assert playground_config_as(config, "alexw@contoso.com") == config  # the default changes nothing


def test_demo_as_someone_who_is_not_a_playground_person_names_the_people_to_choose_from() -> None:
    with pytest.raises(UnknownPlaygroundUser, match="nobody@contoso.com.*pattif@contoso.com"):
        playground_config_as(PLAYGROUND.read_text(encoding="utf-8"), "nobody@contoso.com")
