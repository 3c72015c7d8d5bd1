"""Hypothesis throws bodies, headers, activities and card values at the real HTTP app, auth off and on.

Whatever arrives, the app answers (no hang) with something other than a 5xx, and a request that is
refused (4xx) or unauthenticated leaves the ledger, the outbox and every stored reference as they were.
Replies go to a local Bot Connector; with authentication on only invokes that answer in the HTTP body get
a valid token, so nothing ever needs a token from the internet.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bot.channels.teams import BotCredentials
from tests.integration.test_teams_auth import APP_ID, FORGER_KEY, ISSUER, token
from tests.integration.test_teams_auth import openid_metadata_url as openid_metadata_url  # noqa: F401 (fixture)
from tests.integration.test_teams_messages import ALEX, PATTI, TENANT
from tests.reliability.served_bot import Answer, ServedBot

OTHER_TENANT = "0b0e0c0d-0000-4000-8000-00000000beef"
CONTROLS = "\x00\x01\x07\x08\x0b\x0c\r\x1b\x7f\x85\x9f\n\t"
FUZZ = settings(
    max_examples=600, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

hostile_text = st.text(
    alphabet=st.one_of(
        st.characters(),
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),  # lone surrogates: valid JSON, not UTF-8
        st.sampled_from(CONTROLS),
    ),
    max_size=40,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | hostile_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4),
    max_leaves=10,
)
PEOPLE = [
    {"id": "29:1alex", "name": "Alex Wilber", "aadObjectId": ALEX},
    PATTI,
    {"id": "29:1stranger", "name": "Mallory", "aadObjectId": "11111111-2222-3333-4444-555555555555"},
    {"id": "29:1anonymous", "name": "Someone"},
]
CARD_ACTION = "adaptiveCard/action"
INVOKE_NAMES = [CARD_ACTION, "task/fetch", "composeExtension/query", "config/fetch", "tab/fetch",
                "signin/verifyState", "fileConsent/invoke", "healthCheck", "application/search"]
VERBS = ["decide", "digest", "refresh", "details", "no-such-verb"]
ACTIONS = ["keep", "revoke", "dont_know", "reassign", "sudo"]
_UNSTORABLE = re.compile("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|\r(?!\n)")


def _unstorable_text(node: Any) -> bool:
    """The test's own oracle for text accessbot must refuse: a lone surrogate or a control character."""
    if isinstance(node, str):
        return bool(_UNSTORABLE.search(node))
    if isinstance(node, dict):
        return any(_unstorable_text(k) or _unstorable_text(v) for k, v in node.items())
    if isinstance(node, list):
        return any(_unstorable_text(v) for v in node)
    return False


@pytest.fixture(scope="module")
def open_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedBot]:
    served = ServedBot(tmp_path_factory.mktemp("fuzz-open")).start()
    yield served
    served.stop()


@pytest.fixture(scope="module")
def secured_bot(tmp_path_factory: pytest.TempPathFactory, openid_metadata_url: str) -> Iterator[ServedBot]:  # noqa: F811
    credentials = BotCredentials(
        app_id=APP_ID, app_password="not-used-offline", app_tenant_id=TENANT,
        openid_metadata_url=openid_metadata_url, token_issuer=ISSUER,
    )
    served = ServedBot(tmp_path_factory.mktemp("fuzz-secured"), credentials).start()
    yield served
    served.stop()


def item_ids(served: ServedBot) -> list[str]:
    assert served.runtime is not None
    return sorted(item for state in served.runtime.service.campaigns() for item in state.items)


@st.composite
def activities(draw: st.DrawFn, served: ServedBot, *, invokes_only: bool = False) -> dict[str, Any]:
    """A Teams activity, usually well-formed, with some fields dropped or replaced by arbitrary JSON."""
    kind = "invoke" if invokes_only else draw(st.sampled_from(["message"] * 2 + ["invoke"] * 4 + [
        "conversationUpdate", "installationUpdate", "event", "typing"]))
    person = draw(st.sampled_from(PEOPLE))
    tenant = draw(st.sampled_from([TENANT] * 5 + [TENANT.upper(), OTHER_TENANT, "", None]))
    activity: dict[str, Any] = {
        "type": kind,
        "id": "f:fuzz",
        "serviceUrl": served.connector.url,
        "channelId": "msteams",
        "from": dict(person),
        "conversation": {"conversationType": draw(st.sampled_from(["personal", "groupChat", "channel"])),
                         "id": f"a:fuzz-{person['id']}", **({"tenantId": tenant} if tenant is not None else {})},
        "recipient": {"id": f"28:{APP_ID}", "name": "accessbot"},
        "channelData": {"tenant": {"id": draw(st.sampled_from([tenant] * 4 + [TENANT, OTHER_TENANT]))}},
    }
    data = {
        "item": draw(st.sampled_from(item_ids(served)) | hostile_text),
        "action": draw(st.sampled_from(ACTIONS) | hostile_text),
        "justification": draw(hostile_text | st.sampled_from(["No longer needed here", "x" * 3000])),
        "reassign_to": draw(st.sampled_from(["pattif@contoso.com", ""]) | hostile_text),
        **draw(st.dictionaries(hostile_text, json_values, max_size=2)),
    }
    verb = draw(st.sampled_from([v for v in VERBS if not invokes_only or v != "details"]))
    if kind == "invoke":
        name = draw(st.sampled_from([CARD_ACTION] * 8 + INVOKE_NAMES + ["(any text)"]))
        activity["name"] = draw(hostile_text) if name == "(any text)" else name
        activity["value"] = {"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"}
    elif kind == "message":
        activity["text"] = draw(st.sampled_from(["help", "my reviews", "status", "findings"]) | hostile_text)
        if draw(st.booleans()):
            activity["value"] = {"verb": verb, **data}
    broken = draw(st.lists(st.sampled_from(sorted(activity)), min_size=1, max_size=2, unique=True)) if draw(
        st.integers(0, 2)) == 0 else []  # a third of the cases: one or two fields dropped or of another type
    for key in broken:
        if invokes_only and key == "type":
            continue
        if key == "serviceUrl":  # never a URL anywhere but the local connector
            activity[key] = draw(st.sampled_from([None, 42, "ftp://127.0.0.1/", "not a url"]))
        elif draw(st.booleans()):
            del activity[key]
        else:
            activity[key] = draw(json_values)
    return activity


def _names_another_tenant(activity: dict[str, Any]) -> bool:
    conversation, channel_data = activity.get("conversation"), activity.get("channelData")
    named = [conversation.get("tenantId", TENANT) if isinstance(conversation, dict) else TENANT]
    if isinstance(channel_data, dict) and isinstance(channel_data.get("tenant"), dict):
        named.append(channel_data["tenant"].get("id", TENANT))
    return any(not isinstance(tenant, str) or tenant.strip().lower() != TENANT for tenant in named)


def check(answer: Answer, before: dict[str, str], served: ServedBot, activity: Any = None) -> None:
    event(f"HTTP {answer.status}")  # --hypothesis-show-statistics: how deep the cases went
    assert answer.status < 500, (answer.status, answer.body[:300], activity)
    if answer.status >= 400:
        assert served.state() == before, ("a refused request changed state", answer.status, activity)
        # Every refusal says something, never body `null`. (A header no HTTP parser accepts is refused by
        # aiohttp's own parser with a plain-text 400 before the app sees the request.)
        assert answer.body.strip() not in (b"", b"null"), (answer.status, activity)
        if answer.headers.get("Content-Type", "").startswith("application/json"):
            assert json.loads(answer.body)


@FUZZ
@given(data=st.data())
def test_fuzzed_activities_never_get_a_5xx_and_refusals_change_nothing(open_bot: ServedBot, data: st.DataObject) -> None:
    activity = data.draw(activities(open_bot))
    before = open_bot.state()
    answer = open_bot.post(json.dumps(activity).encode())
    check(answer, before, open_bot, activity)
    if _names_another_tenant(activity):
        assert answer.status in (400, 403), (answer.status, activity)
    if _unstorable_text(activity.get("text")) or _unstorable_text(activity.get("value")):
        assert open_bot.state() == before, ("text that cannot be stored changed state", activity)


@settings(FUZZ, max_examples=600)
@given(body=st.binary(max_size=600) | hostile_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
       content_type=st.sampled_from(["application/json", "application/json; charset=bogus",
                                     "application/json; charset=utf-16", "application/json; charset=\"", "text/plain",
                                     "", ";;;", "application/json;charset=UTF-8"])
       | hostile_text.map(lambda t: t.replace("\r", "").replace("\n", "")))  # no header line can carry CR or LF
def test_arbitrary_bodies_and_content_types_get_a_4xx_and_change_nothing(
    open_bot: ServedBot, body: bytes, content_type: str
) -> None:
    before = open_bot.state()
    answer = open_bot.post(body, content_type)
    check(answer, before, open_bot, (body, content_type))
    assert answer.status >= 400 or body.strip().startswith(b"{")


@settings(FUZZ, max_examples=60)
@given(depth=st.integers(min_value=20, max_value=200_000), opener=st.sampled_from(["[", '{"a":']))
def test_deep_nesting_is_refused_before_parsing(open_bot: ServedBot, depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    before = open_bot.state()
    answer = open_bot.post((opener * depth + "1" + closer * depth).encode())
    check(answer, before, open_bot)
    assert answer.status in (400, 413)


@settings(FUZZ, max_examples=300)
@given(path=hostile_text | st.binary(max_size=60).map(lambda b: "".join(f"%{x:02X}" for x in b)))
def test_export_paths_with_any_bytes_get_403_or_404(open_bot: ServedBot, path: str) -> None:
    quoted = "".join(c if c.isascii() and c.isalnum() else "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass")) for c in path)
    answer = open_bot.request("GET", "/exports/" + (quoted if not path.startswith("%") else path))
    assert answer.status in (403, 404), (answer.status, path)


def _authorization(draw: st.DrawFn, served: ServedBot) -> tuple[str | None, bool]:
    """An Authorization header and whether it is valid for this bot."""
    now = int(time.time())
    choice = draw(st.sampled_from(["none", "garbage", "forged", "expired", "other-serviceurl"] + ["valid"] * 4))
    url = served.connector.url
    return {
        "none": (None, False),
        "garbage": ("Bearer " + draw(st.text(alphabet="abcdefghij.-_", max_size=40)), False),
        "forged": (f"Bearer {token(key=FORGER_KEY, serviceurl=url)}", False),
        "expired": (f"Bearer {token(exp=now - 600, nbf=now - 7200, serviceurl=url)}", False),
        "other-serviceurl": (f"Bearer {token(serviceurl='https://evil.example/')}", False),
        "valid": (f"Bearer {token(serviceurl=url)}", True),
    }[choice]


@settings(FUZZ, max_examples=500)
@given(data=st.data())
def test_with_authentication_on_unauthenticated_requests_change_nothing(secured_bot: ServedBot, data: st.DataObject) -> None:
    activity = data.draw(activities(secured_bot, invokes_only=True))
    authorization, valid = _authorization(data.draw, secured_bot)
    before = secured_bot.state()
    answer = secured_bot.post(json.dumps(activity).encode(), authorization=authorization)
    check(answer, before, secured_bot, activity)
    if not valid:
        assert answer.status in (400, 401), (answer.status, activity)
        assert secured_bot.state() == before


def test_the_fuzzed_servers_still_verify(open_bot: ServedBot, secured_bot: ServedBot) -> None:
    """Whatever the fuzz recorded is a sound ledger (runs after the fuzz tests in this module)."""
    from bot.ledger import verify

    for served in (open_bot, secured_bot):
        assert served.runtime is not None
        records = served.run(served.runtime.store.ledger_records())
        assert verify(records, served.run(served.runtime.store.ledger_anchor())).ok


def test_a_real_decision_goes_through_the_fuzzed_app(open_bot: ServedBot, tmp_path: Path) -> None:
    """The fuzz's server is the real app: a proper Keep is recorded (so 'no 5xx' is not 'no answers')."""
    assert open_bot.runtime is not None
    open_items = [i.id for s in open_bot.runtime.service.campaigns() for i in s.open_items()
                  if open_bot.runtime.service.may_answer(ALEX, i)]
    assert open_items
    value = {"action": {"type": "Action.Execute", "verb": "decide", "data": {"item": open_items[0], "action": "keep"}}}
    activity = {"type": "invoke", "name": "adaptiveCard/action", "serviceUrl": open_bot.connector.url,
                "channelId": "msteams", "from": PEOPLE[0], "recipient": {"id": "28:accessbot"},
                "conversation": {"id": "a:alex", "tenantId": TENANT}, "value": value}
    answer = open_bot.post(json.dumps(activity).encode())
    assert answer.status == 200 and "Kept by Alex Wilber" in answer.body.decode()
