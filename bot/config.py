"""Deployment settings, from the environment (or a .env file); secrets never come from code or logs."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_POLICY = REPO_ROOT / "policy" / "demo.toml"
DEMO_SNAPSHOT = REPO_ROOT / "checks" / "demo_tenant.json"


class Settings(BaseSettings):
    """``ACCESSBOT_*`` variables; the Bot Framework ones also accept Azure's usual ``MicrosoftApp*`` names."""

    model_config = SettingsConfigDict(env_prefix="ACCESSBOT_", env_file=".env", extra="ignore")

    data_dir: Path = Path(".accessbot")
    # Where the store lives: empty keeps TinyDB in data_dir (one instance); postgresql://… uses PostgreSQL
    # (bot/store/factory.py). A secret: the URL may carry the password.
    database_url: SecretStr = SecretStr("")
    policy: Path | None = None
    snapshot: Path | None = None
    host: str = "127.0.0.1"
    port: int = 3978
    tick_seconds: float = 30.0
    # Several instances on one PostgreSQL database (docs/deployment.md): a standby tries for the scheduler's
    # leadership this often, so it takes over within this many seconds of the leader's process dying (6× when
    # the leader's machine is lost); and every instance catches up with the others' ledger records this often.
    leader_retry_seconds: float = 5.0
    follow_seconds: float = 1.0
    # How long a notifier's claim on an outbox message lasts: what a killed instance held goes out this long after.
    outbox_lease_seconds: float = 300.0
    public_url: str = ""  # how people reach this server (export links); default http://{host}:{port}
    export_secret: SecretStr = SecretStr("")  # signs export links; random per process when empty

    # The ledger's Ed25519 signing key, kept OUTSIDE data_dir (docs/ledger.md): a file from
    # `accessbot ledger keygen`, or the key itself (PEM, or base64 of the 32-byte seed) from a secret store.
    ledger_key_file: Path | None = None
    ledger_key: SecretStr = SecretStr("")
    # What auditors verify against when they hold no secret (`ledger verify` without --public-key).
    ledger_public_key_file: Path | None = None
    # How often the latest checkpoint is posted to the security leads as a witness (besides every sign-off);
    # 0 turns the daily post off.
    ledger_witness_hours: float = 24.0

    # The tenant's Bot Connector, to start personal chats with reviewers who never wrote to the bot
    # (learned from the first activity when unset), e.g. https://smba.trafficmanager.net/emea/
    teams_service_url: str = ""
    # Install the app for reviewers who lack it (Graph, TeamsAppInstallation.ReadWriteForUser.All): the
    # app's id in the tenant's app catalogue; empty leaves this off.
    teams_app_catalog_id: str = ""
    # Slack (docs/slack-app.md): with no bot token, accessbot serves Teams only. Secrets, never logged.
    slack_bot_token: SecretStr = SecretStr("")  # xoxb-…
    slack_signing_secret: SecretStr = SecretStr("")  # checks requests to /slack/events (http mode)
    slack_app_token: SecretStr = SecretStr("")  # xapp-…, opens the Socket Mode connection (socket mode)
    slack_mode: str = "http"  # http: Slack POSTs to /slack/events; socket: accessbot connects out (no public URL)
    slack_api_url: str = "https://slack.com/api/"
    # Several workspaces installing the app through OAuth instead of one bot token (docs/slack-app.md): 'token'
    # (the default: ACCESSBOT_SLACK_BOT_TOKEN) or 'oauth' (/slack/install; needs the four settings below).
    slack_install: str = "token"
    slack_client_id: str = ""
    slack_client_secret: SecretStr = SecretStr("")
    # Fernet key(s) sealing the installed workspaces' tokens in the store; several comma-separated, newest first.
    slack_token_key: SecretStr = SecretStr("")
    slack_allowed_teams: str = ""  # team ids (T…) allowed to install, comma-separated: any other is refused
    # Microsoft Graph, read-only unless remediation is 'apply' (docs/permissions.md).
    graph_credential: str = ""  # client_secret | certificate | managed_identity | default | access_token
    graph_tenant_id: str = ""  # default: the policy's tenant
    graph_client_id: str = ""
    graph_client_secret: SecretStr = SecretStr("")
    graph_certificate_path: Path | None = None
    graph_access_token: SecretStr = SecretStr("")  # e.g. from `az account get-access-token`, for one-off scans
    graph_base_url: str = "https://graph.microsoft.com/v1.0"  # sovereign clouds: https://graph.microsoft.us/v1.0
    # How often the directory audit log is read for access changes to ask about at once (needs Graph
    # credentials and AuditLog.Read.All); 0 turns the watch off.
    change_poll_minutes: float = 5.0
    arm_base_url: str = ""  # Azure Resource Manager, e.g. https://management.azure.com; empty: Azure is not read
    # A CSP partner's deployment (docs/deployment.md#serving-a-partners-customers-in-chat): ACCESSBOT_POLICY is the
    # partner's policy, with customers/<tenant id>.toml beside it; the leader starts each period's collection run
    # and opens the customers' campaigns when it settled (bot/partner_runs.py). Off: one tenant's deployment.
    partner: bool = False
    # Take up this collection run's customers' campaigns at start (implies ACCESSBOT_PARTNER); empty: the latest
    # settled full run.
    partner_run: str = ""
    # Customers this instance collects at once, in the background of `serve` on a partner's deployment (needs
    # Graph credentials); 0: this instance collects none (the others do).
    collection_workers: int = 4
    # Pruning keeps the collection runs of this many review periods (and always each tenant's last complete snapshot).
    collection_keep_periods: int = 8

    def is_partner(self) -> bool:
        return self.partner or bool(self.partner_run)

    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    app_id: str = Field("", validation_alias=AliasChoices("ACCESSBOT_APP_ID", "MICROSOFT_APP_ID", "MicrosoftAppId"))
    app_password: SecretStr = Field(
        SecretStr(""),
        validation_alias=AliasChoices("ACCESSBOT_APP_PASSWORD", "MICROSOFT_APP_PASSWORD", "MicrosoftAppPassword"),
    )
    app_tenant_id: str = Field(
        "", validation_alias=AliasChoices("ACCESSBOT_APP_TENANT_ID", "MICROSOFT_APP_TENANT_ID", "MicrosoftAppTenantId")
    )
    openid_metadata_url: str = ""  # sovereign clouds only; Bot Framework's public cloud by default
    token_issuer: str = ""
    # Azure creates single-tenant bot registrations (multi-tenant ones are no longer created since 2025-07-31).
    app_type: str = Field(
        "SingleTenant", validation_alias=AliasChoices("ACCESSBOT_APP_TYPE", "MICROSOFT_APP_TYPE", "MicrosoftAppType")
    )
