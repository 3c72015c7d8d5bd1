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

One workspace with one bot token is the default. With ``ACCESSBOT_SLACK_INSTALL=oauth``, workspaces install the
app through OAuth instead (bot/channels/slack_oauth.py, ``/slack/install``): Bolt's ``authorize`` finds each
request's bot token in our store, and everything sent later goes out with the token of the workspace its
address names (bot/channels/slack_workspaces.py). ``app_uninstalled`` and ``tokens_revoked`` delete the
workspace's installation.
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
from bot.channels.slack_installations import SealedInstallationStore, StoredStateStore, TokenSeal
from bot.channels.slack_log import web_api_logger
from bot.channels.slack_oauth import SlackOAuth, oauth_flow
from bot.channels.slack_people import ADDRESS_PREFIX, Member, SlackPeople
from bot.channels.slack_workspaces import InstalledWorkspaces, OneWorkspace, Workspace, Workspaces
from bot.engine.model import Action
from bot.notifier import DeliveryError
from bot.partner_campaigns import PartnerCampaigns
from bot.review_directory import ReviewDirectory
from bot.ratelimit import SLACK_CONVERSATION, SLACK_LIMITS, SLACK_WORKSPACE, Charge
from bot.service import ReviewService, UnknownItem
from bot.store.base import PostedCard, RecordRejected, Store, StoreUnavailable
from bot.store.installations import InstallationRecords
from dialogs import actions
from dialogs.conversation import respond
from dialogs.notices import notice_view
from dialogs.digest import digest_now
from dialogs.customer_reviews import my_reviews_across
from dialogs.review import current_item, my_reviews
from dialogs.status import status
from dialogs.render import slack as render
from dialogs.render.slack import SlackMessage
from dialogs.unrecorded import STORE_DOWN, rejected
from dialogs.views import Actor, DigestView, PrivateReply, StatusView, TextView, Tone, View

log = logging.getLogger(__name__)

CHANNEL = "slack"  # how this channel's cards and rate keys are tagged
COMMAND = "/access-review"
LIVE_STATUS_KEY = "slack-live-status"  # where the security leads' live status message was posted
DIGEST_KEY = "slack-digest:"  # slack-digest:<channel>:<ts>: the pages of the digest that message is one of
DIGEST_MOVED_UP = "Your digest got shorter as you answered: what still waits for you is in the message above."
API_URL = "https://slack.com/api/"

Tell = Callable[[View], Awaitable[None]]  # says something only the person sees (an ephemeral answer, their DM)


@dataclass(frozen=True)
class SlackSettings:
    """One workspace by its bot token, or (``oauth``) the workspaces that install the app; the signing secret
    over HTTP, the app-level token in socket mode."""

    bot_token: str = field(default="", repr=False)
    signing_secret: str = field(default="", repr=False)
    app_token: str = field(default="", repr=False)
    socket_mode: bool = False
    api_url: str = API_URL  # tests point it at a local fake Slack
    oauth: SlackOAuth | None = None  # None: the one workspace of bot_token

    def problem(self) -> str | None:
        """What is missing for the chosen mode, in the settings' own names; None when complete."""
        if self.oauth is not None:
            if self.bot_token:
                return ("ACCESSBOT_SLACK_BOT_TOKEN and the OAuth install (ACCESSBOT_SLACK_INSTALL=oauth) exclude each other: "
                        "with the OAuth install each workspace's token comes from its installation")
            if (problem := self.oauth.problem()) is not None:
                return problem
        elif not self.bot_token.startswith("xoxb-"):
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
                 partner: PartnerCampaigns | None = None, installations: InstallationRecords | None = None) -> None:
        """``installations`` keeps the workspaces' sealed installations and the OAuth states (needed, and only
        used, with ``settings.oauth``)."""
        problem = settings.problem()
        if problem is not None:
            raise ValueError(problem)
        self.service = service
        self.partner = partner  # a CSP partner's customers: its security leads' 'status' goes across them
        self.directory = ReviewDirectory(service, partner)  # which service a click on an item goes to
        self.store = store
        self.settings = settings
        # No retry handlers: the notifier retries, under the channel's limits
        # (docs/dependency-notes.md#slack-channel-retries-and-acknowledgements). With the OAuth install this
        # client holds no token: it exchanges install codes, and Bolt hands each request a copy with its token.
        secret = settings.oauth.client_secret if settings.oauth is not None else ""
        self.client = AsyncWebClient(token=settings.bot_token or None, base_url=settings.api_url, retry_handlers=[],
                                     logger=web_api_logger(secret))
        self.installations: SealedInstallationStore | None = None
        self.workspaces: Workspaces
        flow = None
        if settings.oauth is None:
            self.workspaces = OneWorkspace(Workspace(None, self.client, SlackPeople(service, store, self.client)))
        else:
            if installations is None:
                raise ValueError("the Slack OAuth install needs somewhere to keep the installations")
            self.installations = SealedInstallationStore(installations, TokenSeal(settings.oauth.token_key), service.clock)
            self.workspaces = InstalledWorkspaces(self.installations, self._workspace)
            flow = oauth_flow(settings.oauth, self.client, self.installations,
                              StoredStateStore(installations, service.clock), settings.api_url)
        # The signature is checked in handle(), before Bolt parses anything; a socket is authenticated by
        # the app-level token it was opened with.
        self.verifier = None if settings.socket_mode else SignatureVerifier(settings.signing_secret)
        self.app = AsyncApp(
            client=self.client,
            request_verification_enabled=False,
            process_before_response=False,  # ack() answers Slack at once; the listener goes on after
            oauth_flow=flow,
        )
        self.app.command(COMMAND)(self._on_command)
        self.app.action(re.compile(rf"^{render.ACTION_PREFIX}:"))(self._on_action)
        self.app.view(render.MODAL_CALLBACK)(self._on_modal)
        self.app.event("app_home_opened")(self._on_home_opened)
        self.app.event("message")(self._on_message)
        self.app.event("app_uninstalled")(self._on_uninstalled)
        self.app.event("tokens_revoked")(self._on_tokens_revoked)
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

    async def install(self, request: web.Request) -> web.Response:
        """GET /slack/install (OAuth install only): a new state, kept in the store and in a cookie, and a redirect
        to Slack's consent page. ``?team=T…`` preselects the workspace there."""
        return await self._oauth_step(request, "install")

    async def oauth_redirect(self, request: web.Request) -> web.Response:
        """GET /slack/oauth_redirect: where Slack sends the installer back; the installation is kept only when
        the state matches the browser's cookie, is consumed for the first time, and the workspace is allowed."""
        return await self._oauth_step(request, "callback")

    async def _oauth_step(self, request: web.Request, step: str) -> web.Response:
        flow = self.app.oauth_flow
        assert flow is not None, "the install routes exist only with the OAuth install (bot/app.py)"
        bolt_request = AsyncBoltRequest(body="", query=request.query_string, headers=dict(request.headers))
        answer = await (flow.handle_installation(bolt_request) if step == "install" else flow.handle_callback(bolt_request))
        return await to_aiohttp_response(answer)

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

    async def _on_command(self, ack: Any, body: dict[str, Any], respond: Any, context: Any) -> None:
        await ack()
        user, channel = str(body.get("user_id") or ""), str(body.get("channel_id") or "")
        text = str(body.get("text") or "").strip() or "help"

        async def only_to_them(view: View) -> None:
            """Through the command's response_url: ephemeral, and works where the app is not a member."""
            for message in render.render(view):
                answer = await respond(text=message.text, blocks=message.blocks, response_type="ephemeral")
                if getattr(answer, "status_code", 200) >= 400:
                    raise DeliveryError(f"Slack refused the reply ({answer.status_code}: {answer.body})")

        if (ws := await self._workspace_of(context)) is not None:
            await self._guarded(user, lambda: self._command(ws, user, channel, text, only_to_them), only_to_them)

    async def _on_message(self, ack: Any, event: dict[str, Any], context: Any) -> None:
        """A message in the person's DM with the bot: the same commands as the slash command, answered there."""
        await ack()
        if event.get("bot_id") or event.get("subtype") or event.get("channel_type") != "im":
            return
        user, channel = str(event.get("user") or ""), str(event.get("channel") or "")
        if (ws := await self._workspace_of(context)) is None:
            return

        async def in_dm(view: View) -> None:
            await self._post(ws, channel, view)

        await self._guarded(user, lambda: self._command(ws, user, channel, str(event.get("text") or ""), in_dm), in_dm)

    async def _on_action(self, ack: Any, body: dict[str, Any], action: dict[str, Any], context: Any) -> None:
        await ack()
        click = render.read_click(str(action.get("action_id") or ""), action.get("value"))
        if click is None:  # a digest row's select: its choice is read from the message at Submit
            return
        user = str((body.get("user") or {}).get("id") or "")
        if (ws := await self._workspace_of(context)) is not None:
            await self._guarded(user, lambda: self._click(ws, user, click, body), self._to_dm(ws, user))

    async def _on_modal(self, ack: Any, body: dict[str, Any], view: dict[str, Any], context: Any) -> None:
        await ack()
        user = str((body.get("user") or {}).get("id") or "")
        if (ws := await self._workspace_of(context)) is not None:
            await self._guarded(user, lambda: self._modal_submitted(ws, user, view), self._to_dm(ws, user))

    async def _on_home_opened(self, ack: Any, event: dict[str, Any], context: Any) -> None:
        await ack()
        if event.get("tab", "home") != "home":
            return
        user = str(event.get("user") or "")
        if (ws := await self._workspace_of(context)) is not None:
            await self._guarded(user, lambda: self.publish_home(ws, user), self._to_dm(ws, user))

    async def _on_uninstalled(self, ack: Any, context: Any) -> None:
        """The app was removed from a workspace: its installation (and token) is deleted; what is sent there
        from now on is undeliverable, and the security leads hear of it as for anyone unreachable."""
        await ack()
        await self._forget_workspace(context.team_id, "uninstalled")

    async def _on_tokens_revoked(self, ack: Any, event: dict[str, Any], context: Any) -> None:
        """Revoked bot tokens end the installation as an uninstall does; revoked user tokens do not concern us
        (the app asks for no user scopes)."""
        await ack()
        if (event.get("tokens") or {}).get("bot"):
            await self._forget_workspace(context.team_id, "its bot token was revoked")

    async def _forget_workspace(self, team_id: str | None, why: str) -> None:
        if self.installations is None:
            log.warning("accessbot was %s in its Slack workspace: nothing can be sent there until it is installed "
                        "again with a new ACCESSBOT_SLACK_BOT_TOKEN", why)
            return
        if not team_id:
            return
        try:
            await self.installations.async_delete_all(enterprise_id=None, team_id=team_id)
        except StoreUnavailable as unavailable:
            log.error("could not delete the installation of the Slack workspace %s (%s): %s", team_id, why, unavailable)
            return
        self.workspaces.forget(team_id)
        log.warning("the Slack workspace %s is no longer served: accessbot was %s there", team_id, why)

    async def _workspace_of(self, context: Any) -> Workspace | None:
        """The workspace a request came from (Bolt's authorize found it installed, or there is one)."""
        try:
            return await self.workspaces.of(getattr(context, "team_id", None))
        except (DeliveryError, StoreUnavailable) as refused:
            log.warning("a Slack request could not be served: %s", refused)
            return None

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

    def _to_dm(self, ws: Workspace, user: str) -> Tell:
        async def tell(view: View) -> None:
            await self._post(ws, await ws.people.dm(user), view)

        return tell

    # ---- commands --------------------------------------------------------------------------------

    async def _command(self, ws: Workspace, user: str, channel: str, text: str, only_to_them: Tell) -> None:
        """``only_to_them`` answers where only the person sees it (the command's response_url, or the DM)."""
        member = await ws.people.member(user)
        dm = await ws.people.dm(user)
        await ws.people.remember(member, dm)
        in_dm = channel == dm
        if member.object_id is None:
            await only_to_them(TextView(unmapped_text(member, self.service.policy.tenant_name), Tone.WARNING))
            return
        actor = Actor(member.object_id, member.name)
        reply = await respond(self.service, actor, text, shared=not in_dm, partner=self.partner)
        if isinstance(reply, PrivateReply):
            try:
                await self._post(ws, dm, reply.content, actor)
                delivered = True
            except DeliveryError as refused:
                log.info("could not deliver privately to %s: %s", user, refused)
                delivered = False
            await only_to_them(reply.pointer if delivered else reply.unreachable)
        elif in_dm:
            await self._post(ws, dm, reply, actor)
        elif isinstance(reply, StatusView) and reply.live:
            await self._post_live_status(ws, channel, reply, only_to_them)
        else:  # said in a channel: the answer is for the person who asked, not for everyone there
            await only_to_them(reply)

    async def _post_live_status(self, ws: Workspace, channel: str, view: StatusView, only_to_them: Tell) -> None:
        """The security leads' live status message, posted in their channel and redrawn as answers arrive."""
        try:
            (ts,) = await self._post(ws, channel, view)
        except DeliveryError as refused:
            await only_to_them(TextView(f"I can't post the live status here: {refused}.", Tone.WARNING))
            return
        await self.live.posted(ws.tag({"channel": channel, "ts": ts}))

    # ---- clicks and modals -------------------------------------------------------------------------

    async def _click(self, ws: Workspace, user: str, click: render.Click, body: dict[str, Any]) -> None:
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
                await ws.client.views_open(trigger_id=body["trigger_id"], view=modal)
            except FAILURES as failed:
                raise refusal(failed) from failed
            return
        await self._act(ws, user, click.verb, data, where)
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

    async def _modal_submitted(self, ws: Workspace, user: str, view: dict[str, Any]) -> None:
        try:
            metadata = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            metadata = {}
        if not isinstance(metadata, dict) or not isinstance(metadata.get("data"), dict):
            log.warning("a modal submission without our metadata, from %s", user)
            return
        values = (view.get("state") or {}).get("values") or {}
        data = {**metadata["data"], **render.modal_inputs(values)}
        await self._act(ws, user, str(metadata.get("verb") or actions.DECIDE), data, metadata)

    async def _act(self, ws: Workspace, user: str, verb: str, data: dict[str, Any], where: dict[str, Any]) -> None:
        """Perform the click and redraw the clicked message in place (or the Home tab it was on). A digest in
        several messages is redrawn whole: an answer given on one page changes what the others show."""
        member = await ws.people.member(user)
        actor = Actor(member.object_id, member.name)
        result = await actions.perform(self.directory, actor, verb, data)
        if where.get("view"):
            await self.publish_home(ws, user)
        elif where.get("channel") and where.get("ts"):
            channel, ts = str(where["channel"]), str(where["ts"])
            digest = await self.store.get_conversation(DIGEST_KEY + f"{channel}:{ts}") if verb == actions.DIGEST else None
            if digest is not None:
                await self._redraw_digest(ws, digest, result.replace)
            else:
                await self._update(ws, channel, ts, render.replacement(result.replace))
        if result.post is not None:
            await self._post(ws, await ws.people.dm(user), result.post, actor)

    # ---- App Home ----------------------------------------------------------------------------------

    async def publish_home(self, ws: Workspace, user: str) -> None:
        """The Home tab: the person's open items (answerable there) and the campaign's progress."""
        member = await ws.people.member(user)
        if member.object_id is None:
            sections: list[View] = [TextView(unmapped_text(member, self.service.policy.tenant_name), Tone.WARNING)]
        else:
            actor = Actor(member.object_id, member.name)
            mine = my_reviews(self.service, actor) if self.partner is None else my_reviews_across(self.partner, self.service, actor)
            sections = [mine, status(self.service, actor)]
        try:
            await ws.client.views_publish(user_id=user, view=render.home_view(sections))
        except FAILURES as failed:
            raise refusal(failed) from failed

    # ---- sending -------------------------------------------------------------------------------------

    async def _post(self, ws: Workspace, channel: str, view: View, actor: Actor | None = None) -> list[str]:
        """Post a view's messages; each item's message is kept (with whom it shows the item to) to be
        redrawn in place later, and so is a digest, all its pages together. Returns the messages' ts."""
        posted: list[str] = []
        where = channel
        viewer = actor.object_id if actor is not None else None
        for message in render.render(view):
            ts, where = await self._send(ws, channel, message)
            posted.append(ts)
            if message.item_id and ts:
                await self.store.save_card(message.item_id, PostedCard(CHANNEL, ts, ws.tag({"channel": where, "viewer": viewer})))
        if isinstance(view, DigestView) and viewer and all(posted):
            await self._remember_digest(ws, where, posted, viewer, [row.item_id for row in view.rows])
        return posted

    async def _send(self, ws: Workspace, channel: str, message: SlackMessage) -> tuple[str, str]:
        """One message posted: its ts, and the conversation Slack put it in (a DM's D… id for a member id)."""
        try:
            answer = await ws.client.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks)
        except FAILURES as failed:
            raise refusal(failed) from failed
        return str(answer.get("ts") or ""), str(answer.get("channel") or channel)

    async def _remember_digest(self, ws: Workspace, channel: str, pages: list[str], viewer: str, items: list[str]) -> None:
        """Keep a digest's pages as one: under each page's ts (a Submit on any page redraws them all) and as the
        card of every item it shows, under its first page (an answer given anywhere else redraws it once)."""
        digest = ws.tag({"channel": channel, "pages": pages, "viewer": viewer, "items": items})
        for ts in pages:
            await self.store.save_conversation(DIGEST_KEY + f"{channel}:{ts}", digest)
        for item_id in items:
            await self.store.save_card(item_id, PostedCard(CHANNEL, pages[0], digest))

    async def _redraw_digest(self, ws: Workspace, digest: dict[str, Any], view: View) -> None:
        """Each page of a posted digest replaced by the same page of ``view``; a page left over (answered rows
        take no more room, but an emptied digest is one message) says where the rest went; a page more than
        before is posted after them and kept with them."""
        channel, pages = str(digest["channel"]), [str(ts) for ts in digest["pages"]]
        messages = render.render(view)
        for n, ts in enumerate(pages):
            message = messages[n] if n < len(messages) else render.replacement(TextView(DIGEST_MOVED_UP))
            await self._update(ws, channel, ts, message)
        if len(messages) > len(pages) and isinstance(view, DigestView):
            for message in messages[len(pages):]:
                pages.append((await self._send(ws, channel, message))[0])
            await self._remember_digest(ws, channel, pages, str(digest["viewer"]), [row.item_id for row in view.rows])

    async def _update(self, ws: Workspace, channel: str, ts: str, message: SlackMessage) -> None:
        try:
            await ws.client.chat_update(channel=channel, ts=ts, text=message.text, blocks=message.blocks)
        except FAILURES as failed:
            raise refusal(failed) from failed

    # ---- the notifier's and the scheduler's side (bot/channels/channel_set.py) ---------------------

    async def stored_address(self, recipient: str) -> dict | None:
        """Where the person was last reached; with the OAuth install, an address kept before it was turned on (it
        names no workspace) is passed over, so the person is looked up again in the installed workspaces."""
        address = await self.store.get_conversation(ADDRESS_PREFIX + recipient)
        if address is not None and self.installations is not None and not address.get("team"):
            return None
        return address

    async def open_address(self, recipient: str) -> dict | None:
        """Find the person in Slack (policy map, else e-mail) and open the bot's DM with them: in the one
        workspace, or in the first installed workspace that knows them. None while no workspace is installed."""
        refused: DeliveryError | None = None
        for ws in await self.workspaces.every():
            try:
                slack_id = await ws.people.slack_id_of(recipient)
                dm = await ws.people.dm(slack_id)
            except DeliveryError as not_here:
                if self.installations is None:
                    raise
                refused = not_here if refused is None or not_here.permanent else refused
                continue
            address = ws.people.address(slack_id, dm)
            await self.store.save_conversation(ADDRESS_PREFIX + recipient, address)
            return address
        if refused is not None:
            raise refused
        return None

    def charges(self, address: dict, recipient: str) -> tuple[Charge, ...]:
        """One message a second per conversation, and the budget of the workspace the address belongs to."""
        return ((SLACK_CONVERSATION, str(address.get("channel") or recipient)),
                (SLACK_WORKSPACE, str(address.get("team") or "workspace")))

    async def send_text(self, address: dict, text: str) -> None:
        ws = await self.workspaces.of(address.get("team"))
        (message,) = render.render(notice_view(text))
        await self._send(ws, str(address["channel"]), message)

    async def redraw_card(self, item_id: str, card: PostedCard) -> None:
        ws = await self.workspaces.of(card.address.get("team"))
        service = self.directory.holding(item_id)
        if "pages" in card.address:  # a digest, all its pages
            viewer = str(card.address.get("viewer") or "")
            await self._redraw_digest(ws, card.address, digest_now(service, viewer, card.address.get("items") or ()))
            return
        view = current_item(service, item_id, card.address.get("viewer"))
        await self._update(ws, str(card.address["channel"]), card.message_id, render.replacement(view))

    async def refresh_live_status(self) -> None:
        """Redraw the live status message in place when anything was recorded since it was drawn."""
        due = await self.live.due()
        if due is None:
            return
        posted, view = due
        try:
            ws = await self.workspaces.of(posted.get("team"))
            await self._update(ws, str(posted["channel"]), str(posted["ts"]), render.replacement(view))
        except DeliveryError as refused:
            log.warning("could not redraw the live status message: %s", refused)
            return
        self.live.drawn()

    def _workspace(self, team_id: str, token: str) -> Workspace:
        """An installed workspace: a client with its token, on the channel's one HTTP session."""
        client = AsyncWebClient(token=token, base_url=self.settings.api_url, retry_handlers=[], session=self.client.session,
                                logger=web_api_logger())
        return Workspace(team_id, client, SlackPeople(self.service, self.store, client, team_id))
