"""The operator's command line: serve, demo, campaigns, the ledger, and a doctor that says what is missing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Literal, Optional, cast

import typer
from sqlalchemy.exc import SQLAlchemyError
from aiohttp import web
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
)
from rich.table import Table

from bot import __version__
from bot.app import Runtime, build_runtime, create_app, load_inputs
from bot.app_install import AppInstaller
from bot.channels.slack import SlackSettings
from bot.channels.slack_oauth import INSTALL_PATH, REDIRECT_PATH, SlackOAuth, parse_teams
from bot.channels.teams import BotCredentials
from bot.cli_errors import DEBUG, OperatorErrorGroup, data_dir_in_use
from bot.clock import SystemClock
from bot.collection_jobs import (
    Backoff,
    CollectionJob,
    CollectionJobs,
    LocalCollectionJobs,
    NotAFullRun,
    PostgresCollectionJobs,
    RunInfo,
)
from bot.collection_worker import WorkerSettings, customer_jobs, read_partner, work_run
from bot.collection import (
    CollectionRun,
    GraphAccess,
    GraphNotConfigured,
    SnapshotArchive,
    collect,
    collect_all_customers,
    directory_audit_reader,
    graph_access,
    named_tenant,
)
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT, REPO_ROOT, Settings
from bot.engine.campaigns import current_period
from bot.engine.routing import UnresolvedPeople, routing_from_policy
from bot.engine.status import summarize
from bot.ledger import LedgerRecord, LedgerUnreadable, export_csv, export_json
from bot.ledger_check import check_ledger, configured_public_key, counted_records, set_aside_warning
from bot.ledger_signing import (
    Checkpoint,
    CheckpointUnreadable,
    LedgerKeyError,
    LedgerSigner,
    configured_signer,
    load_public_key_file,
    parse_witness,
    public_key_pem,
    write_key_pair,
)
from bot.manifest import build_manifest, write_package
from bot.operator_errors import EXIT_CODES_HELP, ExitCode, OperatorError, one_line
from bot.partner_campaigns import PartnerPolicy, load_partner_policy
from bot.partner_runs import RunSettings
from bot.playground import PLAYGROUND_BIN, PLAYGROUND_CONFIG, UnknownPlaygroundUser, playground_config_as, start_playground
from bot.policy import Policy, RemediationMode, load_policy, policy_people
from bot.remediation.arm_executor import ArmAndGraphExecutor
from bot.remediation.graph_executor import GraphExecutor
from bot.exports import REPORT_FORMATS
from bot.report.gather import NoSuchCampaign, gather_report, render_off_loop, same_period
from bot.service import rebuild_campaign
from bot.store.base import LedgerIntegrityError
from bot.store.factory import BackendStore, checked_url, is_postgres, open_store
from bot.store.atomic_storage import replace_file
from bot.store.postgres_schema import head_revision, upgrade
from bot.store.postgres_store import PostgresStore
from bot.store.tinydb_store import lock_writer
from bot.store.tinydb_to_postgres import migrate_from_tinydb
from checks.azure import arm_reader
from checks.findings import to_json, to_sarif
from checks.graph.client import GRAPH_SCOPES, token_roles
from checks.registry import run_checks
from checks.snapshot import TenantSnapshot, load_snapshot, snapshot_to_dict
from checks.subjects import subjects_from_snapshot

app = typer.Typer(
    cls=OperatorErrorGroup,
    help="accessbot: weekly access reviews for Microsoft 365 / Entra ID, in Teams.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # --debug prints a plain traceback, never the locals (they hold secrets)
)
campaign_app = typer.Typer(help="Open and follow review campaigns.", no_args_is_help=True)
ledger_app = typer.Typer(help="Verify and export the attestation ledger.", no_args_is_help=True)
manifest_app = typer.Typer(help="The Teams app package.", no_args_is_help=True)
app.add_typer(campaign_app, name="campaign")
app.add_typer(ledger_app, name="ledger")
app.add_typer(manifest_app, name="manifest")
db_app = typer.Typer(help="The PostgreSQL database (ACCESSBOT_DATABASE_URL): schema and moving from TinyDB.",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

PolicyOption = typer.Option(None, "--policy", help="Policy TOML file (default: ACCESSBOT_POLICY).")
SnapshotOption = typer.Option(None, "--snapshot", help="Tenant snapshot JSON (default: ACCESSBOT_SNAPSHOT).")
DataDirOption = typer.Option(None, "--data-dir", help="Where campaigns, the outbox and the ledger live.")


@app.callback()
def main(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", envvar="ACCESSBOT_DEBUG", help="On an error, show the traceback too."),
) -> None:
    """accessbot: weekly access reviews for Microsoft 365 / Entra ID, in Teams."""
    ctx.meta[DEBUG] = debug


def _settings(data_dir: Optional[Path]) -> Settings:
    settings = Settings()
    if data_dir is not None:
        settings.data_dir = data_dir
    data_dir_in_use.set(settings.data_dir)  # a file error inside it then names the data directory
    return settings


def _shown(text: str) -> str:
    """Text from a tenant or a file, for a rich console: on one line, its control characters escaped
    (never sent to the terminal), its [brackets] shown as written rather than read as markup."""
    return escape(one_line(text))


async def _store(settings: Settings, *, read_only: bool = False, signer: LedgerSigner | None = None) -> BackendStore:
    """The configured store (ACCESSBOT_DATABASE_URL, else the data directory); a read-only command never reads
    a missing data directory as an empty one."""
    url = settings.database_url.get_secret_value()
    data_dir = _existing_data_dir(settings) if read_only and not url else settings.data_dir
    return await open_store(url, data_dir, read_only=read_only, signer=signer)


def _existing_data_dir(settings: Settings) -> Path:
    """The data directory a read-only command reads; a missing one is said, never read as empty."""
    if not settings.data_dir.is_dir():
        raise OperatorError(
            f"no data directory at {settings.data_dir}: pass --data-dir (or set ACCESSBOT_DATA_DIR) to the folder "
            "`accessbot serve` writes",
            ExitCode.UNAVAILABLE,
        )
    return settings.data_dir


async def _inputs(settings: Settings, policy: Optional[Path], snapshot: Optional[Path], live: bool) -> tuple[Policy, TenantSnapshot]:
    """The policy, and the tenant: from a snapshot file, or from Microsoft Graph (the archive's last
    collection unless ``live`` asks for a fresh one)."""
    policy_path = policy or settings.policy
    snapshot_path = snapshot or settings.snapshot
    if policy_path is None:
        raise OperatorError("need a policy: pass --policy or set ACCESSBOT_POLICY (see policy/example.toml); "
                            "try `accessbot demo` for the shipped demo tenant")
    loaded = load_policy(policy_path)
    if snapshot_path is not None:
        return loaded, load_snapshot(snapshot_path)
    archive = SnapshotArchive(settings.data_dir)
    last = None if live else archive.last(loaded.tenant_id)
    if last is not None:
        return loaded, last
    try:
        access = graph_access(settings, loaded.tenant_id)
    except GraphNotConfigured as bad:
        raise OperatorError(f"{bad}; or pass --snapshot FILE to review a saved snapshot") from bad
    err.print(f"collecting {_shown(loaded.tenant_name)} through Microsoft Graph…")
    return loaded, await collect(access, loaded.tenant_id, archive, SystemClock().now(), policy_people(loaded))


async def _runtime(
    settings: Settings, policy: Optional[Path], snapshot: Optional[Path], credentials: BotCredentials, live: bool = False,
    signer: LedgerSigner | None = None,
) -> Runtime:
    loaded_policy, loaded_snapshot = await _inputs(settings, policy, snapshot, live)
    _require_people(loaded_policy, loaded_snapshot)
    tenant = loaded_policy.tenant_id
    collector = executor = installer = audit_reader = None
    if settings.graph_credential:
        access = graph_access(settings, tenant)
        if settings.change_poll_minutes > 0:
            audit_reader = directory_audit_reader(access, tenant)
        if settings.teams_app_catalog_id:
            installer = AppInstaller(GraphExecutor(access.client_for(tenant)), settings.teams_app_catalog_id)
        if (snapshot or settings.snapshot) is None:
            archive, people = SnapshotArchive(settings.data_dir), policy_people(loaded_policy)
            collector = lambda: collect(access, tenant, archive, SystemClock().now(), people)  # noqa: E731
        if loaded_policy.remediation is RemediationMode.APPLY:
            # the app needs the write permissions (docs/permissions.md); with ARM configured it also removes Azure roles
            arm = (arm_reader(access.credentials.for_tenant(tenant).token_credential(), settings.arm_base_url)
                   if settings.arm_base_url else None)
            executor = ArmAndGraphExecutor(access.client_for(tenant), arm)
    return await build_runtime(
        data_dir=settings.data_dir,
        policy=loaded_policy,
        snapshot=loaded_snapshot,
        clock=SystemClock(),
        credentials=credentials,
        tick_seconds=settings.tick_seconds,
        public_url=settings.base_url(),
        export_secret=settings.export_secret.get_secret_value() or None,
        graph_executor=executor,
        collector=collector,
        teams_service_url=settings.teams_service_url,
        app_installer=installer,
        ledger_signer=signer,
        witness_every=_witness_every(settings),
        database_url=settings.database_url.get_secret_value(),
        leader_retry_seconds=settings.leader_retry_seconds,
        follow_seconds=settings.follow_seconds,
        outbox_lease=timedelta(seconds=settings.outbox_lease_seconds),
        slack=_slack(settings),
        audit_reader=audit_reader,
        change_poll_every=timedelta(minutes=settings.change_poll_minutes or 5),
        partner_policy=_partner_policy(policy or settings.policy, settings),
        partner_run=settings.partner_run,
        partner_collection=RunSettings(
            access=graph_access(settings, tenant) if settings.graph_credential else None,
            workers=max(0, settings.collection_workers), keep_periods=max(1, settings.collection_keep_periods),
            idle_seconds=settings.tick_seconds),
    )


def _partner_policy(path: Optional[Path], settings: Settings) -> PartnerPolicy | None:
    """On a partner's deployment (ACCESSBOT_PARTNER, or ACCESSBOT_PARTNER_RUN set), the policy file is a CSP
    partner's, with its customers' overrides beside it."""
    if not settings.is_partner():
        return None
    if path is None:  # _inputs refuses a missing policy first; this keeps the type honest
        raise OperatorError("a partner's deployment needs the partner's policy: pass --policy or set ACCESSBOT_POLICY")
    return load_partner_policy(path)


def _require_shared_configuration(settings: Settings) -> None:
    """On PostgreSQL any number of instances serve one deployment behind a load balancer, so what each signs or
    hands out must come from configuration, the same on all: an export link made on one instance, with a random
    per-process secret or this instance's own address, would fail or point elsewhere on the next."""
    if not is_postgres(settings.database_url.get_secret_value()):
        return
    missing = [name for name, value in (("ACCESSBOT_EXPORT_SECRET", settings.export_secret.get_secret_value()),
                                        ("ACCESSBOT_PUBLIC_URL", settings.public_url)) if not value]
    if missing:
        raise OperatorError(
            f"{' and '.join(missing)} must be set on PostgreSQL: every instance behind the load balancer must sign "
            "export links with the same secret (not a random one per process) and give the same public address "
            "(docs/deployment.md#several-instances)")


def _slack(settings: Settings) -> SlackSettings | None:
    """The Slack workspace to attach (docs/slack-app.md), None without a bot token (or, with
    ACCESSBOT_SLACK_INSTALL=oauth, the workspaces that install the app); a one-line exit naming what is missing
    for the chosen mode."""
    token = settings.slack_bot_token.get_secret_value()
    if settings.slack_install not in ("token", "oauth"):
        raise OperatorError(f"ACCESSBOT_SLACK_INSTALL is {settings.slack_install!r}: expected token or oauth")
    if not token and settings.slack_install == "token":
        return None
    if settings.slack_mode not in ("http", "socket"):
        raise OperatorError(f"ACCESSBOT_SLACK_MODE is {settings.slack_mode!r}: expected http or socket")
    oauth = None
    if settings.slack_install == "oauth":
        oauth = SlackOAuth(
            client_id=settings.slack_client_id,
            client_secret=settings.slack_client_secret.get_secret_value(),
            token_key=settings.slack_token_key.get_secret_value(),
            allowed_teams=parse_teams(settings.slack_allowed_teams),
            redirect_uri=f"{settings.base_url().rstrip('/')}{REDIRECT_PATH}",
        )
    slack = SlackSettings(
        bot_token=token,
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        app_token=settings.slack_app_token.get_secret_value(),
        socket_mode=settings.slack_mode == "socket",
        api_url=settings.slack_api_url,
        oauth=oauth,
    )
    if (problem := slack.problem()) is not None:
        raise OperatorError(problem)
    return slack


def _require_people(policy: Policy, snapshot: TenantSnapshot) -> None:
    """Exit naming, one per line, everyone the policy names that the snapshot does not hold."""
    try:
        routing_from_policy(policy, snapshot.resolve_principal)
    except UnresolvedPeople as missing:
        err.print(one_line(f"The policy names {len(missing.names)} people not found in {snapshot.tenant_name}'s snapshot:"),
                  markup=False, style="red")
        for name in missing.names:
            err.print("  " + one_line(name), markup=False)
        err.print("Check the spelling, or collect them too: `accessbot collect --tenant ID --policy FILE`.")
        raise typer.Exit(2) from missing


UnsignedLedgerOption = typer.Option(
    False, "--unsigned-ledger", help="Write the ledger without a signing key (testing only: nobody can then prove "
    "it was not forged; see docs/ledger.md)."
)


def _ledger_signer(settings: Settings) -> LedgerSigner | None:
    """The configured signing key (ACCESSBOT_LEDGER_KEY_FILE / ACCESSBOT_LEDGER_KEY), or a one-line exit."""
    try:
        return configured_signer(settings.ledger_key_file, settings.ledger_key.get_secret_value(), settings.data_dir)
    except LedgerKeyError as bad:
        raise OperatorError(f"{bad}") from bad


def _required_signer(settings: Settings, unsigned: bool) -> LedgerSigner | None:
    """A writer signs the ledger unless told --unsigned-ledger: a production ledger must be signed."""
    signer = _ledger_signer(settings)
    if signer is None and not unsigned:
        raise OperatorError("No ledger signing key: set ACCESSBOT_LEDGER_KEY_FILE (make one with `accessbot ledger keygen "
                  "--out FILE`, kept outside the data directory), or pass --unsigned-ledger for testing only.")
    return signer


def _witness_every(settings: Settings) -> timedelta | None:
    return timedelta(hours=settings.ledger_witness_hours) if settings.ledger_witness_hours > 0 else None


def _demo_signer(settings: Settings) -> tuple[LedgerSigner, Path | None]:
    """The configured key, or the demo's own: made once in a folder beside (never inside) its data dir."""
    configured = _ledger_signer(settings)
    if configured is not None:
        return configured, None
    data_dir = settings.data_dir.resolve()
    key_file = data_dir.parent / f"{data_dir.name}-ledger-key" / "ledger.key"
    if not key_file.exists():
        key_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_key_pair(LedgerSigner.generate(), key_file)
    return LedgerSigner.from_file(key_file, settings.data_dir), key_file


def _credentials(settings: Settings) -> BotCredentials:
    return BotCredentials(
        app_id=settings.app_id,
        app_password=settings.app_password.get_secret_value(),
        app_tenant_id=settings.app_tenant_id,
        app_type=settings.app_type,
        openid_metadata_url=settings.openid_metadata_url,
        token_issuer=settings.token_issuer,
    )


def _listen(host: str, port: int) -> socket.socket:
    """The server's socket, bound before anything else starts, so a taken port is said and nothing is left
    half-started (the store opened, a campaign being written)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as bad:  # the port is taken, or the address is not this machine's
        reason = os.strerror(bad.errno) if (bad.errno or 0) > 0 else (bad.strerror or str(bad))
        raise OperatorError(f"cannot listen on {host}:{port}: {reason.lower()}; stop what uses it "
                            "or pass --port / --host", ExitCode.UNAVAILABLE) from bad


async def _serve(runtime: Runtime, listening: socket.socket, on_ready=None) -> None:  # type: ignore[no-untyped-def]
    runner = web.AppRunner(create_app(runtime))
    await runner.setup()
    await web.SockSite(runner, listening).start()
    host, port = listening.getsockname()[:2]
    slack = runtime.slack
    also = "" if slack is None else " and Slack over Socket Mode" if slack.settings.socket_mode else " and /slack/events"
    if slack is not None and slack.settings.oauth is not None:
        also += f" (workspaces install at {slack.settings.oauth.redirect_uri.removesuffix(REDIRECT_PATH)}{INSTALL_PATH})"
    console.print(f"accessbot listening on http://{host}:{port}/api/messages{also} (health: /healthz)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if on_ready is not None:
            on_ready()
        await stop.wait()
    finally:
        await runner.cleanup()


@app.command()
def serve(
    policy: Optional[Path] = PolicyOption,
    snapshot: Optional[Path] = SnapshotOption,
    data_dir: Optional[Path] = DataDirOption,
    host: Optional[str] = typer.Option(None, help="Address to listen on (default: ACCESSBOT_HOST or 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Port (default: ACCESSBOT_PORT or 3978)."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Accept unauthenticated activities (local testing only)."),
    unsigned_ledger: bool = UnsignedLedgerOption,
) -> None:
    """Run the bot server: /api/messages, /healthz, /metrics and the weekly schedule."""
    settings = _settings(data_dir)
    settings.host = host or settings.host
    settings.port = port or settings.port
    credentials = _credentials(settings)
    if not credentials.app_id and not no_auth:
        raise OperatorError("no bot app id: set MICROSOFT_APP_ID and MICROSOFT_APP_PASSWORD (see docs/), "
                            "or pass --no-auth for local testing only — it accepts activities from anyone")
    if credentials.app_id and credentials.app_type == "SingleTenant" and not credentials.app_tenant_id:
        raise OperatorError("a SingleTenant bot needs MICROSOFT_APP_TENANT_ID (the tenant of its app registration)")
    signer = _required_signer(settings, unsigned_ledger)
    _require_shared_configuration(settings)

    async def main() -> None:
        listening = _listen(settings.host, settings.port)
        try:
            runtime = await _runtime(settings, policy, snapshot, credentials, signer=signer)
        except NotAFullRun as bad:  # ACCESSBOT_PARTNER_RUN names a change check, or no run at all
            raise OperatorError(f"ACCESSBOT_PARTNER_RUN: {bad}") from bad
        await _serve(runtime, listening)

    asyncio.run(main())


SLACK_HINT = (
    "Slack too? Create the app from manifest/slack/manifest.yaml, then set ACCESSBOT_SLACK_BOT_TOKEN (xoxb-…) and "
    "either ACCESSBOT_SLACK_SIGNING_SECRET (Slack POSTs to <public URL>/slack/events) or ACCESSBOT_SLACK_MODE=socket "
    "with ACCESSBOT_SLACK_APP_TOKEN (xapp-…, no public URL). Step by step: docs/slack-app.md."
)


@app.command()
def demo(
    data_dir: Optional[Path] = DataDirOption,
    port: int = typer.Option(3978, help="Bot port."),
    playground_port: int = typer.Option(56150, help="Agents Playground web UI port."),
    playground: bool = typer.Option(True, help="Start Microsoft 365 Agents Playground as the Teams client."),
    as_user: Optional[str] = typer.Option(
        None, "--as", metavar="EMAIL",
        help="Be this person of .m365agentsplayground.yml in the Playground (it has no switch-user button)."),
) -> None:
    """Run the bot on the shipped demo tenant (no credentials), open this week's campaign, start the Playground."""
    try:
        config = playground_config_as((REPO_ROOT / PLAYGROUND_CONFIG).read_text(encoding="utf-8"),
                                      as_user or "alexw@contoso.com")
    except UnknownPlaygroundUser as unknown:
        raise OperatorError(f"--as: {unknown}") from unknown
    settings = _settings(data_dir)
    signer, demo_key = _demo_signer(settings)
    if demo_key is not None:
        console.print(f"The ledger is signed with the demo's own key {demo_key} (made for the demo, kept outside its "
                      "data dir; a real deployment sets ACCESSBOT_LEDGER_KEY_FILE: docs/ledger.md).")

    async def main() -> None:
        if playground and not PLAYGROUND_BIN.exists():
            raise OperatorError("Agents Playground is not installed: run `make demo`, which installs it with npm")
        listening = _listen("127.0.0.1", port)
        demo_policy, demo_snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
        runtime = await build_runtime(
            data_dir=settings.data_dir,
            policy=demo_policy,
            snapshot=demo_snapshot,
            clock=SystemClock(),
            credentials=BotCredentials(),
            tick_seconds=settings.tick_seconds,
            public_url=f"http://127.0.0.1:{port}",
            ledger_signer=signer,
            witness_every=_witness_every(settings),
            database_url=settings.database_url.get_secret_value(),
            slack=_slack(settings),
        )
        state, opened = await runtime.service.open_current_campaign()
        summary = runtime.service.summary(state)
        console.print(
            f"[bold]{summary.tenant_name}[/] review {summary.period}: {summary.total} items "
            f"({'opened now' if opened else 'already open'}), {summary.open} waiting. Data in {settings.data_dir}/"
        )
        bot_url = f"http://127.0.0.1:{port}/api/messages"
        if runtime.slack is None:
            console.print(SLACK_HINT)
        else:
            console.print(f"Slack attached ({settings.slack_mode} mode): say [bold]/access-review help[/] in your workspace.")
        if not playground:
            await _serve(runtime, listening)
            return
        you = ("Alex Wilber, Contoso's IT director" if as_user is None
               else demo_snapshot.display_name(demo_snapshot.resolve_principal(as_user) or as_user))
        with tempfile.TemporaryDirectory(prefix="accessbot-playground-") as folder:
            (Path(folder) / PLAYGROUND_CONFIG).write_text(config, encoding="utf-8")  # read from its cwd
            with start_playground(bot_url, Path(folder), playground_port) as client:
                def ready() -> None:
                    console.print(f"\n[bold green]Open {client.url} in a browser[/] — you are {you}.")
                    console.print("Say [bold]help[/], [bold]my reviews[/] or [bold]status[/]. Ctrl-C to stop.\n")
                await _serve(runtime, listening, on_ready=ready)

    asyncio.run(main())


@campaign_app.command("open")
def campaign_open(
    policy: Optional[Path] = PolicyOption,
    snapshot: Optional[Path] = SnapshotOption,
    tenant: Optional[str] = typer.Option(None, "--tenant", help="Collect the policy's tenant live first (must match it)."),
    data_dir: Optional[Path] = DataDirOption,
    unsigned_ledger: bool = UnsignedLedgerOption,
) -> None:
    """Open this period's campaign from a snapshot file or a live collection (nothing if already open)."""
    settings = _settings(data_dir)
    signer = _required_signer(settings, unsigned_ledger)

    async def main() -> None:
        runtime = await _runtime(settings, policy, snapshot, BotCredentials(), live=tenant is not None, signer=signer)
        try:
            if tenant is not None and tenant.lower() != runtime.service.policy.tenant_id:
                raise OperatorError(f"--tenant {tenant} is not the policy's tenant ({runtime.service.policy.tenant_id})")
            state, opened = await runtime.service.open_current_campaign()
        finally:
            await runtime.store.close()
        console.print(f"{state.campaign.id}: {state.campaign.item_count} items, {'opened' if opened else 'already open'}",
                      markup=False)

    asyncio.run(main())


@campaign_app.command("status")
def campaign_status(
    snapshot: Optional[Path] = typer.Option(None, "--snapshot", help="Tenant snapshot, to show names instead of ids."),
    data_dir: Optional[Path] = DataDirOption,
) -> None:
    """Where every campaign stands (read-only: safe while the bot runs)."""
    settings = _settings(data_dir)
    names = load_snapshot(snapshot).display_name if snapshot else (lambda object_id: object_id)

    async def main() -> None:
        store = await _store(settings, read_only=True)
        try:
            records = await _counted_records(store, settings)
            states = [(await rebuild_campaign(store, c, records))[0] for c in await store.list_campaigns()]
        finally:
            await store.close()
        if not states:
            raise OperatorError(f"no campaign has been opened in {settings.data_dir}: run `accessbot campaign open`, "
                                "or pass --data-dir", ExitCode.FAILED)
        now = SystemClock().now()
        for state in states:  # one block per campaign: its id on its own line, so no column cuts it
            s = summarize(state, now)
            console.print(f"campaign {s.campaign_id}", markup=False, style="bold")
            # Once signed off nothing is open any more: what remained went unanswered, and it says so.
            left = "unanswered at sign-off" if state.signed_off_by else "open"
            signed = (f"\n  signed off by {state.signed_off_by} at {state.signed_off_at:%Y-%m-%d %H:%M}"
                      if state.signed_off_by else "")
            console.print(
                f"  {s.total} items: {s.kept} kept, {s.revoked} revoked, {s.open} {left} ({s.overdue} overdue), "
                f"{s.excepted} excepted\n  due {s.due:%Y-%m-%d %H:%M}, data "
                + ("complete" if s.snapshot_complete else "INCOMPLETE") + signed,
                markup=False,
            )
            owners = Table("reviewer", "unanswered" if state.signed_off_by else "open", "answered",
                           box=box.SIMPLE_HEAD, pad_edge=False)
            for owner in s.by_owner:
                owners.add_row(_shown(names(owner.reviewer_id)), str(owner.open), str(owner.answered))
            owners.columns[0].overflow = "fold"  # a long UPN wraps instead of ending in "…"
            console.print(owners)

    asyncio.run(main())


@campaign_app.command("export")
def campaign_export(
    campaign: Optional[str] = typer.Option(None, help="Campaign id (default: the newest)."),
    fmt: str = typer.Option("csv", "--format", help="csv or json"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="File to write (default: stdout)."),
    data_dir: Optional[Path] = DataDirOption,
) -> None:
    """Export one campaign's attestations (its ledger records) for auditors."""
    settings = _settings(data_dir)

    async def main() -> None:
        store = await _store(settings, read_only=True)
        try:
            campaigns = await store.list_campaigns()
            if not campaigns:
                raise OperatorError(f"no campaign has been opened in {settings.data_dir}: run `accessbot campaign open`, "
                                    "or pass --data-dir", ExitCode.FAILED)
            wanted = campaign or campaigns[0].id
            records = [r for r in await _counted_records(store, settings) if r.data.get("campaign_id") == wanted]
        finally:
            await store.close()
        _write_records(records, fmt, output)

    asyncio.run(main())


@campaign_app.command("report")
def campaign_report(
    campaign: Optional[str] = typer.Option(None, help="Campaign id (default: the newest). Every tenant's campaign of "
                                           "its period is in the report, a section each."),
    fmt: str = typer.Option("pdf", "--format", help="pdf or html"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="File to write (default: accessbot-report-<period>.<format>)."),
    snapshot: Optional[Path] = typer.Option(None, "--snapshot", help="Tenant snapshot, to show names instead of ids "
                                            "(default: ACCESSBOT_SNAPSHOT)."),
    data_dir: Optional[Path] = DataDirOption,
) -> None:
    """The evidence report auditors file: cover, completion, decisions, findings with the guidance they carry out,
    exceptions, remediation, every attestation, and the signed checkpoint with the command that verifies it.
    Counts only what a signed checkpoint covers (read-only: safe while the bot runs)."""
    if fmt not in REPORT_FORMATS:
        raise OperatorError(f"unknown format {fmt!r}: use pdf or html")
    settings = _settings(data_dir)
    names_from = snapshot or settings.snapshot
    names = load_snapshot(names_from).display_name if names_from else (lambda object_id: object_id)

    async def main() -> tuple[bytes, str]:
        store = await _store(settings, read_only=True)
        try:
            try:
                chosen = same_period(await store.list_campaigns(), campaign)
            except NoSuchCampaign as missing:
                raise OperatorError(f"{missing} in {settings.data_dir}: see `accessbot campaign status`, or pass "
                                    "--data-dir", ExitCode.FAILED) from missing
            records = await _counted_records(store, settings)
            states = [(await rebuild_campaign(store, c, records))[0] for c in chosen]
            by_campaign = {c.id: [r for r in records if r.data.get("campaign_id") == c.id] for c in chosen}

            async def records_of(campaign_id: str) -> list[LedgerRecord]:
                return by_campaign[campaign_id]

            report = await gather_report(store, states, records_of, SystemClock().now(), names)
        finally:
            await store.close()
        return await render_off_loop(report, fmt), chosen[0].period

    body, period = asyncio.run(main())
    target = out or Path(f"accessbot-report-{period.replace(':', '')}.{fmt}")
    target.write_bytes(body)
    err.print(f"wrote the {fmt.upper()} evidence report to {_shown(str(target))}")


async def _ledger_records(store: BackendStore) -> list[LedgerRecord]:
    """The ledger's records, or a clear exit naming the line that cannot even be read."""
    try:
        return await store.ledger_records()
    except LedgerUnreadable as bad:
        err.print(f"[red]ledger BROKEN at line {bad.line_number}[/]: {_shown(str(bad))}")
        raise typer.Exit(1) from bad


async def _counted_records(store: BackendStore, settings: Settings) -> list[LedgerRecord]:
    """The records a report may count (only what a signed checkpoint covers: never a forged, appended tail),
    a warning on stderr for any left out, or exit 1 when the ledger cannot be vouched for."""
    records = await _ledger_records(store)
    try:
        trusted = configured_public_key(settings)
    except LedgerKeyError as bad:
        raise OperatorError(f"{bad}") from bad
    try:
        counted, warning = counted_records(records, await store.latest_checkpoint(), trusted)
    except LedgerIntegrityError as bad:
        err.print(f"[red]ledger BROKEN[/]: {_shown(str(bad))}; nothing is counted from a ledger that does not verify "
                  "(run `accessbot ledger verify`)")
        raise typer.Exit(1) from bad
    if warning is not None:
        err.print(f"[yellow]warning[/]: {_shown(warning)}")
    return counted


def _write_records(records, fmt: str, output: Optional[Path]) -> None:  # type: ignore[no-untyped-def]
    writers = {"csv": export_csv, "json": export_json}
    if fmt not in writers:
        raise OperatorError(f"unknown format {fmt!r}: use csv or json")
    if output is None:
        writers[fmt](records, sys.stdout)
        return
    with output.open("w", encoding="utf-8", newline="") as out:
        writers[fmt](records, out)
    err.print(f"wrote {len(records)} records to {output}")


@ledger_app.command("verify")
def ledger_verify(
    data_dir: Optional[Path] = DataDirOption,
    public_key: Optional[Path] = typer.Option(
        None, "--public-key", help="The ledger's public key (PEM: keygen's .pub, or ledger-public-key.pem from an "
        "evidence pack). Default: ACCESSBOT_LEDGER_PUBLIC_KEY_FILE, else the configured signing key's."
    ),
    witness: list[str] = typer.Option(
        [], "--witness", help="A checkpoint published earlier: the posted message text, or a file holding it or its "
        "JSON. Proves nothing up to it was removed or rewritten, even with the key. Repeatable."
    ),
) -> None:
    """Prove the ledger: hash chain, anchor, a signed checkpoint covering every record, witnesses.

    Exit 0 only when all of it holds; 1 when the ledger is broken or cannot be proven (the reason is
    printed); 2 when the key or a witness given cannot be read."""
    settings = _settings(data_dir)
    trusted = _trusted_key(settings, public_key)
    witnesses = [_read_witness(value) for value in witness]
    database_url = checked_url(settings.database_url.get_secret_value())
    if not database_url and not settings.data_dir.is_dir():
        err.print(f"[red]ledger BROKEN[/]: there is no data directory {settings.data_dir} (wrong --data-dir?)")
        raise typer.Exit(1)

    async def main() -> None:
        try:
            result = await check_ledger(database_url, settings.data_dir, trusted, witnesses)
        except LedgerUnreadable as bad:
            err.print(f"[red]ledger BROKEN at line {bad.line_number}[/]: {_shown(str(bad))}")
            raise typer.Exit(1) from bad
        except CheckpointUnreadable as bad:
            err.print(f"[red]ledger BROKEN[/]: {_shown(str(bad))}")
            raise typer.Exit(1) from bad
        if not result.ok:
            for number, problem in enumerate(result.problems):
                where = f" at record {result.first_bad_seq}" if number == 0 and result.first_bad_seq else ""
                err.print(f"[red]ledger BROKEN{where}[/]: {_shown(problem)}")
            raise typer.Exit(1)
        assert result.checkpoint is not None
        console.print(f"[green]ledger OK[/]: {result.count} records, head {result.head.hash}")
        console.print(f"signed: checkpoint of record {result.checkpoint.seq} at {result.checkpoint.at} by key "
                      f"{result.checkpoint.key}")
        for note in result.notes:
            console.print(f"witness: {_shown(note)}")
        if result.set_aside:
            console.print(f"[yellow]WARNING[/]: {_shown(set_aside_warning(result.set_aside))}")
    asyncio.run(main())


def _trusted_key(settings: Settings, public_key: Optional[Path]):  # type: ignore[no-untyped-def]
    """The public key verify trusts: given, else the configured one (``configured_public_key``, as doctor)."""
    try:
        trusted = load_public_key_file(public_key, settings.data_dir) if public_key else configured_public_key(settings)
    except LedgerKeyError as bad:
        raise OperatorError(f"{bad}") from bad
    if trusted is None:
        raise OperatorError("No key to check the ledger's signatures with: pass --public-key FILE (the .pub written "
                            "by `accessbot ledger keygen`, or ledger-public-key.pem from an evidence pack).")
    return trusted


def _read_witness(value: str) -> Checkpoint:
    """A witness given as a file (the saved message, or ledger-checkpoint.json) or as the text itself."""
    try:
        return parse_witness(value if "{" in value else Path(value).read_text(encoding="utf-8"))
    except (CheckpointUnreadable, OSError, UnicodeDecodeError) as bad:
        raise OperatorError(f"Cannot read the witness {value[:60]!r}: {bad}") from bad


@ledger_app.command("keygen")
def ledger_keygen(
    out: Path = typer.Option(..., "--out", help="Where to write the private key (0600); the public key goes to OUT.pub."),
    data_dir: Optional[Path] = DataDirOption,
) -> None:
    """Make an Ed25519 signing key for the ledger. Keep it outside the data directory; give auditors OUT.pub."""
    settings = _settings(data_dir)
    if out.resolve().is_relative_to(settings.data_dir.resolve()):
        raise OperatorError(f"{out} is inside the data directory {settings.data_dir}: keep the key elsewhere, or whoever "
                  "can write the data can also sign it.")
    signer = LedgerSigner.generate()
    try:
        public = write_key_pair(signer, out)
    except LedgerKeyError as bad:
        raise OperatorError(f"{bad}") from bad
    sys.stdout.write(public_key_pem(signer.public_key).decode())
    console.print(f"wrote the private key to {out} (mode 0600) and the public key to {public}")
    console.print(f"fingerprint {signer.fingerprint}")
    console.print(f"Set ACCESSBOT_LEDGER_KEY_FILE={out} for `accessbot serve`; give {public} to your auditors.")


@ledger_app.command("rotate-key")
def ledger_rotate_key(
    new_key_out: Path = typer.Option(..., "--new-key-out", help="Where to write the new private key (0600, plus .pub)."),
    data_dir: Optional[Path] = DataDirOption,
) -> None:
    """Hand the ledger to a new key: a rotation record signed by the current key (ACCESSBOT_LEDGER_KEY_FILE)
    names the new one, so verify follows from any earlier public key. Stop the bot first."""
    settings = _settings(data_dir)
    old = _ledger_signer(settings)
    if old is None:
        raise OperatorError("No current key: set ACCESSBOT_LEDGER_KEY_FILE to the key the ledger is signed with.")
    if new_key_out.resolve().is_relative_to(settings.data_dir.resolve()):
        raise OperatorError(f"{new_key_out} is inside the data directory {settings.data_dir}: keep the key elsewhere.")

    async def main() -> None:
        store = await _store(settings, signer=old)
        try:
            if store.write_problem() is not None:
                err.print(f"[red]Cannot rotate:[/] {store.write_problem()} (run `accessbot ledger verify`)")
                raise typer.Exit(1)
            new = LedgerSigner.generate()
            public = write_key_pair(new, new_key_out)  # the new key is safe on disk before the ledger names it
            rotation = await store.rotate_ledger_key(new, SystemClock().now())
        except (LedgerKeyError, ValueError) as bad:
            raise OperatorError(f"Cannot rotate: {bad}") from bad
        finally:
            await store.close()
        console.print(f"rotated at record {rotation.seq}: key {old.fingerprint} handed the ledger to {new.fingerprint}")
        console.print(f"Set ACCESSBOT_LEDGER_KEY_FILE={new_key_out} and restart; give {public} to your auditors. "
                      "Destroy the old private key once nothing uses it.")

    asyncio.run(main())


@ledger_app.command("adopt")
def ledger_adopt(data_dir: Optional[Path] = DataDirOption) -> None:
    """Sign a ledger written before signing was switched on (once; stop the bot first). Its hash chain and
    anchor must verify; compare it with your backups first: from here on, the key vouches for it."""
    settings = _settings(data_dir)
    signer = _ledger_signer(settings)
    if signer is None:
        raise OperatorError("No signing key: set ACCESSBOT_LEDGER_KEY_FILE to the key that is to sign this ledger.")

    async def main() -> None:
        store = await _store(settings, signer=signer)
        try:
            checkpoint = await store.adopt_unsigned_ledger(SystemClock().now())
        except (ValueError, LedgerIntegrityError) as bad:
            err.print(f"[red]Cannot adopt:[/] {bad}")
            raise typer.Exit(1) from bad
        finally:
            await store.close()
        console.print(f"signed record {checkpoint.seq} with key {checkpoint.key}: the ledger is provable from here on")

    asyncio.run(main())


@ledger_app.command("checkpoint")
def ledger_checkpoint(data_dir: Optional[Path] = DataDirOption) -> None:
    """Print the latest signed checkpoint as a witness: keep it somewhere the bot cannot write."""
    settings = _settings(data_dir)

    async def main() -> None:
        store = await _store(settings, read_only=True)
        checkpoint = await store.latest_checkpoint()
        await store.close()
        if checkpoint is None:
            err.print(f"[red]No signed checkpoint in {settings.data_dir}[/] (the ledger is empty or unsigned).")
            raise typer.Exit(1)
        console.print(checkpoint.witness_text(), markup=False, highlight=False)

    asyncio.run(main())


@ledger_app.command("export")
def ledger_export(
    fmt: str = typer.Option("csv", "--format", help="csv or json"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="File to write (default: stdout)."),
    data_dir: Optional[Path] = DataDirOption,
) -> None:
    """Export the whole ledger for auditors."""
    settings = _settings(data_dir)

    async def main() -> None:
        store = await _store(settings, read_only=True)
        try:
            records = await _counted_records(store, settings)
        finally:
            await store.close()
        _write_records(records, fmt, output)

    asyncio.run(main())


def _database_url(settings: Settings) -> str:
    url = checked_url(settings.database_url.get_secret_value())
    if not url:
        raise OperatorError("ACCESSBOT_DATABASE_URL is not set: set it to the PostgreSQL database, "
                            "e.g. postgresql://accessbot@db.example.com/accessbot?sslmode=require")
    return url


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database's schema to this version's (Alembic migrations; idempotent). Run it before starting
    a new version: a server refuses a database whose schema is behind."""
    url = _database_url(_settings(None))
    try:
        upgrade(url)
    except SQLAlchemyError as failed:
        raise OperatorError(f"the schema could not be upgraded: {one_line(str(getattr(failed, 'orig', None) or failed))}",
                            ExitCode.UNAVAILABLE) from failed
    console.print(f"database schema at revision {head_revision()}")


@db_app.command("migrate-from-tinydb")
def db_migrate_from_tinydb(
    source: Path = typer.Argument(..., help="The data directory `accessbot serve` wrote (stop the bot first)."),
) -> None:
    """Copy a TinyDB data directory into the empty database: campaigns, items, the ledger record for record
    with its hashes and signed checkpoints, conversations, cards, the pending outbox and sent keys, and the Slack
    workspaces installed by OAuth (still sealed). Then run
    `accessbot ledger verify` against the database."""
    url = _database_url(_settings(source))
    moved = asyncio.run(migrate_from_tinydb(source, url))
    console.print(f"moved {moved.records} ledger records and {moved.signed_entries} signed checkpoints/rotations, "
                  f"{moved.campaigns} campaigns ({moved.items} items), {moved.conversations} conversations, "
                  f"{moved.cards} cards, {moved.pending} pending and {moved.left_queue} sent messages")
    if moved.slack_installations:
        console.print(f"moved {moved.slack_installations} Slack workspace installations, still sealed: serve them with "
                      "the same ACCESSBOT_SLACK_TOKEN_KEY")
    console.print("now run `accessbot ledger verify` with ACCESSBOT_DATABASE_URL set: it proves every record arrived "
                  "in order")


TenantOption = typer.Option(None, "--tenant", help="Collect this tenant live through Microsoft Graph.")
AllCustomersOption = typer.Option(False, "--all-customers", help="CSP partner: every customer reached through GDAP.")


@app.command()
def scan(
    tenant: Optional[str] = TenantOption,
    all_customers: bool = AllCustomersOption,
    snapshot: Optional[Path] = typer.Option(None, "--snapshot", help="Scan a saved snapshot file instead of a live tenant."),
    fmt: str = typer.Option("table", "--format", help="table, json or sarif"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="File to write (default: stdout)."),
    break_glass: Optional[Path] = typer.Option(None, "--policy", help="Policy whose break-glass register to honour."),
    data_dir: Optional[Path] = DataDirOption,
) -> None:
    """Run the checks catalogue over tenants (live or a saved snapshot); findings as a table, JSON or SARIF 2.1.0.

    Exit 3 incomplete (the findings are then partial), 1 nothing could be read; failures are said on stderr."""
    if fmt not in ("table", "json", "sarif"):
        raise OperatorError(f"unknown format {fmt!r}: use table, json or sarif")
    accounts = [a.principal for a in load_policy(break_glass).break_glass] if break_glass else []
    if snapshot is not None:
        run = CollectionRun.of([load_snapshot(snapshot)])
    else:
        run = asyncio.run(_collect_live(_settings(data_dir), tenant, all_customers))
    _say_problems(run)
    if run.outcome != "failed":
        _report_findings(run.snapshots, accounts, fmt, output)
    raise typer.Exit(int(_exit_code(run)))


async def _collect_live(
    settings: Settings, tenant: Optional[str], all_customers: bool, people: tuple[str, ...] = ()
) -> CollectionRun:
    """Collect one tenant, or (as a CSP partner) every customer, with a progress bar over tenants.
    ``people`` (the policy's reviewers, by UPN or id) are read too, so a campaign can route to them."""
    if not tenant:
        raise OperatorError("say which tenant: --tenant ID (the partner's own tenant with --all-customers)")
    access = graph_access(settings, tenant)
    archive = SnapshotArchive(settings.data_dir)
    now = SystemClock().now()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=err, transient=True) as progress:
        if not all_customers:
            task = progress.add_task(f"collecting {tenant}", total=1)
            snapshot = await collect(access, tenant, archive, now, people)
            progress.advance(task)
            return CollectionRun.of([snapshot])
        task = progress.add_task("collecting customers through GDAP", total=None)

        def advance(done: int, total: int, name: str) -> None:
            progress.update(task, completed=done, total=total, description=f"collected {_shown(name)}")

        return await collect_all_customers(access, tenant, archive, now, advance)


def _say_problems(run: CollectionRun) -> None:
    """What could not be read, on stderr: one line per tenant and source, with Graph's HTTP status."""
    for problem in run.problems:
        typer.echo(f"accessbot: could not read {one_line(problem)}", err=True)
    if run.note:
        typer.echo(f"accessbot: {one_line(run.note)}", err=True)
    if run.outcome == "failed":
        typer.echo("accessbot: collection FAILED: nothing could be read; fix the causes above and run it again", err=True)
    elif run.outcome == "incomplete":
        typer.echo(f"accessbot: collection INCOMPLETE: {len(run.problems)} source(s) could not be read; "
                   "reviews from it never treat what is missing as removed", err=True)


def _exit_code(run: CollectionRun) -> ExitCode:
    return {"complete": ExitCode.OK, "incomplete": ExitCode.INCOMPLETE, "failed": ExitCode.FAILED}[run.outcome]


@app.command("collect")
def collect_command(
    tenant: Optional[str] = TenantOption,
    all_customers: bool = AllCustomersOption,
    policy: Optional[Path] = typer.Option(None, "--policy", help="Also read the people this policy names "
                                          "(default: ACCESSBOT_POLICY), so `campaign open --snapshot` finds them; "
                                          "with --all-customers, the partner's policy, whose schedule names the run's period."),
    data_dir: Optional[Path] = DataDirOption,
    run_id: Optional[str] = typer.Option(None, "--run", help="With --all-customers: join this collection run (start "
                                         "it if there is none), e.g. the review period's, 2026-11-23T09:00."),
    out: Optional[Path] = typer.Option(None, "--out", help="With --all-customers: also write each collected tenant's "
                                       "snapshot to OUT/<tenant id>.json (on PostgreSQL they are in the database)."),
    attempts: int = typer.Option(5, "--attempts", min=1, help="With --all-customers: attempts per tenant before it "
                                 "counts as failed (retried after 1, 2, 4, 8 minutes, or Graph's Retry-After)."),
) -> None:
    """Collect tenants through Microsoft Graph into snapshot files (DATA_DIR/snapshots/) without reviewing them.
    A CSP partner's customers (--all-customers) are collected as a run of jobs in the store, shared with `serve`'s
    workers and `python -m bot.collection_worker` on other machines.

    Exit 0 complete, 3 incomplete (some tenants failed or were read in part; each is named), 1 nothing could be
    read; what failed is said on stderr."""
    settings = _settings(data_dir)
    policy_path = policy or settings.policy
    loaded = load_policy(policy_path) if policy_path else None
    if all_customers:
        raise typer.Exit(int(asyncio.run(_collect_customers(settings, tenant, loaded, run_id, out, attempts))))
    people = policy_people(loaded) if loaded else ()
    run = asyncio.run(_collect_live(settings, tenant, False, people))
    for snapshot in run.snapshots:
        state = "complete" if snapshot.complete else "INCOMPLETE: missing " + "; ".join(snapshot.missing)
        console.print(one_line(f"{snapshot.tenant_name} ({snapshot.tenant_id}): {state}"
                               + (f"; not available: {'; '.join(snapshot.unavailable)}" if snapshot.unavailable else "")),
                      markup=False)
    console.print(f"{len(run.snapshots)} tenant(s); snapshots in {SnapshotArchive(settings.data_dir).folder}", markup=False)
    _say_problems(run)
    raise typer.Exit(int(_exit_code(run)))


async def _collect_customers(settings: Settings, tenant: Optional[str], policy: Policy | None, run_id: Optional[str],
                             out: Optional[Path], attempts: int) -> ExitCode:
    """A CSP partner's customers as a collection run in the store (bot/collection_jobs.py): start it (reading the
    partner's GDAP customers) or join ``run_id``, work it here with a progress bar until no job is open, then say
    how each tenant ended. On TinyDB the data directory's writer lock is held throughout, so a running server on
    the same directory is refused rather than raced (its jobs file has one writer)."""
    if not tenant:
        raise OperatorError("say which tenant: --tenant ID (the partner's own tenant with --all-customers)")
    access = graph_access(settings, tenant)
    clock = SystemClock()
    url, lock = settings.database_url.get_secret_value(), None
    jobs: CollectionJobs
    if is_postgres(url):
        jobs = PostgresCollectionJobs(cast(PostgresStore, await open_store(url, settings.data_dir)))
    else:  # the jobs file has one writer: the data directory's, refused (exit 4) while a server holds it
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        lock = lock_writer(settings.data_dir / "writer.lock")
        jobs = LocalCollectionJobs(settings.data_dir)
    try:
        run_id = run_id or f"collect-{clock.now():%Y%m%dT%H%M%SZ}"
        if await jobs.run(run_id) is None:
            partner = await read_partner(access, tenant, clock)
            if any(entry.startswith("delegatedAdminRelationships:") for entry in partner.missing):
                failed = CollectionRun.of([], partner)  # no customer could even be found
                console.print("0 tenant(s)", markup=False)
                _say_problems(failed)
                return _exit_code(failed)
            cron, zone = (policy.schedule_cron, policy.timezone) if policy else (Policy.schedule_cron, Policy.timezone)
            period = current_period(cron, zone, clock.now())  # pruning keeps runs by review period
            await jobs.start_run(RunInfo(run_id, "full", period, clock.now()), customer_jobs(partner), clock.now())
        await _work_with_progress(jobs, access, run_id, clock, attempts)
        return await _say_how_the_run_ended(jobs, run_id, settings, out)
    finally:
        await jobs.close()  # on PostgreSQL, its store too
        if lock is not None:
            os.close(lock)  # closing the descriptor releases the flock


async def _work_with_progress(jobs: CollectionJobs, access: GraphAccess, run_id: str, clock: SystemClock,
                              attempts: int) -> None:
    """Work the run here until none of its jobs is open (other processes may work it too), tenants done, failed
    and throttled on a progress bar."""
    standing = await jobs.jobs(run_id)
    counts = {"collected": sum(j.state == "done" for j in standing), "failed": sum(j.state == "failed" for j in standing),
              "throttled": 0}
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=err, transient=True) as progress:
        def described() -> str:
            return (f"run {_shown(run_id)}: {counts['collected']} done, {counts['failed']} failed, "
                    f"{counts['throttled']} throttled")

        task = progress.add_task(described(), total=len(standing), completed=counts["collected"] + counts["failed"])

        def advance(job: CollectionJob, outcome: str) -> None:
            if job.run_id != run_id or outcome not in counts:
                return  # another run's job this process helped with, or a retry still to come
            counts[outcome] += 1
            progress.update(task, description=described(),
                            completed=counts["collected"] + counts["failed"])

        await work_run(jobs, access, run_id, clock=clock, progress=advance,
                       settings=WorkerSettings(backoff=Backoff(max_attempts=attempts)))


async def _say_how_the_run_ended(jobs: CollectionJobs, run_id: str, settings: Settings, out: Optional[Path]) -> ExitCode:
    """A line per tenant (complete, incomplete with what is missing, or failed with its error), each problem on
    stderr; the exit code: 0 every tenant complete, 3 some failed or read in part, 1 not one read."""
    problems, read = [], 0
    ended = await jobs.jobs(run_id)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    for job in ended:
        name = named_tenant(job.tenant_name, job.tenant_id)
        snapshot = await jobs.last_snapshot(job.tenant_id) if job.state == "done" else None
        if snapshot is None:
            problems.append(f"{name}: collection {job.state.upper()} after {job.attempts} attempt(s): "
                            f"{job.last_error or 'not finished'}")
            console.print(one_line(f"{name}: FAILED: {job.last_error or job.state}"), markup=False)
            continue
        read += 1
        problems.extend(f"{name}: {entry}" for entry in snapshot.missing)
        state = "complete" if snapshot.complete else "INCOMPLETE: missing " + "; ".join(snapshot.missing)
        console.print(one_line(f"{name}: {state}"), markup=False)
        if out is not None:
            replace_file(out / f"{job.tenant_id}.json", json.dumps(snapshot_to_dict(snapshot), ensure_ascii=False).encode())
    where = (SnapshotArchive(settings.data_dir).folder if not is_postgres(settings.database_url.get_secret_value())
             else "the database")
    console.print(f"{len(ended)} tenant(s) in run {run_id}; snapshots in {where}" + (f" and {out}" if out else ""),
                  markup=False)
    outcome: Literal["complete", "incomplete", "failed"] = (
        "failed" if ended and not read else "incomplete" if problems else "complete")
    finished = CollectionRun((), tuple(problems), outcome)
    _say_problems(finished)
    return _exit_code(finished)


def _report_findings(snapshots, break_glass: list[str], fmt: str, output: Optional[Path]) -> None:  # type: ignore[no-untyped-def]
    results = []
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=err, transient=True) as progress:
        task = progress.add_task("checking tenants", total=len(snapshots))
        for tenant in snapshots:
            progress.update(task, description=f"checking {_shown(tenant.tenant_name)}")
            subjects = subjects_from_snapshot(tenant, tenant.collected_at, break_glass)
            results.extend((tenant, r) for r in run_checks(tenant, subjects, now=tenant.collected_at))
            progress.advance(task)
    if fmt == "table":
        table = Table("severity", "tenant", "check", "resource", "finding", "ScubaGear")
        for tenant, r in results:
            table.add_row(*(_shown(cell) for cell in (r.severity.value, tenant.tenant_name, r.check.id, r.resource,
                                                      r.message, r.check.scuba or "")))
        # On a narrow terminal nothing is cut to "admin_mfa_m…" or "MS.AAD.3.2…": every column wraps (a long
        # check id folds onto the next line) and the ScubaGear id, which readers look up, stays whole.
        for column in table.columns:
            column.overflow = "fold"
        table.columns[5].no_wrap, table.columns[5].min_width = True, len("MS.AAD.3.2v2")
        if output is None:
            console.print(table)
            console.print(f"{len(results)} finding(s) in {len(snapshots)} tenant(s)")
            return
        with output.open("w", encoding="utf-8") as out:
            target = Console(file=out, soft_wrap=True)
            target.print(table)
            target.print(f"{len(results)} finding(s) in {len(snapshots)} tenant(s)")
        return
    document = to_sarif([r for _, r in results], __version__) if fmt == "sarif" else [
        {"tenant": tenant.tenant_id, **row} for tenant, r in results for row in to_json([r])
    ]
    text = json.dumps(document, indent=2, ensure_ascii=False)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
        err.print(f"wrote {len(results)} finding(s) to {output}")
    else:
        sys.stdout.write(text + "\n")


async def _granted_permissions(settings: Settings) -> frozenset[str] | None:
    """The application permissions in a Graph token for the configured app, or None if none could be had."""
    if not settings.graph_credential:
        return None
    try:
        credential = graph_access(settings, settings.graph_tenant_id or "common").credentials.token_credential()
        async with credential:
            token = await credential.get_token(*GRAPH_SCOPES)
    except Exception as failed:  # azure-identity raises many types; doctor reports, never crashes
        err.print(f"[yellow]could not get a Graph token: {type(failed).__name__}: {_shown(str(failed))}[/]")
        return None
    return token_roles(token.token)


@manifest_app.command("build")
def manifest_build(
    domain: Optional[str] = typer.Option(None, help="Host name people reach the bot at (validDomains, default links)."),
    version: str = typer.Option("1.0.0", help="App package version, X.Y.Z; raise it for every upload."),
    out: Path = typer.Option(Path("dist"), help="Zip file or folder to write."),
    teams_app_id: Optional[str] = typer.Option(None, help="Keep an existing Teams app id (default: derived from the bot id)."),
    website_url: Optional[str] = typer.Option(None, help="Developer website (default https://<domain>/)."),
    privacy_url: Optional[str] = typer.Option(None, help="Privacy statement URL."),
    terms_url: Optional[str] = typer.Option(None, help="Terms of use URL."),
) -> None:
    """Build the Teams app package (manifest + icons) with this deployment's bot id (MICROSOFT_APP_ID)."""
    settings = Settings()
    try:
        manifest = build_manifest(
            settings.app_id, version=version, domain=domain, teams_app_id=teams_app_id,
            website_url=website_url, privacy_url=privacy_url, terms_of_use_url=terms_url,
        )
        path = write_package(manifest, out)
    except ValueError as bad:
        raise OperatorError(f"{bad}") from bad
    console.print(f"wrote {path}: upload it in Teams admin center > Manage apps (see docs/teams-app.md)")


@app.command()
def doctor(
    policy: Optional[Path] = PolicyOption, snapshot: Optional[Path] = SnapshotOption, data_dir: Optional[Path] = DataDirOption
) -> None:
    """Check configuration, policy and data; say what is missing and how to fix it."""
    from bot.doctor import diagnose

    settings = _settings(data_dir)
    problems = 0
    for check in diagnose(settings, policy, snapshot, asyncio.run(_granted_permissions(settings))):
        colour = {"ok": "green", "warn": "yellow", "fail": "red"}[check.level]
        console.print(f"[{colour}]{check.level.upper():4}[/] {_shown(check.name)}: {_shown(check.detail)}")
        problems += check.level == "fail"
    if problems:
        raise typer.Exit(int(ExitCode.FAILED))
