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
    policy: Path | None = None
    snapshot: Path | None = None
    host: str = "127.0.0.1"
    port: int = 3978
    tick_seconds: float = 30.0
    public_url: str = ""  # how people reach this server (export links); default http://{host}:{port}
    export_secret: SecretStr = SecretStr("")  # signs export links; random per process when empty

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
