"""Slack, through slack-bolt: the only module that holds the Bolt app (with bot/channels/slack_people.py and
slack_errors.py beside it for identity and refusals).

Requests arrive at ``/slack/events`` on our aiohttp application (Bolt's aiohttp adapter), or over Socket
Mode for a deployment with no public URL; ``ACCESSBOT_SLACK_MODE`` chooses. Over HTTP every request's
signature (HMAC-SHA256 of ``v0:{timestamp}:{body}`` with the signing secret) is checked before anything
else: a bad one, or a timestamp more than five minutes off, is a 401 and nothing is processed.

Every listener acknowledges first and works after: Slack waits 3 s for the acknowledgement, a decision
may take longer, and Bolt runs the rest of a listener after ``ack()`` returned. The one thing done before
any slow work is opening a modal, whose ``trigger_id`` lives 3 s. A failure after the acknowledgement is
told to the person (what was not recorded) and logged, never raised into Bolt.

Everything a person sees comes from ``dialogs``, rendered by ``dialogs/render/slack.py``. A person's
reviews and findings are never posted where others read: in a channel they go to the person's DM with
the bot, and the channel gets an ephemeral pointer only they can see.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.channels.live_status import LiveStatus
from bot.channels.slack_errors import FAILURES, refusal
from bot.channels.slack_people import ADDRESS_PREFIX, Member, SlackPeople
from bot.engine.model import Action
from bot.notifier import DeliveryError
from bot.partner_campaigns import PartnerCampaigns
from bot.review_directory import ReviewDirectory
from bot.ratelimit import SLACK_CONVERSATION, SLACK_LIMITS, SLACK_WORKSPACE, Charge
from bot.service import ReviewService, UnknownItem
from bot.store.base import PostedCard, RecordRejected, Store, StoreUnavailable
from dialogs import actions
from dialogs.conversation import respond
from dialogs.customer_reviews import my_reviews_across
from dialogs.review import current_item, my_reviews
from dialogs.status import status
from dialogs.render import slack as render
from dialogs.render.slack import SlackMessage
from dialogs.unrecorded import STORE_DOWN, rejected
from dialogs.views import Actor, PrivateReply, StatusView, TextView, Tone, View

log = logging.getLogger(__name__)

CHANNEL = "slack"  # how this channel's cards and rate keys are tagged
COMMAND = "/access-review"
LIVE_STATUS_KEY = "slack-live-status"  # where the security leads' live status message was posted
API_URL = "https://slack.com/api/"

Tell = Callable[[View], Awaitable[None]]  # says something only the person sees (an ephemeral answer, their DM)


@dataclass(frozen=True)
class SlackSettings:
    """One workspace: the bot token always; the signing secret over HTTP, the app-level token in socket mode."""

    bot_token: str = field(repr=False)
    signing_secret: str = field(default="", repr=False)
    app_token: str = field(default="", repr=False)
    socket_mode: bool = False
    api_url: str = API_URL  # tests point it at a local fake Slack

    def problem(self) -> str | None:
        """What is missing for the chosen mode, in the settings' own names; None when complete."""
        if not self.bot_token.startswith("xoxb-"):
            return "ACCESSBOT_SLACK_BOT_TOKEN must be the bot token (xoxb-…)"
        if self.socket_mode and not self.app_token.startswith("xapp-"):
            return "ACCESSBOT_SLACK_MODE=socket needs ACCESSBOT_SLACK_APP_TOKEN, the app-level token (xapp-…)"
        if not self.socket_mode and not self.signing_secret:
            return "ACCESSBOT_SLACK_SIGNING_SECRET is needed to check requests to /slack/events (or use socket mode)"
        return None


def unmapped_text(member: Member, tenant: str) -> str:
    """What an unmapped member is told: why, and who can fix it."""
    seen = f"with the e-mail {member.email}" if member.email else "whose e-mail I cannot see"
    return (f"Your Slack account ({seen}) matches nobody in {tenant}'s directory, so I can't show or record reviews "
            f"for you. Ask your security leads to add you to the policy's [slack] users (your member id is "
            f"{member.slack_id}).")


class SlackChannel:
    """The Slack side of one deployment: Bolt's listeners, proactive sending, and redrawing in place."""

    name = CHANNEL
    limits = SLACK_LIMITS

    def __init__(self, service: ReviewService, store: Store, settings: SlackSettings,
                 partner: PartnerCampaigns | None = None) -> None:
        problem = settings.problem()
        if problem is not None:
            raise ValueError(problem)
        self.service = service
        self.partner = partner  # a CSP partner's customers: its security leads' 'status' goes across them
        self.directory = ReviewDirectory(service, partner)  # which service a click on an item goes to
        self.store = store
        self.settings = settings
        # No retry handlers: the notifier retries, under the channel's limits
        # (docs/dependency-notes.md#slack-channel-retries-and-acknowledgements).
        self.client = AsyncWebClient(token=settings.bot_token, base_url=settings.api_url, retry_handlers=[])
        self.people = SlackPeople(service, store, self.client)
        # The signature is checked in handle(), before Bolt parses anything; a socket is authenticated by
        # the app-level token it was opened with.
        self.verifier = None if settings.socket_mode else SignatureVerifier(settings.signing_secret)
        self.app = AsyncApp(
            client=self.client,
            request_verification_enabled=False,
            process_before_response=False,  # ack() answers Slack at once; the listener goes on after
        )
        self.app.command(COMMAND)(self._on_command)
        self.app.action(re.compile(rf"^{render.ACTION_PREFIX}:"))(self._on_action)
        self.app.view(render.MODAL_CALLBACK)(self._on_modal)
        self.app.event("app_home_opened")(self._on_home_opened)
        self.app.event("message")(self._on_message)
        self._socket: Any = None
        self.live = LiveStatus(service, store, LIVE_STATUS_KEY)

    # ---- the entry points ----------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.Response:
        """POST /slack/events. The signature and its timestamp are checked first, on the raw body (401, and
        nothing else read, when either is wrong); a signed body that is no Slack request is a 400; then
        Bolt answers the URL check and routes commands, clicks, modal submissions and events to the
        listeners below."""
        body = await request.text()
        headers = request.headers
        if self.verifier is None or not self.verifier.is_valid(body, headers.get("X-Slack-Request-Timestamp"), headers.get("X-Slack-Signature")):
            log.warning("refused a request to /slack/events: bad signature or a timestamp over five minutes off")
            return web.json_response({"error": "unauthorized"}, status=401)
        try:
            bolt_request = AsyncBoltRequest(body=body, query=request.query_string, headers=dict(headers))
        except (ValueError, TypeError, AttributeError) as bad:  # Bolt parses the form and its JSON payload here
            return web.json_response({"error": f"not a Slack request: {type(bad).__name__}"}, status=400)
        return await to_aiohttp_response(await self.app.async_dispatch(bolt_request))

    async def start(self) -> None:
        """Give the Web API client one session for the server's life, then open the Socket Mode connection
        (socket mode only; Bolt's client reconnects by itself). Without a session of its own, slack_sdk opens
        a new one, and a new connection and TLS handshake, for every call: each click's chat.update included."""
        if self.client.session is None:
            self.client.session = aiohttp.ClientSession()
        if not self.settings.socket_mode:
            return
        from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

        self._socket = AsyncSocketModeHandler(self.app, self.settings.app_token, web_client=self.client)
        await self._socket.connect_async()

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        if self.client.session is not None:
            await self.client.session.close()
            self.client.session = None

    # ---- listeners: ack first, work after ------------------------------------------------------

    async def _on_command(self, ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        user, channel = str(body.get("user_id") or ""), str(body.get("channel_id") or "")
        text = str(body.get("text") or "").strip() or "help"

        async def only_to_them(view: View) -> None:
            """Through the command's response_url: ephemeral, and works where the app is not a member."""
            for message in render.render(view):
                answer = await respond(text=message.text, blocks=message.blocks, response_type="ephemeral")
                if getattr(answer, "status_code", 200) >= 400:
                    raise DeliveryError(f"Slack refused the reply ({answer.status_code}: {answer.body})")

        await self._guarded(user, lambda: self._command(user, channel, text, only_to_them), only_to_them)

    async def _on_message(self, ack: Any, event: dict[str, Any]) -> None:
        """A message in the person's DM with the bot: the same commands as the slash command, answered there."""
        await ack()
        if event.get("bot_id") or event.get("subtype") or event.get("channel_type") != "im":
            return
        user, channel = str(event.get("user") or ""), str(event.get("channel") or "")

        async def in_dm(view: View) -> None:
            await self._post(channel, view)

        await self._guarded(user, lambda: self._command(user, channel, str(event.get("text") or ""), in_dm), in_dm)

    async def _on_action(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        click = render.read_click(str(action.get("action_id") or ""), action.get("value"))
        if click is None:  # a digest row's select: its choice is read from the message at Submit
            return
        user = str((body.get("user") or {}).get("id") or "")
        await self._guarded(user, lambda: self._click(user, click, body), self._to_dm(user))

    async def _on_modal(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        await ack()
        user = str((body.get("user") or {}).get("id") or "")
        await self._guarded(user, lambda: self._modal_submitted(user, view), self._to_dm(user))

    async def _on_home_opened(self, ack: Any, event: dict[str, Any]) -> None:
        await ack()
        if event.get("tab", "home") != "home":
            return
        user = str(event.get("user") or "")
        await self._guarded(user, lambda: self.publish_home(user), self._to_dm(user))

    async def _guarded(self, user: str, work: Callable[[], Awaitable[Any]], tell: Tell) -> None:
        """Run a listener's work after the acknowledgement; a failure is told to the person with ``tell``
        (nothing was recorded) and logged, never raised into Bolt."""
        try:
            await work()
            return
        except StoreUnavailable as unavailable:
            log.error("not recorded: the store cannot write (%s)", unavailable)
            view = TextView(STORE_DOWN, Tone.ATTENTION)
        except RecordRejected as refused:
            view = TextView(rejected(str(refused)), Tone.ATTENTION)
        except DeliveryError as refused:
            log.warning("a Slack call for %s was refused: %s", user, refused)
            return
        except Exception:
            log.exception("a Slack request from %s failed", user)
            view = TextView("Sorry, something went wrong on my side; try again. If it persists, tell your security leads.",
                            Tone.WARNING)
        try:
            await tell(view)
        except (DeliveryError, *FAILURES) as refused:
            log.warning("could not tell %s: %s", user, refused)

    def _to_dm(self, user: str) -> Tell:
        async def tell(view: View) -> None:
            await self._post(await self.people.dm(user), view)

        return tell

    # ---- commands --------------------------------------------------------------------------------

    async def _command(self, user: str, channel: str, text: str, only_to_them: Tell) -> None:
        """``only_to_them`` answers where only the person sees it (the command's response_url, or the DM)."""
        member = await self.people.member(user)
        dm = await self.people.dm(user)
        await self.people.remember(member, dm)
        in_dm = channel == dm
        if member.object_id is None:
            await only_to_them(TextView(unmapped_text(member, self.service.policy.tenant_name), Tone.WARNING))
            return
        actor = Actor(member.object_id, member.name)
        reply = await respond(self.service, actor, text, shared=not in_dm, partner=self.partner)
        if isinstance(reply, PrivateReply):
            try:
                await self._post(dm, reply.content, actor)
                delivered = True
            except DeliveryError as refused:
                log.info("could not deliver privately to %s: %s", user, refused)
                delivered = False
            await only_to_them(reply.pointer if delivered else reply.unreachable)
        elif in_dm:
            await self._post(dm, reply, actor)
        elif isinstance(reply, StatusView) and reply.live:
            await self._post_live_status(channel, reply, only_to_them)
        else:  # said in a channel: the answer is for the person who asked, not for everyone there
            await only_to_them(reply)

    async def _post_live_status(self, channel: str, view: StatusView, only_to_them: Tell) -> None:
        """The security leads' live status message, posted in their channel and redrawn as answers arrive."""
        try:
            (ts,) = await self._post(channel, view)
        except DeliveryError as refused:
            await only_to_them(TextView(f"I can't post the live status here: {refused}.", Tone.WARNING))
            return
        await self.live.posted({"channel": channel, "ts": ts})

    # ---- clicks and modals -------------------------------------------------------------------------

    async def _click(self, user: str, click: render.Click, body: dict[str, Any]) -> None:
        data = dict(click.data)
        container = body.get("container") or {}
        if click.verb == actions.DIGEST and data.get(actions.SUBMIT_DIGEST):
            values = (body.get("state") or {}).get("values") or ((body.get("view") or {}).get("state") or {}).get("values") or {}
            data.update(render.digest_choices(values))
        where = {"channel": container.get("channel_id"), "ts": container.get("message_ts"), "view": container.get("type") == "view"}
        if self._asks(click, data) and body.get("trigger_id"):
            # The modal first: its trigger_id lives 3 s, so nothing slow may come before it.
            metadata = json.dumps({"verb": click.verb, "data": data, **where}, separators=(",", ":"))
            modal = render.ask_modal(click.ask, self._modal_subject(click, data), metadata)
            try:
                await self.client.views_open(trigger_id=body["trigger_id"], view=modal)
            except FAILURES as failed:
                raise refusal(failed) from failed
            return
        await self._act(user, click.verb, data, where)

    @staticmethod
    def _asks(click: render.Click, data: dict[str, Any]) -> bool:
        """Whether the click needs the modal first: Reassign always, Revoke always, and a digest's Submit
        when any chosen answer is Revoke (Keep and Don't know need no justification)."""
        if click.ask == render.ASK_PERSON:
            return True
        if click.ask != render.ASK_JUSTIFICATION:
            return False
        if click.verb == actions.DIGEST:
            return any(str(key).startswith(actions.CHOICE_PREFIX) and value == Action.REVOKE.value for key, value in data.items())
        return True

    def _modal_subject(self, click: render.Click, data: dict[str, Any]) -> str:
        if click.verb == actions.DIGEST:
            revokes = sum(1 for key, value in data.items()
                          if str(key).startswith(actions.CHOICE_PREFIX) and value == Action.REVOKE.value)
            return f"You chose Revoke for {revokes} item{'s' if revokes != 1 else ''}; one justification covers them."
        try:
            item_id = str(data.get(actions.ITEM) or "")
            item, _ = self.directory.holding(item_id).item(item_id)
        except UnknownItem:
            return "This item"
        return item.subject.title

    async def _modal_submitted(self, user: str, view: dict[str, Any]) -> None:
        try:
            metadata = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            metadata = {}
        if not isinstance(metadata, dict) or not isinstance(metadata.get("data"), dict):
            log.warning("a modal submission without our metadata, from %s", user)
            return
        values = (view.get("state") or {}).get("values") or {}
        data = {**metadata["data"], **render.modal_inputs(values)}
        await self._act(user, str(metadata.get("verb") or actions.DECIDE), data, metadata)

    async def _act(self, user: str, verb: str, data: dict[str, Any], where: dict[str, Any]) -> None:
        """Perform the click and redraw the clicked message in place (or the Home tab it was on)."""
        member = await self.people.member(user)
        actor = Actor(member.object_id, member.name)
        result = await actions.perform(self.directory, actor, verb, data)
        if where.get("view"):
            await self.publish_home(user)
        elif where.get("channel") and where.get("ts"):
            await self._update(str(where["channel"]), str(where["ts"]), render.replacement(result.replace))
        if result.post is not None:
            await self._post(await self.people.dm(user), result.post, actor)

    # ---- App Home ----------------------------------------------------------------------------------

    async def publish_home(self, user: str) -> None:
        """The Home tab: the person's open items (answerable there) and the campaign's progress."""
        member = await self.people.member(user)
        if member.object_id is None:
            sections: list[View] = [TextView(unmapped_text(member, self.service.policy.tenant_name), Tone.WARNING)]
        else:
            actor = Actor(member.object_id, member.name)
            mine = my_reviews(self.service, actor) if self.partner is None else my_reviews_across(self.partner, self.service, actor)
            sections = [mine, status(self.service, actor)]
        try:
            await self.client.views_publish(user_id=user, view=render.home_view(sections))
        except FAILURES as failed:
            raise refusal(failed) from failed

    # ---- sending -------------------------------------------------------------------------------------

    async def _post(self, channel: str, view: View, actor: Actor | None = None) -> list[str]:
        """Post a view's messages; each item's message is kept (with whom it shows the item to) to be
        redrawn in place later. Returns the messages' ts."""
        posted = []
        for message in render.render(view):
            try:
                answer = await self.client.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks)
            except FAILURES as failed:
                raise refusal(failed) from failed
            ts, where = str(answer.get("ts") or ""), str(answer.get("channel") or channel)
            posted.append(ts)
            if message.item_id and ts:
                viewer = actor.object_id if actor is not None else None
                await self.store.save_card(message.item_id, PostedCard(CHANNEL, ts, {"channel": where, "viewer": viewer}))
        return posted

    async def _update(self, channel: str, ts: str, message: SlackMessage) -> None:
        try:
            await self.client.chat_update(channel=channel, ts=ts, text=message.text, blocks=message.blocks)
        except FAILURES as failed:
            raise refusal(failed) from failed

    # ---- the notifier's and the scheduler's side (bot/channels/channel_set.py) ---------------------

    async def stored_address(self, recipient: str) -> dict | None:
        return await self.store.get_conversation(ADDRESS_PREFIX + recipient)

    async def open_address(self, recipient: str) -> dict | None:
        """Find the person in Slack (policy map, else e-mail) and open the bot's DM with them."""
        slack_id = await self.people.slack_id_of(recipient)
        dm = await self.people.dm(slack_id)
        address = {"user": slack_id, "channel": dm}
        await self.store.save_conversation(ADDRESS_PREFIX + recipient, address)
        return address

    def charges(self, address: dict, recipient: str) -> tuple[Charge, ...]:
        """One message a second per conversation, and the workspace's budget (one workspace per deployment)."""
        return ((SLACK_CONVERSATION, str(address.get("channel") or recipient)), (SLACK_WORKSPACE, "workspace"))

    async def send_text(self, address: dict, text: str) -> None:
        (message,) = render.render(TextView(text))
        try:
            await self.client.chat_postMessage(channel=str(address["channel"]), text=message.text, blocks=message.blocks)
        except FAILURES as failed:
            raise refusal(failed) from failed

    async def redraw_card(self, item_id: str, card: PostedCard) -> None:
        view = current_item(self.directory.holding(item_id), item_id, card.address.get("viewer"))
        await self._update(str(card.address["channel"]), card.message_id, render.replacement(view))

    async def refresh_live_status(self) -> None:
        """Redraw the live status message in place when anything was recorded since it was drawn."""
        due = await self.live.due()
        if due is None:
            return
        posted, view = due
        try:
            await self._update(str(posted["channel"]), str(posted["ts"]), render.replacement(view))
        except DeliveryError as refused:
            log.warning("could not redraw the live status message: %s", refused)
            return
        self.live.drawn()
