"""`accessbot doctor`: every check an operator would otherwise learn about from a failed Monday run."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Literal

from bot.config import Settings
from bot.engine.model import SubjectKind
from bot.engine.routing import UnresolvedPeople, routing_from_policy
from bot.ledger import LedgerUnreadable
from bot.ledger_check import check_chain, check_ledger, configured_public_key, set_aside_warning
from bot.ledger_signing import (
    CheckpointUnreadable,
    LedgerKeyError,
    configured_signer,
    fingerprint,
    load_public_key_file,
)
from bot.operator_errors import OperatorError
from bot.policy import Policy, PolicyError, load_policy, role_references
from bot.store.base import StoreUnavailable
from checks.entra_roles import RoleNames
from checks.graph.permissions import PARTNER_READ, READ, REMEDIATION, missing_permissions
from checks.snapshot import SnapshotError, TenantSnapshot, load_snapshot
from checks.subjects import subjects_from_snapshot

Level = Literal["ok", "warn", "fail"]
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class Check:
    level: Level
    name: str
    detail: str


def diagnose(
    settings: Settings, policy_path: Path | None, snapshot_path: Path | None, granted: frozenset[str] | None = None
) -> Iterator[Check]:
    """``granted``: the application permissions the Graph token carries, when one could be obtained."""
    yield from _data_dir(settings.data_dir)
    yield from _ledger(settings)
    yield from _credentials(settings)
    yield from _public_links(settings)
    yield from _ledger_key(settings)
    policy_file = policy_path or settings.policy
    policy = yield from _policy(policy_file)
    snapshot = yield from _snapshot(snapshot_path or settings.snapshot)
    if policy_file is not None:  # also when other parts of the policy are wrong: every error at once
        yield from _role_names(policy_file, snapshot)
    if policy is not None and snapshot is not None:
        yield from _people(policy, snapshot)
        yield from _ownership(policy, snapshot)
    yield from _graph(settings, policy, granted)


def _graph(settings: Settings, policy: Policy | None, granted: frozenset[str] | None) -> Iterator[Check]:
    if not settings.graph_credential:
        yield Check("warn", "Microsoft Graph", "no ACCESSBOT_GRAPH_CREDENTIAL: only saved snapshots can be reviewed "
                    "(docs/permissions.md)")
        return
    if granted is None:
        yield Check("warn", "Graph permissions", "could not obtain a token to read the granted permissions")
        return
    if not granted:
        yield Check("warn", "Graph permissions", "the token carries no application permissions (a user's delegated "
                    "token?): use the app's own credentials to check its grants")
        return
    missing = missing_permissions(granted, READ)
    if missing:
        yield Check("fail", "Graph permissions", "missing read permissions: " + ", ".join(missing)
                    + " (grant them with admin consent: docs/permissions.md)")
    else:
        yield Check("ok", "Graph permissions", "every read permission is granted")
    partner = missing_permissions(granted, PARTNER_READ)
    if partner:
        yield Check("warn", "Graph permissions", "a CSP partner's 'scan --all-customers' also needs: " + ", ".join(partner))
    if policy is not None and policy.remediation.value == "apply":
        write = missing_permissions(granted, REMEDIATION)
        if write:
            yield Check("fail", "Graph permissions", "remediation is 'apply' but these are missing: " + ", ".join(write))
    elif policy is not None:
        extra = sorted(p for p in granted if "ReadWrite" in p)
        if extra:
            yield Check("warn", "Graph permissions", "write permissions granted while remediation is not 'apply' "
                        "(least privilege: remove them): " + ", ".join(extra))


def _data_dir(path: Path) -> Iterator[Check]:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".doctor-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as bad:
        yield Check("fail", "data directory", f"{path} is not writable: {bad}")
        return
    yield Check("ok", "data directory", f"{path.resolve()} is writable")


def _ledger(settings: Settings) -> Iterator[Check]:
    """The same verdict as `accessbot ledger verify`: a tampered ledger is a failure here too."""
    data_dir = settings.data_dir
    database_url = settings.database_url.get_secret_value()
    if not database_url and not data_dir.is_dir():
        return  # the data directory check said why
    try:
        trusted = configured_public_key(settings)
    except LedgerKeyError:
        return  # the ledger key check says why
    if trusted is None and database_url:
        yield Check("warn", "ledger", "no ledger key configured, so its signatures cannot be checked: set "
                    "ACCESSBOT_LEDGER_KEY_FILE or ACCESSBOT_LEDGER_PUBLIC_KEY_FILE")
        return
    if trusted is None:
        yield from _unsigned_chain(data_dir)
        return
    try:
        result = asyncio.run(check_ledger(database_url, data_dir, trusted))
    except (StoreUnavailable, OperatorError) as bad:  # the database cannot be reached, or its schema is behind
        yield Check("fail", "ledger", f"the database cannot be read: {bad}")
        return
    except LedgerUnreadable as bad:
        yield Check("fail", "ledger", f"BROKEN at line {bad.line_number}: {bad} (see `accessbot ledger verify`)")
        return
    except (CheckpointUnreadable, OSError) as bad:
        yield Check("fail", "ledger", f"cannot be read: {bad}")
        return
    if result.count == 0:
        yield Check("ok", "ledger", "no records yet")
    elif not result.ok:
        where = f" at record {result.first_bad_seq}" if result.first_bad_seq else ""
        yield Check("fail", "ledger", f"BROKEN{where}: {'; '.join(result.problems)} "
                    "(run `accessbot ledger verify`; stop the bot and keep the data directory as evidence)")
    else:
        signed = result.checkpoint.seq if result.checkpoint else 0
        yield Check("ok", "ledger", f"{result.count} records verify, signed up to record {signed}, head {result.head.hash}")
    if result.set_aside:
        yield Check("warn", "ledger", set_aside_warning(result.set_aside))


def _unsigned_chain(data_dir: Path) -> Iterator[Check]:
    """Without a key the signatures cannot be checked, but the hash chain can: an edited ledger fails."""
    try:
        chain = asyncio.run(check_chain(data_dir))
    except LedgerUnreadable as bad:
        yield Check("fail", "ledger", f"BROKEN at line {bad.line_number}: {bad} (see `accessbot ledger verify`)")
        return
    except OSError as bad:
        yield Check("fail", "ledger", f"cannot be read: {bad}")
        return
    if not chain.ok:
        where = f" at record {chain.first_bad_seq}" if chain.first_bad_seq else ""
        yield Check("fail", "ledger", f"BROKEN{where}: {chain.problem} (the hash chain; run `accessbot ledger "
                    "verify --public-key FILE`; stop the bot and keep the data directory as evidence)")
        return
    yield Check("warn", "ledger", f"{chain.count} records chain, but no ledger key is configured, so their "
                "signatures cannot be checked: set ACCESSBOT_LEDGER_KEY_FILE or ACCESSBOT_LEDGER_PUBLIC_KEY_FILE")


def _public_links(settings: Settings) -> Iterator[Check]:
    """Export links (evidence packs, attestations) are only as good as the address and key behind them."""
    if not settings.public_url:
        yield Check("warn", "export links", f"ACCESSBOT_PUBLIC_URL is not set: export links will point at "
                    f"{settings.base_url()}, which nobody else can open; set it to the https address people reach "
                    "the bot at")
    if not settings.export_secret.get_secret_value():
        yield Check("warn", "export links", "ACCESSBOT_EXPORT_SECRET is not set: links are signed with a key made "
                    "at start-up, so every link dies at each restart; set a long random secret")


def _role_names(policy_path: Path, snapshot: TenantSnapshot | None) -> Iterator[Check]:
    """Every role the policy names must exist: a typo matches no assignment and its owner reviews nothing."""
    known = RoleNames(snapshot.role_definitions if snapshot is not None else ())
    try:
        references = role_references(policy_path)
    except (OSError, ValueError):  # unreadable, not UTF-8 or not TOML: the policy check said so already
        return
    wrong = 0
    for reference in references:
        if known.knows(reference.value):
            continue
        wrong += 1
        if _GUID.fullmatch(reference.value):
            detail = "not the template id of an Entra built-in role" + (
                " nor of a role in the snapshot" if snapshot is not None else
                " (a custom role? pass --snapshot to check the tenant's own roles)")
            yield Check("warn", "role names", reference.problem(detail))
            continue
        close = known.closest(reference.value)
        detail = "not an Entra built-in role" + (" nor a role of this tenant" if snapshot is not None else "")
        detail += f"; did you mean '{close}'?" if close else (
            "" if snapshot is not None else " (a custom role? pass --snapshot to check the tenant's own roles)")
        yield Check("fail", "role names", reference.problem(detail))
    if not wrong:
        yield Check("ok", "role names", "every role the policy names exists in Entra ID")


def _ledger_key(settings: Settings) -> Iterator[Check]:
    """The ledger's signing key, shown by its public key's fingerprint: what auditors compare theirs with."""
    try:
        signer = configured_signer(settings.ledger_key_file, settings.ledger_key.get_secret_value(), settings.data_dir)
        public = load_public_key_file(settings.ledger_public_key_file, settings.data_dir) if settings.ledger_public_key_file else None
    except LedgerKeyError as bad:
        yield Check("fail", "ledger key", str(bad))
        return
    if signer is None and public is None:
        yield Check("warn", "ledger key", "no ACCESSBOT_LEDGER_KEY_FILE: `serve` refuses to write an unsigned ledger; "
                    "make a key with `accessbot ledger keygen --out FILE` outside the data directory (docs/ledger.md)")
        return
    if signer is not None:
        yield Check("ok", "ledger key", f"signing with public key fingerprint {signer.fingerprint}")
    if public is not None:
        level: Level = "fail" if signer is not None and fingerprint(public) != signer.fingerprint else "ok"
        yield Check(level, "ledger public key", f"{settings.ledger_public_key_file}: fingerprint {fingerprint(public)}"
                    + (" — not the signing key's" if level == "fail" else ""))


def _credentials(settings: Settings) -> Iterator[Check]:
    if not settings.app_id:
        yield Check("warn", "bot registration", "MICROSOFT_APP_ID is not set: only `serve --no-auth` (local testing) "
                    "or `demo` will run; see docs/azure-bot-registration.md")
    elif not settings.app_password.get_secret_value():
        yield Check("fail", "bot registration", "MICROSOFT_APP_ID is set but MICROSOFT_APP_PASSWORD is not")
    elif settings.app_type == "SingleTenant" and not settings.app_tenant_id:
        yield Check("fail", "bot registration", "a SingleTenant bot needs MICROSOFT_APP_TENANT_ID (the tenant of its app registration)")
    else:
        yield Check("ok", "bot registration", f"app id {settings.app_id} with a secret (not shown)")


def _policy(path: Path | None) -> Iterator[Check]:  # type: ignore[return]
    if path is None:
        yield Check("fail", "policy", "no policy: pass --policy or set ACCESSBOT_POLICY (see policy/example.toml)")
        return None
    try:
        policy = load_policy(path)
    except PolicyError as bad:
        for problem in bad.problems:  # every one, each with its file, line and key
            yield Check("fail", "policy", str(problem))
        return None
    except OSError as bad:
        yield Check("fail", "policy", f"{path}: {bad.strerror or bad}")
        return None
    yield Check("ok", "policy", f"{path}: tenant {policy.tenant_name}, {len(policy.role_owners)} role owner entries")
    return policy


def _snapshot(path: Path | None) -> Iterator[Check]:  # type: ignore[return]
    if path is None:
        yield Check("fail", "tenant snapshot", "no snapshot: pass --snapshot or set ACCESSBOT_SNAPSHOT")
        return None
    try:
        snapshot = load_snapshot(path)
    except (SnapshotError, OSError) as bad:
        yield Check("fail", "tenant snapshot", str(bad))
        return None
    if snapshot.complete:
        yield Check("ok", "tenant snapshot", f"{path}: {snapshot.tenant_name}, collected {snapshot.collected_at:%Y-%m-%d %H:%M}")
    else:
        yield Check("warn", "tenant snapshot", f"{path} is INCOMPLETE: missing {', '.join(snapshot.missing)}")
    return snapshot


def _people(policy: Policy, snapshot: TenantSnapshot) -> Iterator[Check]:
    try:
        routing_from_policy(policy, snapshot.resolve_principal)
    except UnresolvedPeople as bad:
        yield Check("fail", "people", str(bad))
        return
    if policy.tenant_id.lower() != snapshot.tenant_id.lower():
        yield Check("fail", "tenant", f"policy is for {policy.tenant_id} but the snapshot is of {snapshot.tenant_id}")
        return
    yield Check("ok", "people", "every reviewer, fallback, security lead and delegate is in the directory")


def _ownership(policy: Policy, snapshot: TenantSnapshot) -> Iterator[Check]:
    subjects = subjects_from_snapshot(snapshot, datetime.now(timezone.utc), [b.principal for b in policy.break_glass])
    unowned = sorted(
        {
            s.role_name or s.role_id or "?"
            for s in subjects
            if s.kind is SubjectKind.ROLE_ASSIGNMENT
            and not any(k and k.lower() in policy.role_owners for k in (s.role_id, s.role_name))
        }
    )
    if unowned:
        yield Check("warn", "role owners", "no owner for " + ", ".join(unowned) + ": these go to the fallback reviewers")
    else:
        yield Check("ok", "role owners", "every held privileged role has an owner")
    if policy.remediation.value == "off":
        yield Check("ok", "remediation", "off: revoked access is reported to the security leads, never removed")
    else:
        yield Check("warn", "remediation", f"{policy.remediation.value}: revokes are acted on through Microsoft Graph")
