"""Graph credentials and client configuration."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from azure.identity.aio import (
    CertificateCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from checks.graph import (
    CredentialKind,
    GraphCredentials,
    RetrySettings,
    close_client,
    graph_client,
)
from checks.graph.client import AccessTokenCredential

TENANT = "2f4a9b6c-3d1e-4f5a-8b7c-9d0e1f2a3b4c"
APP = "5a1f2c3d-0000-4000-8000-00000000a11b"


def test_the_client_secret_never_appears_in_repr_or_str() -> None:
    credentials = GraphCredentials(CredentialKind.CLIENT_SECRET, TENANT, APP, client_secret="s3cr3t~value")
    assert "s3cr3t" not in repr(credentials) and "s3cr3t" not in str(credentials)


@pytest.mark.parametrize(
    ("kind", "extra", "expected"),
    [
        ("client_secret", {"client_id": APP, "client_secret": "x"}, ClientSecretCredential),
        ("certificate", {"client_id": APP, "certificate_path": Path("app.pem")}, CertificateCredential),
        ("managed_identity", {}, ManagedIdentityCredential),
        ("default", {}, DefaultAzureCredential),
    ],
)
async def test_each_configured_kind_signs_in_with_its_azure_identity_credential(
    kind: str, extra: dict[str, object], expected: type, tmp_path: Path
) -> None:
    if "certificate_path" in extra:
        extra = {**extra, "certificate_path": _self_signed_certificate(tmp_path / "app.pem")}
    credential = GraphCredentials(kind, TENANT, **extra).token_credential()  # type: ignore[arg-type]
    try:
        assert isinstance(credential, expected)
    finally:
        await credential.close()


@pytest.mark.parametrize(
    ("kind", "extra", "complaint"),
    [
        ("client_secret", {"client_id": APP}, "secret"),
        ("client_secret", {"client_secret": "x"}, "client id"),
        ("certificate", {"client_id": APP}, "certificate"),
    ],
)
def test_incomplete_credentials_are_refused_with_what_is_missing(
    kind: str, extra: dict[str, str], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        GraphCredentials(kind, TENANT, **extra)  # type: ignore[arg-type]


def test_a_partner_reaches_each_customer_with_the_same_app() -> None:
    partner = GraphCredentials(CredentialKind.CLIENT_SECRET, TENANT, APP, client_secret="x")
    customer = partner.for_tenant("0fab7dff-6991-444e-8240-81c09ed225d2")
    assert (customer.tenant_id, customer.client_id, customer.client_secret) == (
        "0fab7dff-6991-444e-8240-81c09ed225d2", APP, "x")


def test_backoff_grows_and_is_capped() -> None:
    retry = RetrySettings(backoff_factor=1.0, backoff_max=5.0)
    assert [retry.backoff(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]


async def test_the_client_talks_to_the_base_url_it_was_given() -> None:
    client = graph_client(AccessTokenCredential("fake-graph-token"), "http://127.0.0.1:9/v1.0")
    try:
        assert client.request_adapter.base_url == "http://127.0.0.1:9/v1.0"
        assert graph_client(AccessTokenCredential("fake-graph-token")).request_adapter.base_url == "https://graph.microsoft.com/v1.0"
    finally:
        await close_client(client)


def _self_signed_certificate(path: Path) -> Path:
    """A throwaway certificate and key (CN=accessbot-test) in one PEM, as an app registration would use."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "accessbot-test")])
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(1)
        .not_valid_before(datetime(2026, 1, 1)).not_valid_after(datetime(2036, 1, 1)).sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(key_pem + certificate.public_bytes(serialization.Encoding.PEM))
    return path
