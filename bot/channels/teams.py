"""Microsoft Teams, through the Bot Framework: the only module that imports botbuilder.

botbuilder-python is archived; keeping every botbuilder type behind this module (the HTTP entry point,
the activity handler and proactive sending) means moving to microsoft-agents-hosting-aiohttp changes this
file and nothing else. Everything a person sees comes from ``dialogs``, which know no channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from aiohttp import web
from botbuilder.core import ActivityHandler, InvokeResponse, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    Attachment,
    ChannelAccount,
    ConversationParameters,
    ConversationReference,
)
from botframework.connector.auth import (
    AuthenticationConstants,
    ConnectorFactory,
    JwtTokenExtractor,
)
from msrest.universal_http.requests import ClientRetryPolicy

from bot.channels.live_status import LiveStatus
from bot.channels.activity_checks import shape_problem, tenants_of, user_input_problem
from bot.channels.teams_invokes import CARD_ACTION_INVOKE, unsupported_invoke
from bot.http_limits import STORE_RETRY_AFTER_SECONDS, EdgeRefusal, read_json_object
from bot.notifier import DeliveryError, parse_retry_after
from bot.ratelimit import TEAMS_CONVERSATION, TEAMS_LIMITS, TEAMS_TENANT, Charge
from bot.partner_campaigns import PartnerCampaigns
from bot.review_directory import ReviewDirectory
from bot.service import ReviewService
from bot.store.base import PostedCard, RecordRejected, Store, StoreUnavailable
from dialogs.conversation import respond
from dialogs.notices import notice_view
from dialogs import actions
from dialogs.render.teams import (
    CARD_CONTENT_TYPE,
    TeamsMessage,
    card_for,
    render,
    status_card,
)
from dialogs.review import current_item
from dialogs.unrecorded import STORE_DOWN, digest_not_recorded, item_not_recorded, rejected
from dialogs.views import Actor, DigestView, ItemView, PrivateReply, StatusView, TextView, Tone, View

log = logging.getLogger(__name__)

CHANNEL = "teams"  # how this channel's cards and rate keys are tagged
LIVE_STATUS_KEY = "live-status-card"  # where the security leads' live status card was posted


@dataclass(frozen=True)
class BotCredentials:
    """The Azure Bot registration. An empty app id turns authentication off: demo and tests only."""

    app_id: str = ""
    app_password: str = field(default="", repr=False)
    app_tenant_id: str = ""
    app_type: str = "SingleTenant"
    # Where the channel's signing keys are published and who issues its tokens: Bot Framework's public
    # cloud by default; set for a sovereign cloud, or by tests that sign tokens with their own key.
    openid_metadata_url: str = ""
    token_issuer: str = ""


class _AdapterConfig:
    """The attribute names botbuilder's configuration readers look for."""

    def __init__(self, credentials: BotCredentials) -> None:
        self.APP_ID = credentials.app_id
        self.APP_PASSWORD = credentials.app_password
        self.APP_TENANTID = credentials.app_tenant_id
        # With no app id (authentication off) botbuilder only accepts the multi-tenant shape.
        self.APP_TYPE = credentials.app_type if credentials.app_id else "MultiTenant"
        if credentials.openid_metadata_url:
            self.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = credentials.openid_metadata_url
        if credentials.token_issuer:
            self.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = credentials.token_issuer


TEAMS_SERVICE_URL = "teams.service_url"
"""The channel setting holding the tenant's Bot Connector URL as Teams last sent it."""


class ConnectorCache:
    """Connector and user-token clients built once per (app, service URL, audience) instead of per turn.

    botbuilder builds both on every turn; with msrest's retry policy that was the bot's main CPU cost
    (docs/dependency-notes.md#per-turn-clients). They hold no per-turn state: one per service URL serves every turn. Bounded,
    because with authentication off nothing vouches for an activity's serviceUrl.
    """

    def __init__(self, limit: int = 64) -> None:
        self.limit = limit
        self.built = 0
        self._clients: OrderedDict[tuple[str, ...], Any] = OrderedDict()

    def resize(self, limit: int) -> None:
        """Change the bound (0 turns caching off, as botbuilder ships), dropping what no longer fits."""
        self.limit = limit
        while len(self._clients) > limit:
            self._clients.popitem(last=False)

    async def get(self, key: tuple[str, ...], build: Callable[[], Awaitable[Any]]) -> Any:
        client = self._clients.get(key)
        if client is None:
            client = await build()
            self.built += 1
            self._clients[key] = client
            if len(self._clients) > self.limit:
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(key)
        return client


class _CachingConnectorFactory(ConnectorFactory):
    def __init__(self, inner: ConnectorFactory, cache: ConnectorCache, app_id: str) -> None:
        self._inner = inner
        self._cache = cache
        self._app_id = app_id

    async def create(self, service_url: str, audience: str = None) -> Any:  # type: ignore[assignment]
        key = ("connector", self._app_id, service_url or "", audience or "")
        return await self._cache.get(key, lambda: self._inner.create(service_url, audience))


def _cache_clients(authentication: Any, cache: ConnectorCache, app_id: str) -> None:
    """Route botbuilder's per-turn client creation (reactive and proactive) through the cache."""
    make_factory = authentication.create_connector_factory
    make_user_token_client = authentication.create_user_token_client

    def connector_factory(claims_identity: Any) -> ConnectorFactory:
        return _CachingConnectorFactory(make_factory(claims_identity), cache, app_id)

    async def user_token_client(claims_identity: Any) -> Any:
        key = ("user-token", app_id, str(claims_identity.get_claim_value(AuthenticationConstants.APP_ID_CLAIM) or ""))
        return await cache.get(key, lambda: make_user_token_client(claims_identity))

    authentication.create_connector_factory = connector_factory
    authentication.create_user_token_client = user_token_client


def _cheapen_connector_clients() -> None:
    """botbuilder builds a ConnectorClient per turn, and each runs a 999 x 502 list scan in msrest's
    ClientRetryPolicy (~7 ms of CPU, docs/dependency-notes.md#per-turn-clients). A frozenset makes it O(999)."""
    if not isinstance(ClientRetryPolicy.safe_codes, frozenset):
        ClientRetryPolicy.safe_codes = frozenset(ClientRetryPolicy.safe_codes)  # type: ignore[assignment]


def _actor(activity: Activity) -> Actor:
    sender: ChannelAccount | None = activity.from_property
    if sender is None:
        return Actor(None, "someone")
    return Actor(sender.aad_object_id or None, sender.name or "someone")


def _attachment(card: dict[str, Any]) -> Attachment:
    return Attachment(content_type=CARD_CONTENT_TYPE, content=card)


def _activity(message: TeamsMessage) -> Activity:
    if message.card is not None:
        return MessageFactory.attachment(_attachment(message.card), text=message.text or None)
    return MessageFactory.text(message.text)


class AccessBot(ActivityHandler):
    """Translates Teams activities into dialog calls, and dialog views back into Teams messages."""

    def __init__(self, service: ReviewService, store: Store, partner: PartnerCampaigns | None = None) -> None:
        self.service = service
        self.store = store
        self.partner = partner  # a CSP partner's customers: its security leads' 'status' goes across them
        self.directory = ReviewDirectory(service, partner)  # which service a click on an item goes to
        self.last_service_url = ""  # where Teams last reached us from: good for starting conversations
        # Set by TeamsChannel: a turn in a stored conversation, and starting a personal chat with someone.
        self.proactive: Callable[[dict, Callable[[TurnContext], Awaitable[Any]]], Awaitable[None]] | None = None
        self.open_personal: Callable[[str], Awaitable[dict | None]] | None = None

    async def on_turn(self, turn_context: TurnContext) -> None:
        try:
            await self._learn_service_url(turn_context.activity)
            await self._remember(turn_context.activity)
        except StoreUnavailable as unavailable:  # the next activity stores it; the person's request goes on
            log.warning("could not store the conversation reference: %s", unavailable)
        await super().on_turn(turn_context)

    async def _learn_service_url(self, activity: Activity) -> None:
        """Where Teams reached us from, kept in the store when it changes, so every instance (and this one
        after a restart) can start conversations without waiting for an activity of its own."""
        if activity.channel_id != "msteams" or not activity.service_url or activity.service_url == self.last_service_url:
            return
        self.last_service_url = activity.service_url
        await self.store.save_channel_setting(TEAMS_SERVICE_URL, activity.service_url)

    async def _remember(self, activity: Activity) -> None:
        """Keep conversation references for proactive messages later: each identified person's personal
        chat under their Entra object id, and each team channel the bot hears from under its id."""
        sender = activity.from_property
        if activity.conversation is None:
            return
        kind = activity.conversation.conversation_type or "personal"
        # Without the activity id, which Teams changes on every activity: the reference only changes when
        # the conversation really does, so an unchanged one costs the store nothing.
        reference = TurnContext.get_conversation_reference(activity)
        reference.activity_id = None
        if kind == "channel":
            await self.store.save_conversation(f"channel:{activity.conversation.id}", reference.serialize())
            return
        if kind != "personal" or sender is None or not sender.aad_object_id:
            return
        if await self.store.save_conversation(sender.aad_object_id, reference.serialize()):
            # A new conversation: what was queued for this person can be delivered now.
            await self.store.release_recipient(sender.aad_object_id, self.service.clock.now())

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        actor = _actor(activity)
        value = activity.value
        if isinstance(value, dict) and ("verb" in value or "action" in value):
            # Action.Submit fallback from a client without Universal Actions: answer, then replace the card.
            view = await self._card_action(turn_context, str(value.get("verb") or actions.DECIDE), value)
            await self._replace_or_send(turn_context, view)
            return
        text = TurnContext.remove_recipient_mention(activity) if activity.entities else activity.text
        reply = await respond(self.service, actor, text or "", shared=_shared(activity), partner=self.partner)
        if isinstance(reply, PrivateReply):
            delivered = await self._send_privately(turn_context, actor, reply.content)
            await self._send(turn_context, reply.pointer if delivered else reply.unreachable)
            return
        await self._send(turn_context, reply)

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        activity = turn_context.activity
        if activity.name != CARD_ACTION_INVOKE:
            status, body = unsupported_invoke(str(activity.name or ""))
            return InvokeResponse(status=status, body=body)
        verb, data = card_click(activity) or (actions.DECIDE, {})
        view = await self._card_action(turn_context, verb, data)
        card = card_for(view, _viewers(activity))
        return InvokeResponse(status=200, body={"statusCode": 200, "type": CARD_CONTENT_TYPE, "value": card})

    async def _card_action(self, turn_context: TurnContext, verb: str, data: dict[str, Any]) -> View:
        """Route a card button to its dialog; every verb answers with the card that should replace it, and
        Details also posts the item's own card as a new message (the digest stays as it is)."""
        result = await actions.perform(self.directory, _actor(turn_context.activity), verb, data)
        if result.post is not None:
            await self._send(turn_context, result.post)
        return result.replace

    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        """Teams sends installationUpdate and conversationUpdate on install: welcome once, on the first."""
        await self._welcome(turn_context)

    async def _welcome(self, turn_context: TurnContext) -> None:
        """Hello, and what is waiting for the person; in a group chat or channel that count is theirs alone,
        so it goes to their personal chat and the shared conversation gets the hello only."""
        actor = _actor(turn_context.activity)
        waiting = len(self.service.waiting_for(actor.object_id)) if actor.object_id else 0
        text = (
            "Hi, I'm accessbot. Every week I ask the owners of privileged roles, partner relationships and "
            "admin recovery contacts to confirm they are still right, and keep a tamper-evident record of the answers."
        )
        waiting_line = f"{waiting} item{'s are' if waiting != 1 else ' is'} waiting for you: say 'my reviews'."
        if _shared(turn_context.activity):
            # Teams hands a bot only the messages of a group chat or channel that @mention it: a plain "help"
            # there reaches nobody, so the hello says how to be heard.
            name = turn_context.activity.recipient.name if turn_context.activity.recipient else None
            await turn_context.send_activity(MessageFactory.text(
                text + " Your own reviews come to you in our personal chat. Here, mention me first: "
                f"'@{name or 'accessbot'} help' shows what I can do."
            ))
            if waiting and actor.object_id:
                await self._send_privately(turn_context, actor, TextView(waiting_line))
            return
        text += f" {waiting_line}" if waiting else " Say 'help' to see what I can do."
        await turn_context.send_activity(MessageFactory.text(text))

    async def _send_privately(self, turn_context: TurnContext, actor: Actor, view: View) -> bool:
        """Deliver a view to the person's personal chat (the stored one, or one started for them now);
        False when none can be reached — then nothing was sent anywhere."""
        if not actor.object_id or self.proactive is None:
            return False
        reference = await self.store.get_conversation(actor.object_id)
        if reference is None and self.open_personal is not None:
            try:
                reference = await self.open_personal(actor.object_id)
            except DeliveryError as refused:
                log.info("could not start a personal chat with %s: %s", actor.object_id, refused)
                reference = None
            if reference is not None:
                await self.store.save_conversation(actor.object_id, reference)
        if reference is None:
            return False
        messages = render(view, _viewers(turn_context.activity))
        sent: list[Any] = []

        async def send(personal: TurnContext) -> None:
            sent.extend(await personal.send_activities([_activity(message) for message in messages]) or ())

        try:
            await self.proactive(reference, send)
        except DeliveryError as refused:
            log.warning("could not deliver privately to %s: %s", actor.object_id, refused)
            return False
        for message, response in zip(messages, sent):
            if message.item_id and response is not None and response.id:
                await self.store.save_card(message.item_id, PostedCard(CHANNEL, response.id, reference))
        return True

    async def _send(self, turn_context: TurnContext, view: View) -> None:
        messages = render(view, _viewers(turn_context.activity))
        sent = await turn_context.send_activities([_activity(message) for message in messages])
        reference = TurnContext.get_conversation_reference(turn_context.activity).serialize()
        for message, response in zip(messages, sent or ()):
            if message.item_id and response is not None and response.id:
                await self.store.save_card(message.item_id, PostedCard(CHANNEL, response.id, reference))
        if isinstance(view, StatusView) and view.live and sent:
            # The live status card: remember where it is, so every later answer can redraw it in place.
            await self.store.save_conversation(LIVE_STATUS_KEY, {**reference, "activityId": sent[-1].id})

    async def _replace_or_send(self, turn_context: TurnContext, view: View) -> None:
        reply_to = turn_context.activity.reply_to_id
        if isinstance(view, (ItemView, DigestView)) and reply_to:
            updated = _activity(TeamsMessage(card=card_for(view, _viewers(turn_context.activity))))
            updated.id = reply_to
            await turn_context.update_activity(updated)
            return
        await self._send(turn_context, view)


def _shared(activity: Activity) -> bool:
    """Whether others read this conversation (a group chat or a team channel), not a personal chat."""
    conversation = activity.conversation
    return conversation is not None and (conversation.conversation_type or "personal") != "personal"


def card_click(activity: Activity) -> tuple[str, dict[str, Any]] | None:
    """(verb, data) of a card button: an ``adaptiveCard/action`` invoke, or the Action.Submit fallback's
    message; None when the activity is no card click."""
    value = activity.value if isinstance(activity.value, dict) else {}
    if activity.type == ActivityTypes.invoke:
        action = value.get("action") if isinstance(value.get("action"), dict) else {}
        data = action.get("data") if isinstance(action.get("data"), dict) else {}
        return str(action.get("verb") or actions.DECIDE), data
    if "verb" in value or "action" in value:
        return str(value.get("verb") or actions.DECIDE), value
    return None


def _invoke_card(card: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """An Adaptive Card as the answer to an invoke: what Teams shows in place of the clicked card."""
    body = {"statusCode": status, "type": CARD_CONTENT_TYPE, "value": card}
    return web.json_response(body, status=status, headers=headers)


def _viewers(activity: Activity) -> tuple[str, ...]:
    """Who sees the card in this conversation: in a personal chat, the person talking to us."""
    sender = activity.from_property
    return (sender.id,) if sender is not None and sender.id else ()


class TeamsChannel:
    """The /api/messages endpoint and proactive delivery for Teams."""

    def __init__(
        self, service: ReviewService, store: Store, credentials: BotCredentials, service_url: str = "",
        partner: PartnerCampaigns | None = None,
    ) -> None:
        _cheapen_connector_clients()
        self.service_url = service_url  # the tenant's Bot Connector, e.g. https://smba.trafficmanager.net/emea/
        # Installs the app for a person through Graph (optional, off unless configured): returns True on success.
        self.installer: Callable[[str], Awaitable[bool]] | None = None
        self.credentials = credentials
        self.adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(_AdapterConfig(credentials)))
        self.adapter.on_turn_error = self._on_turn_error
        self.connectors = ConnectorCache()
        _cache_clients(self.adapter.bot_framework_authentication, self.connectors, credentials.app_id)
        self.bot = AccessBot(service, store, partner)
        self.bot.proactive, self.bot.open_personal = self._proactively, self.open_conversation
        self.service = service
        self.directory = self.bot.directory
        self.store = store
        self.live = LiveStatus(service, store, LIVE_STATUS_KEY)

    @property
    def authenticated(self) -> bool:
        return bool(self.credentials.app_id)

    @property
    def served_tenants(self) -> frozenset[str]:
        return self.service.policy.served_tenants

    async def handle(self, request: web.Request) -> web.Response:
        """POST /api/messages: every check that can refuse an activity runs before the SDK sees it, each
        with its own 4xx: the body (415/413/400), the activity's shape (400), the token (401), the tenant
        (403); then what the person typed (refused on the card or in a reply). A store that cannot keep
        the answer gives 503 with Retry-After, and a card saying it was not recorded."""
        try:
            body = await read_json_object(request)
        except EdgeRefusal as refused:
            return refused.response()
        if problem := shape_problem(body):
            return web.json_response({"error": problem}, status=400)
        try:
            activity = Activity().deserialize(body)
        except Exception as bad:  # msrest raises several unrelated types for malformed activities
            return web.json_response({"error": f"malformed activity: {str(bad)[:200]}"}, status=400)
        try:
            identity = await self.adapter.bot_framework_authentication.authenticate_request(
                activity, request.headers.get("Authorization", "")
            )
        except Exception as refused:  # botbuilder raises PermissionError, jwt errors, even IndexError (unknown kid)
            log.warning("refused an activity from %s: %s", ascii(activity.service_url), type(refused).__name__)
            return web.json_response({"error": "unauthorized"}, status=401)
        tenants = tenants_of(body)
        if not tenants or not tenants <= self.served_tenants:
            log.warning(
                "refused a %s activity from tenant %s (from %s): this deployment serves %s",
                ascii(activity.type), ascii(sorted(tenants)) if tenants else "(none named)",
                ascii(activity.from_property.id), sorted(self.served_tenants),
            )
            return web.json_response({"error": "this bot does not serve your organisation's tenant"}, status=403)
        if activity.type == ActivityTypes.invoke and activity.name != CARD_ACTION_INVOKE:
            status, answer = unsupported_invoke(activity.name or "")
            return web.json_response(answer, status=status)
        if identity.connector_factory is not None:
            identity.connector_factory = _CachingConnectorFactory(
                identity.connector_factory, self.connectors, self.credentials.app_id
            )
        if problem := user_input_problem(body):
            return await self._refuse_input(identity, activity, problem)
        return await self._turn(identity, activity)

    async def _turn(self, identity: Any, activity: Activity) -> web.Response:
        """Run the activity through the bot. What the turn raises is caught inside it (the adapter's own
        handler would swallow it and answer 501 ``null``) and answered here with its fitting status."""
        failures: list[Exception] = []

        async def logic(turn_context: TurnContext) -> None:
            try:
                await self.bot.on_turn(turn_context)
            except Exception as failed:
                failures.append(failed)
                if activity.type == ActivityTypes.message:
                    await self._reply_quietly(turn_context, self._failure_view(activity, failed))

        invoke_response = await self.adapter.process_activity(identity, activity, logic)
        if failures:
            return self._failure_response(activity, failures[0])
        if invoke_response:
            return web.json_response(invoke_response.body or {}, status=invoke_response.status)
        return web.Response(status=201)

    def _failure_view(self, activity: Activity, failed: Exception) -> View:
        """What the person is told when their turn failed: not recorded, and why when it is theirs to fix."""
        if isinstance(failed, StoreUnavailable):
            message = STORE_DOWN
        elif isinstance(failed, RecordRejected):
            message = rejected(str(failed))
        else:
            return TextView("Sorry, something went wrong on my side; try again. If it persists, tell your security leads.", Tone.WARNING)
        return self._unrecorded_view(activity, message)

    def _unrecorded_view(self, activity: Activity, message: str) -> View:
        click = card_click(activity)
        if click is None:
            return TextView(message, Tone.ATTENTION)
        verb, data = click
        if verb == actions.DIGEST:
            service = self.directory.of_tenant(str(data.get(actions.TENANT) or ""))
            return digest_not_recorded(service, _actor(activity), message)
        item_id = str(data.get(actions.ITEM) or "")
        return item_not_recorded(self.directory.holding(item_id), _actor(activity), item_id, message)

    def _failure_response(self, activity: Activity, failed: Exception) -> web.Response:
        if isinstance(failed, StoreUnavailable):
            status, headers = 503, {"Retry-After": str(STORE_RETRY_AFTER_SECONDS)}
            log.error("not recorded: the store cannot write (%s)", failed)
        elif isinstance(failed, RecordRejected):
            status, headers = 400, {}
            log.warning("one record refused by the store: %s", failed)
        else:
            log.error("turn failed for a %s activity", ascii(activity.type), exc_info=failed)
            return web.json_response({"error": "internal error; it was logged"}, status=500)
        if activity.type == ActivityTypes.invoke:
            card = card_for(self._failure_view(activity, failed), _viewers(activity))
            return _invoke_card(card, status, headers)
        reason = "the store cannot write; retry later" if status == 503 else str(failed)[:200]
        return web.json_response({"error": f"not recorded: {reason}"}, status=status, headers=headers)

    async def _refuse_input(self, identity: Any, activity: Activity, problem: str) -> web.Response:
        """Text that cannot be recorded never reaches a dialog: the card (or a reply) says what to remove.
        Nothing is stored, not even the conversation reference."""
        view = self._unrecorded_view(activity, problem)
        if activity.type == ActivityTypes.invoke:
            return _invoke_card(card_for(view, _viewers(activity)))
        await self.adapter.process_activity(identity, activity, lambda turn_context: self._reply_quietly(turn_context, view))
        return web.Response(status=201)

    async def _reply_quietly(self, turn_context: TurnContext, view: View) -> None:
        """Send a view as a reply without storing where it went; a refused send is logged, not raised."""
        messages = render(view, _viewers(turn_context.activity))
        try:
            await turn_context.send_activities([_activity(message) for message in messages])
        except Exception as refused:  # the connector client raises its own error types
            log.warning("could not reply: %s", refused)

    async def refresh_live_status(self) -> None:
        """Redraw the security leads' live status card in place when anything was recorded since."""
        due = await self.live.due()
        if due is None:
            return
        posted, view = due
        try:
            await self.update_card(posted, posted["activityId"], status_card(view))
        except DeliveryError as refused:
            log.warning("could not redraw the live status card: %s", refused)
            return
        self.live.drawn()

    async def redraw_card(self, item_id: str, card: PostedCard) -> None:
        """Replace a card sent for an item with the item as it now stands, for the person it was sent to."""
        user = card.address.get("user") or {}
        view = current_item(self.directory.holding(item_id), item_id, user.get("aadObjectId"))
        await self.update_card(card.address, card.message_id, card_for(view, (user["id"],) if user.get("id") else ()))

    async def update_card(self, reference: dict, activity_id: str, card: dict[str, Any]) -> None:
        """Replace a card the bot sent earlier (update_activity), in any stored conversation."""
        updated = _activity(TeamsMessage(card=card))
        updated.id = activity_id
        await self._proactively(reference, lambda turn_context: turn_context.update_activity(updated))

    async def warm_up(self) -> None:
        """Fetch the channel's signing keys now, off the event loop: botbuilder fetches them with a blocking
        `requests` call on the first request otherwise (docs/dependency-notes.md#blocking-key-fetch), stalling all turns."""
        if not self.authenticated:
            return
        url = self.credentials.openid_metadata_url or AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL
        metadata = JwtTokenExtractor.get_open_id_metadata(url)

        def fetch() -> None:
            try:
                asyncio.run(metadata.get(""))
            except IndexError:
                pass  # no key has the empty id; the keys were fetched and cached, which is all we wanted
            except Exception as failed:  # the first real request will try again
                log.warning("could not fetch the channel's signing keys from %s: %s", url, failed)

        await asyncio.to_thread(fetch)

    async def open_conversation(self, recipient: str) -> dict | None:
        """Start a personal chat with someone by Entra object id (Teams allows it once the app is installed
        for them). Needs the tenant's Bot Connector URL: configured, or learned from any activity."""
        service_url = (self.service_url or self.bot.last_service_url
                       or await self.store.channel_setting(TEAMS_SERVICE_URL))
        if not service_url:
            return None
        tenant = self.service.policy.tenant_id
        parameters = ConversationParameters(
            is_group=False,
            bot=ChannelAccount(id=f"28:{self.credentials.app_id}" if self.credentials.app_id else "accessbot"),
            members=[ChannelAccount(id=recipient, aad_object_id=recipient)],
            tenant_id=tenant,
            channel_data={"tenant": {"id": tenant}},
        )
        created: list[dict] = []

        async def remember(turn_context: TurnContext) -> None:
            reference = TurnContext.get_conversation_reference(turn_context.activity).serialize()
            reference["user"] = {"id": recipient, "aadObjectId": recipient}
            created.append(reference)

        async def create() -> None:
            try:
                await self.adapter.create_conversation(
                    self.credentials.app_id or "", remember, parameters, "msteams", service_url, None
                )
            except Exception as refused:  # the connector client raises its own error types per status
                status = getattr(getattr(refused, "response", None), "status_code", None)
                raise DeliveryError.for_status(status if isinstance(status, int) else 0, None, "Teams") from refused

        try:
            await create()
        except DeliveryError as refused:
            if refused.status != 403 or self.installer is None or not await self.installer(recipient):
                raise
            await create()  # installed for them through Graph a moment ago
        return created[0] if created else None

    name = CHANNEL
    limits = TEAMS_LIMITS

    async def stored_address(self, recipient: str) -> dict | None:
        """The person's personal chat with the bot, if they ever talked to it (or one was started)."""
        return await self.store.get_conversation(recipient)

    async def open_address(self, recipient: str) -> dict | None:
        """Start a personal chat and keep its reference; None when Teams cannot (yet): a refusal here (the
        app not installed for them) may heal once it is, so it is tried again later, never final."""
        try:
            reference = await self.open_conversation(recipient)
        except DeliveryError as refused:
            log.info("could not open a conversation with %s: %s", recipient, refused)
            return None
        if reference is not None:
            await self.store.save_conversation(recipient, reference)
        return reference

    async def reach(self, recipient: str) -> dict | None:
        """The notifier's MessageSender: the stored personal chat, or one started now."""
        return await self.stored_address(recipient) or await self.open_address(recipient)

    def charges(self, address: dict, recipient: str) -> tuple[Charge, ...]:
        """What Teams counts a proactive message under: its conversation, and the bot within its tenant.

        botbuilder-python writes the tenant as ``tenantID`` and Teams as ``tenantId`` (and botbuilder drops
        the latter when it reads an activity), so often there is none: then all of the bot's conversations
        share one tenant budget, which is the safe side.
        """
        conversation = address.get("conversation") or {}
        bot = address.get("bot") or {}
        tenant = conversation.get("tenantId") or conversation.get("tenantID") or ""
        return ((TEAMS_CONVERSATION, str(conversation.get("id") or recipient)),
                (TEAMS_TENANT, f"{bot.get('id') or ''}|{tenant}"))

    async def send_text(self, reference: dict, text: str) -> None:
        """Proactive message into a stored conversation (the notifier's MessageSender); the ledger witness as a
        card whose checkpoint text wraps (dialogs/notices.py)."""
        (message,) = render(notice_view(text))
        await self._proactively(reference, lambda turn_context: turn_context.send_activity(_activity(message)))

    async def _proactively(self, reference: dict, act: Callable[[TurnContext], Awaitable[Any]]) -> None:
        """Run ``act`` in a proactive turn of a stored conversation.

        Returns only when the connector accepted it; otherwise raises DeliveryError with the
        status, the Retry-After and whether the refusal is permanent. Two botbuilder defaults would defeat
        that, so both are overridden here. The adapter's on_turn_error swallows whatever the proactive
        turn raises (a refusal would pass for a delivery), so the refusal is caught inside the turn and
        raised after it. msrest has urllib3 retry a failed connection three times, backing off up to
        3.2 s (about 5 s a try against a connector that is down), and 5xx answers too (POST included
        under urllib3 1.x), all inside its own thread, outside the notifier's rate limiter and unseen by
        it; those retries are turned off on the connector client, so the notifier alone retries. That
        client is cached per service URL and shared with replies, which msrest no longer retries either.
        """
        from msrest.exceptions import (
            ClientRequestError,  # what msrest raises when no answer came at all
        )

        conversation = ConversationReference().deserialize(reference)
        refusals: list[Exception] = []

        async def deliver(turn_context: TurnContext) -> None:
            client = turn_context.turn_state.get(self.adapter.BOT_CONNECTOR_CLIENT_KEY)
            if client is not None:  # no status retried, no connection retried: the answer comes straight back
                client.config.retry_policy.retries = 0
                client.config.retry_policy.policy.status_forcelist = frozenset()
            try:
                await act(turn_context)
            except Exception as refused:
                refusals.append(refused)

        try:
            await self.adapter.continue_conversation(conversation, deliver, self.credentials.app_id or None)
        except Exception as failed:  # before the turn: building the connector client, getting a token
            refusals.append(failed)
        if not refusals:
            return
        refused = refusals[0]
        status = getattr(getattr(refused, "response", None), "status_code", None)
        if isinstance(status, int):  # msrest's HttpOperationError / the connector's ErrorResponseException
            raise DeliveryError.for_status(status, _retry_after(refused), "Teams") from refused
        if isinstance(refused, (ClientRequestError, OSError)):  # refused or reset connection, timeout, DNS
            raise DeliveryError(f"could not reach Teams ({type(refused).__name__}: {refused})") from refused
        raise refused

    async def _on_turn_error(self, turn_context: TurnContext, error: Exception) -> None:
        log.exception("turn failed for activity %s", turn_context.activity.id, exc_info=error)
        if turn_context.activity.type == ActivityTypes.message:
            await turn_context.send_activity("Sorry, something went wrong on my side; nothing was lost. Try again.")


def _retry_after(error: Exception) -> float | None:
    """The Retry-After of a refused request, in seconds (the connector sends delay-seconds; an HTTP date
    is understood too); None when it named none."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None) or {}
    if not hasattr(headers, "get"):
        return None
    return parse_retry_after(headers.get("Retry-After") or headers.get("retry-after"))
