"""[[subscriptions]] in the policy: who reviews the privileged roles of each Azure subscription."""

from __future__ import annotations

from bot.engine.model import AssignmentType, Subject, SubjectKind
from bot.engine.routing import routing_from_policy
from bot.policy import parse_policy
from tests.unit.test_policy import BASE, error_in

PROD = "6b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
PEOPLE = {"alexw@contoso.com": "alex", "pattif@contoso.com": "patti", "leeg@contoso.com": "lee"}


def owner_of(subscription_id: str, name: str) -> Subject:
    return Subject(key=f"azure:{subscription_id}:{OWNER}:user-1:active", kind=SubjectKind.AZURE_ROLE,
                   title=f"Megan Bowen — Owner of {name}", holder_name="Megan Bowen", holder_ids=("user-1",),
                   role_id=OWNER, role_name="Owner", assignment_type=AssignmentType.ACTIVE,
                   evidence={"Subscription": name})


def test_a_subscription_is_routed_by_its_name_or_id_and_any_other_to_the_star_entry() -> None:
    policy = parse_policy(
        BASE + '[[subscriptions]]\nsubscription = "Contoso Production"\nowners = ["pattif@contoso.com"]\n'
        + f'[[subscriptions]]\nsubscription = "{PROD.upper()}"\nowners = ["leeg@contoso.com"]\n'
        + '[[subscriptions]]\nsubscription = "*"\nowners = ["alexw@contoso.com"]\n'
    )
    routing = routing_from_policy(policy, PEOPLE.get)
    assert routing.owners_of(owner_of("another-id", "Contoso Production"), {}) == ("patti",)
    assert routing.owners_of(owner_of(PROD, "Renamed"), {}) == ("lee",)
    assert routing.owners_of(owner_of("dev-id", "Dev/Test"), {}) == ("alex",)


def test_a_subscription_listed_twice_is_refused_with_its_line() -> None:
    error = error_in('[[subscriptions]]\nsubscription = "*"\nowners = ["alexw@contoso.com"]\n'
                     '[[subscriptions]]\nsubscription = "*"\nowners = ["pattif@contoso.com"]\n')
    assert "already listed in [[subscriptions]] #1 (line 9)" in str(error)
