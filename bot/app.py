"""The aiohttp application: /api/messages for Teams, /slack/events for Slack, /healthz, /metrics, and the
background scheduler."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.app_install import AppInstaller
from bot.channels.channel_set import ChannelSet
from bot.channels.slack import SlackChannel, SlackSettings
from bot.store.installations import installation_records
from bot.channels.slack_oauth import INSTALL_PATH, REDIRECT_PATH
from bot.change_watch import AuditReader, ChangeWatch
from bot.channels.teams import BotCredentials, TeamsChannel
from bot.clock import Clock
from bot.collection_jobs import CollectionJobs, LocalCollectionJobs, PostgresCollectionJobs
from bot.engine.model import SECURITY_LEADS, Notice, NoticeKind
from bot.exports import CHART_FORMAT, REPORT_FORMATS, BadLink, ExportLinks, ExportRequest
from bot.http_limits import MAX_BODY_BYTES, STORE_RETRY_AFTER_SECONDS
from bot.ledger import export_csv, export_json
from bot.ledger_check import set_aside_warning
from bot.leadership import PostgresLeadership, SoleLeader
from bot.ledger_signing import LedgerSigner
from bot.metrics import REGISTRY
from bot.notifier import Notifier
from bot.ledger_follower import LedgerFollower
from bot.ledger_history import LedgerHistory
from bot.partner_campaigns import PartnerCampaigns, PartnerPolicy
from bot.review_directory import ReviewDirectory
from bot.partner_runs import PartnerRuns, RunSettings
from bot.policy import Policy, load_policy
from bot.remediation.arm_executor import ArmAndGraphExecutor
from bot.remediation.graph_executor import GraphExecutor
from bot.report import CONTENT_TYPES, ReportTooLarge, check_pdf_size
from bot.report.charts import status_png
from bot.report.gather import gather_report, render_off_loop, same_period
from bot.scheduler import Scheduler
from bot.service import ReviewService
from bot.store.base import OUTBOX_LEASE, OutboxMessage, StoreUnavailable
from bot.store.factory import BackendStore, is_postgres, open_store
from bot.store.postgres_store import PostgresStore
from bot.store.write_guard import WriteGuard
from checks.snapshot import TenantSnapshot, load_snapshot
from dialogs.status import status_charts

UNREACHABLE = "unreachable:"  # the key prefix of a notice telling the leads someone cannot be reached

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything one server process holds, built once at start-up. ``store`` is the backend itself;
    everything that writes goes through ``writes``, which names and counts every refused write."""

    store: BackendStore
    writes: WriteGuard
    service: ReviewService
    teams: TeamsChannel
    slack: SlackChannel | None  # None: no Slack workspace attached
    channels: ChannelSet  # every channel served (Teams first): the notifier's sender and the cards' upkeep
    notifier: Notifier
    scheduler: Scheduler
    partner: PartnerCampaigns | None = None  # a CSP partner's deployment: its customers' campaigns (one run's)
    partner_runs: PartnerRuns | None = None  # a CSP partner's deployment: its collection runs, on the schedule


async def build_runtime(
    *,
    data_dir: Path,
    policy: Policy,
    snapshot: TenantSnapshot,
    clock: Clock,
    credentials: BotCredentials,
    tick_seconds: float = 30.0,
    public_url: str = "http://127.0.0.1:3978",
    export_secret: str | None = None,
    graph_executor: GraphExecutor | None = None,
    collector: Callable[[], Awaitable[TenantSnapshot]] | None = None,
    teams_service_url: str = "",
    app_installer: AppInstaller | None = None,
    ledger_signer: LedgerSigner | None = None,
    witness_every: timedelta | None = None,
    database_url: str = "",
    leader_retry_seconds: float = 5.0,
    follow_seconds: float = 1.0,
    outbox_lease: timedelta = OUTBOX_LEASE,
    slack: SlackSettings | None = None,
    audit_reader: AuditReader | None = None,
    change_poll_every: timedelta = timedelta(minutes=5),
    partner_policy: PartnerPolicy | None = None,
    partner_run: str = "",
    partner_collection: RunSettings | None = None,
) -> Runtime:
    """``graph_executor`` carries the write-enabled Graph client; only remediation mode 'apply' uses it.
    ``ledger_signer`` signs the ledger's checkpoints (docs/ledger.md); ``witness_every`` is how often the
    latest one is posted to the security leads (None: only at sign-off). ``database_url`` picks the store
    (bot/store/factory.py): empty is TinyDB in ``data_dir``. On PostgreSQL several instances may share the
    database: one leads the scheduled rounds (``leader_retry_seconds``: bot/leadership.py) and each catches up
    with the others' records every ``follow_seconds``; what a notifier claims from the outbox is its own for
    ``outbox_lease``.
    ``slack`` attaches a Slack workspace beside Teams. ``audit_reader`` reads the directory audit log
    (Graph): with it, access changes are asked about every ``change_poll_every`` (bot/change_watch.py).
    ``partner_policy`` makes this a CSP partner's deployment (``policy`` and ``snapshot`` are then the partner's
    own tenant): the customers' campaigns of collection run ``partner_run`` (default: the latest settled full run)
    are opened (or taken up, when open already) now, and the partner's security leads' ``status`` answers across
    them; then the leader starts each period's run and opens its campaigns when it settles, and this instance
    collects customers as ``partner_collection`` says (bot/partner_runs.py)."""
    store = await open_store(database_url, data_dir, signer=ledger_signer, clock=clock)
    writes = WriteGuard(store)
    service = ReviewService(writes, policy, snapshot, clock, ExportLinks(public_url, export_secret), graph_executor)
    history = await LedgerHistory.read(writes)  # once, for the partner's own service and every customer's
    await service.start(history)
    partner, partner_runs = (await _open_partner(store, writes, data_dir, service, partner_policy, partner_run,
                                                 partner_collection or RunSettings(), history)
                             if partner_policy else (None, None))
    directory = ReviewDirectory(service, partner)
    teams = TeamsChannel(service, writes, credentials, teams_service_url, partner)
    teams.installer = app_installer.install_for if app_installer is not None else None
    slack_channel = None
    if slack is not None:
        installations = installation_records(store, data_dir) if slack.oauth is not None else None
        slack_channel = SlackChannel(service, writes, slack, partner, installations)
    where = "Teams or Slack" if slack_channel is not None else "Teams"

    async def escalate_unreachable(message: OutboxMessage, reason: str) -> None:
        """Tell the security leads that someone cannot be reached in chat: once per person, reason and
        week, and never about a message that was itself such a notice (a lead who blocked the app would
        otherwise start an endless chain)."""
        if message.key.startswith(UNREACHABLE):
            return
        week = clock.now().strftime("%G-W%V")
        notice = Notice(
            key=f"{UNREACHABLE}{message.recipient}:{reason}:{week}",
            kind=NoticeKind.ESCALATION,
            to=SECURITY_LEADS,
            item_ids=tuple(message.payload.get("item_ids") or ()),
            text=f"Could not reach {service.display_name(message.recipient)} in {where}: {reason}.",
        )
        await service.queue((notice,))

    channels = ChannelSet(service, writes, [teams, *([slack_channel] if slack_channel is not None else [])], directory)
    notifier = Notifier(
        writes, channels, clock, on_undeliverable=escalate_unreachable, obsolete=directory.notice_obsolete,
        limiter=writes.send_budget(channels.limits), lease=outbox_lease,
    )
    shared = is_postgres(database_url)
    scheduler = Scheduler(
        service, notifier, tick_seconds,
        after_round=[channels.refresh_answered_cards, channels.refresh_live_status,
                     *([partner_runs.round] if partner_runs is not None else [])],
        collector=collector, witness_every=witness_every,
        leadership=PostgresLeadership(database_url, leader_retry_seconds) if shared else SoleLeader(),
        follow_seconds=follow_seconds if shared else None,
        change_watch=ChangeWatch(service, audit_reader, change_poll_every) if audit_reader is not None else None,
        customers=directory.customers,
    )
    return Runtime(store, writes, service, teams, slack_channel, channels, notifier, scheduler, partner, partner_runs)


async def _open_partner(store: BackendStore, writes: WriteGuard, data_dir: Path, service: ReviewService,
                        policy: PartnerPolicy, run_id: str, collection: RunSettings,
                        history: LedgerHistory) -> tuple[PartnerCampaigns, PartnerRuns]:
    """The customers' campaigns of collection run ``run_id`` (empty: the latest settled full run, if any), on the
    same store and export links as ``service`` (the partner's own tenant, which also names the partner's staff the
    policies list), and the runs that follow the schedule from here on. Each customer's service is rebuilt from
    ``history`` (the ledger read once at start), and one follower reads the ledger for all of them and for
    ``service`` from now on (bot/ledger_follower.py)."""
    jobs: CollectionJobs = PostgresCollectionJobs(store) if isinstance(store, PostgresStore) else LocalCollectionJobs(data_dir)
    follower = LedgerFollower(writes)
    follower.add(service)
    access = collection.access
    executors = (lambda tenant_id: ArmAndGraphExecutor(access.client_for(tenant_id), None)) if access else None
    partner = PartnerCampaigns(writes, jobs, policy, service.clock, people=service.resolve_person, links=service.links,
                               follower=follower, executors=executors)
    runs = PartnerRuns(jobs, partner, service.clock, collection)
    await runs.take_up(run_id, history)
    return partner, runs


def load_inputs(policy_path: Path, snapshot_path: Path) -> tuple[Policy, TenantSnapshot]:
    return load_policy(policy_path), load_snapshot(snapshot_path)


@web.middleware
async def no_unexplained_failures(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every route's last line of defence: a store that cannot write is a 503 with Retry-After, anything
    else unexpected is logged with its traceback and answered as a JSON 500, never an HTML page. Input
    is checked before it reaches a handler, so only a bug can get here (tests/reliability fuzz that)."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise  # aiohttp's own 4xx (unknown route, wrong method, body too large)
    except StoreUnavailable as unavailable:
        log.error("%s %s: the store cannot write: %s", request.method, request.path, unavailable)
        return web.json_response(
            {"error": "the store cannot write right now; nothing was recorded"}, status=503,
            headers={"Retry-After": str(STORE_RETRY_AFTER_SECONDS)},
        )
    except Exception:
        log.exception("%s %s failed", request.method, ascii(request.path))
        return web.json_response({"error": "internal error; it was logged"}, status=500)


def create_app(runtime: Runtime, *, background: bool = True) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[no_unexplained_failures])

    async def messages(request: web.Request) -> web.Response:
        return await runtime.teams.handle(request)

    async def healthz(_: web.Request) -> web.Response:
        """Not ok (503, with the reason) while the store cannot write: answers are refused until then."""
        campaigns = runtime.service.campaigns()
        problem = runtime.writes.write_problem()
        return web.json_response(
            {
                "status": "ok" if problem is None else "store cannot write",
                **({"problem": problem} if problem is not None else {}),
                "campaigns": len(campaigns),
                "open_items": sum(len(state.open_items()) for state in campaigns),
                "teams_auth": "on" if runtime.teams.authenticated else "off",
                "scheduler": "leader" if runtime.scheduler.leadership.leading else "standby",
                **({"slack": "socket" if runtime.slack.settings.socket_mode else "http"} if runtime.slack else {}),
                **({"warning": set_aside_warning(set_aside)} if (set_aside := runtime.store.set_aside()) else {}),
            },
            status=200 if problem is None else 503,
        )

    async def export(request: web.Request) -> web.Response:
        """A security lead's export link: checked, then built from the ledger on the spot."""
        service = runtime.service
        try:
            wanted = service.links.read(request.match_info["token"], service.clock.now())
        except BadLink as bad:
            return web.Response(status=403, text=str(bad))
        if wanted.needs_security_lead and not service.is_security_lead(wanted.requester):
            return web.Response(status=403, text="this link was made for someone who is no longer a security lead")
        if not await service.knows_campaign(wanted.campaign_id):
            return web.Response(status=404, text="no such campaign")
        name = "accessbot-" + wanted.campaign_id.replace(":", "-")
        disposition = "attachment"
        if wanted.fmt == "zip":
            body, content_type = await service.evidence(wanted.campaign_id), "application/zip"
        elif wanted.fmt == CHART_FORMAT:
            body, content_type, disposition = await _chart_image(wanted), "image/png", "inline"
        elif wanted.fmt in REPORT_FORMATS:
            try:
                body, content_type = await _report(wanted), CONTENT_TYPES[wanted.fmt]
            except ReportTooLarge as too_large:
                return web.Response(status=413, text=str(too_large))
        else:
            out = io.StringIO()
            (export_csv if wanted.fmt == "csv" else export_json)(await service.campaign_ledger(wanted.campaign_id), out)
            body, content_type = out.getvalue().encode(), f"text/{wanted.fmt}" if wanted.fmt == "csv" else "application/json"
        return web.Response(
            body=body,
            headers={"Content-Type": content_type, "Content-Disposition": f'{disposition}; filename="{name}.{wanted.fmt}"'},
        )

    async def _chart_image(wanted: ExportRequest) -> bytes:
        """The status charts as they stand now (the link outlives the card it was on by up to an hour); a
        customer's campaign, on a partner's deployment, is drawn by that customer's service (its reviewers)."""
        customer = runtime.partner.service_of_campaign(wanted.campaign_id) if runtime.partner else None
        service = customer or runtime.service
        state = await service.campaign_state(wanted.campaign_id)
        assert state is not None  # knows_campaign said so (the store is one for every customer)
        return await asyncio.to_thread(status_png, status_charts(service, state))

    async def _report(wanted: ExportRequest) -> bytes:
        """The evidence report of the campaign's period: every tenant's campaign of that week, a page each."""
        service = runtime.service
        states = [state for campaign in same_period(await service.store.list_campaigns(), wanted.campaign_id)
                  if (state := await service.campaign_state(campaign.id)) is not None]
        report = await gather_report(service.store, states, service.campaign_ledger, service.clock.now(),
                                     service.display_name)
        if wanted.fmt == "pdf":
            check_pdf_size(report, wanted.campaign_id)
        return await render_off_loop(report, wanted.fmt)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_post("/api/messages", messages)
    if runtime.slack is not None and not runtime.slack.settings.socket_mode:
        app.router.add_post("/slack/events", runtime.slack.handle)
    if runtime.slack is not None and runtime.slack.settings.oauth is not None:  # reached by installers' browsers
        app.router.add_get(INSTALL_PATH, runtime.slack.install)
        app.router.add_get(REDIRECT_PATH, runtime.slack.oauth_redirect)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/exports/{token}", export)

    async def scheduler_context(_: web.Application):  # type: ignore[no-untyped-def]
        # msrest sends every connector request from the default thread pool (min(32, cores + 4) threads,
        # 6 here): with Teams' latency that, not Teams' limits, would cap proactive sending.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=64, thread_name_prefix="connector"))
        await runtime.teams.warm_up()
        if runtime.slack is not None:
            await runtime.slack.start()
        task = asyncio.create_task(runtime.scheduler.run_forever()) if background else None
        runs = runtime.partner_runs
        collecting = asyncio.create_task(runs.work_forever()) if background and runs is not None and runs.works else None
        following = asyncio.create_task(runs.follow_forever()) if background and runs is not None else None
        yield
        for running in (task, collecting, following):
            if running is not None:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
        await runtime.scheduler.leadership.close()
        if runtime.slack is not None:
            await runtime.slack.stop()
        if runtime.partner is not None:
            await runtime.partner.jobs.close()
        await runtime.store.close()

    app.cleanup_ctx.append(scheduler_context)
    return app
