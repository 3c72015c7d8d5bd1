"""`accessbot scan` over the demo tenant names each check of issue 12 with the sentence of Microsoft's
guidance it carries out, so an auditor can trace every finding to its source."""

from __future__ import annotations

import json
from pathlib import Path

from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from tests.integration.test_cli import run

GUIDANCE = Path(__file__).resolve().parents[2] / "docs" / "guidance"
NEW_CHECKS = (
    "admin_mfa_method_new", "admin_mfa_phone_shared", "admin_mfa_phone_only", "partner_unused", "entra_logs_not_exported",
    "azure_aobo_present", "azure_owner_guest_or_foreign", "azure_owner_standing",
)


def test_scan_lists_the_new_checks_of_the_demo_with_their_guidance_quotes() -> None:
    result = run("scan", "--snapshot", str(DEMO_SNAPSHOT), "--policy", str(DEMO_POLICY), "--format", "json")
    assert result.exit_code == 0, result.output
    findings = json.loads(result.stdout)
    for check_id in NEW_CHECKS:
        found = [f for f in findings if f["check"] == check_id]
        assert found, check_id
        source, _, quote = found[0]["seed"].partition(": ")
        assert quote and quote in (GUIDANCE / f"{source}.txt").read_text(encoding="utf-8"), check_id
