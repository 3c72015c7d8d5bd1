"""`accessbot campaign report`: the evidence report from the command line, for one tenant or — a CSP partner —
every customer tenant's campaign of the week, a section (from a new page) per tenant."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from tests.integration.test_cli import DEMO, run

CONTOSO = "2f4a9b6c-3d1e-4f5a-8b7c-9d0e1f2a3b4c"
FABRIKAM = "7b1c2d3e-0000-4000-8000-00000000f00d"  # a second customer of the same partner


def second_customer(tmp_path: Path) -> list[str]:
    """The demo tenant again under another tenant id and name: a second customer tenant of one partner."""
    snapshot = json.loads(DEMO_SNAPSHOT.read_text(encoding="utf-8"))
    snapshot.update(tenantId=FABRIKAM, tenantName="Fabrikam Retail")
    (tmp_path / "fabrikam.json").write_text(json.dumps(snapshot), encoding="utf-8")
    policy = DEMO_POLICY.read_text(encoding="utf-8").replace(CONTOSO, FABRIKAM)
    policy = re.sub(r'(?m)^name = "Contoso"$', 'name = "Fabrikam Retail"', policy)
    (tmp_path / "fabrikam.toml").write_text(policy, encoding="utf-8")
    return ["--policy", str(tmp_path / "fabrikam.toml"), "--snapshot", str(tmp_path / "fabrikam.json")]


def pages_text(pdf: Path) -> list[str]:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed: `make poppler`")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, timeout=60, check=True).stdout
    return text.split("\f")  # pdftotext ends each page with a form feed


def test_csp_partner_report_has_a_section_per_customer_tenant_each_from_a_new_page(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    assert run("campaign", "open", *DEMO, *data).exit_code == 0
    assert run("campaign", "open", *second_customer(tmp_path), *data).exit_code == 0
    out = tmp_path / "partner.pdf"
    made = run("campaign", "report", "--format", "pdf", "--out", str(out), "--snapshot", str(DEMO_SNAPSHOT), *data)
    assert made.exit_code == 0, made.output
    pages = pages_text(out)
    cover = " ".join(pages[0].split())
    assert "2 customer tenants" in cover and f"Contoso ({CONTOSO})" in cover and f"Fabrikam Retail ({FABRIKAM})" in cover
    assert "Items reviewed 62" in cover  # two tenants of the demo's 31 items
    starts = {name: next(n for n, page in enumerate(pages) if page.lstrip().startswith(f"{name} ("))
              for name in ("Contoso", "Fabrikam Retail")}
    assert 0 < starts["Contoso"] < starts["Fabrikam Retail"]  # each tenant's section opens its own page
    fabrikam = " ".join(" ".join(pages[starts["Fabrikam Retail"]:]).split())
    assert f"Campaign {FABRIKAM}:" in fabrikam and "Items 31" in fabrikam


def test_one_campaign_as_html_and_clear_errors_for_a_wrong_format_or_campaign(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    opened = run("campaign", "open", *DEMO, *data)
    campaign_id = opened.output.split(": ", 1)[0].strip()
    out = tmp_path / "report.html"
    made = run("campaign", "report", "--campaign", campaign_id, "--format", "html", "--out", str(out), *data)
    assert made.exit_code == 0 and "wrote the HTML evidence report" in made.output
    html = out.read_text(encoding="utf-8")
    assert f"Campaign</td><td>{campaign_id}" in html and "<img alt=\"Completion over time\"" in html
    wrong_format = run("campaign", "report", "--format", "docx", *data)
    assert wrong_format.exit_code == 2 and "use pdf or html" in wrong_format.output
    wrong_campaign = run("campaign", "report", "--campaign", "nope:2026-01-01T09:00", *data)
    assert wrong_campaign.exit_code == 1 and "no campaign 'nope:2026-01-01T09:00'" in wrong_campaign.output
    empty = run("campaign", "report", "--data-dir", str(tmp_path))
    assert empty.exit_code == 1 and "no campaign has been opened yet" in empty.output
