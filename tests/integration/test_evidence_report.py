"""The evidence report an auditor files, fetched the way a security lead gets it: 'export' in chat, then the
signed link. The PDF's text (read by poppler's pdftotext) must hold the figures the ledger says; its first
page goes to test-artifacts/report/ as a picture for a person to look at; the HTML must parse cleanly with
every image present. A CSP partner's report has a section per customer tenant."""

from __future__ import annotations

import asyncio
import base64
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import AsyncIterator
from xml.etree import ElementTree

import aiohttp
import pytest
from aiohttp import web
from typer.testing import CliRunner

import bot.report as evidence_report
from bot.app import Runtime, build_runtime, create_app, load_inputs
from bot.channels.teams import BotCredentials
from bot.cli import app
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT, REPO_ROOT
from bot.engine.decisions import DecisionRequest
from bot.engine.model import Action
from bot.ledger import LedgerRecord
from bot.ledger_signing import LedgerSigner, fingerprint
from bot.policy import RemediationMode
from bot.exports import ExportRequest
from dialogs.security_lead import export
from dialogs.status import campaign_status
from dialogs.views import Actor, StatusView

ALEX = Actor("8c3e2f7a-4b1d-4e6f-9a2b-1c3d5e7f9a01", "Alex Wilber")  # a security lead in the demo policy
PATTI = Actor("f66eb8b7-79c8-407b-8b95-85a879f2381e", "Patti Fernandez")  # a reviewer, not a lead
MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
ARTIFACTS = REPO_ROOT / "test-artifacts" / "report"


@dataclass
class Served:
    runtime: Runtime
    base: str  # http://127.0.0.1:PORT
    signer: LedgerSigner

    def links(self, actor: Actor = ALEX) -> dict[str, str]:
        """The links 'export' gives, by what they say they are."""
        text = export(self.runtime.service, actor).text  # type: ignore[union-attr]
        return {label: url for label, url in re.findall(r"\[([^\]]+)\]\((http://[^)]+)\)", text)}

    async def get(self, url: str) -> tuple[int, dict[str, str], bytes]:
        async with aiohttp.ClientSession() as session, session.get(url, timeout=aiohttp.ClientTimeout(total=120)) as r:
            return r.status, dict(r.headers), await r.read()


async def review_a_week(runtime: Runtime, clock: ManualClock) -> None:
    """Alex keeps some, revokes some (a dry-run remediation follows each revoke), passes one on; the deadline
    passes; Alex signs off, which signs a checkpoint of the ledger."""
    service = runtime.service
    (state,) = service.campaigns()
    mine = sorted((i for i in state.open_items() if ALEX.object_id in i.reviewers and not i.subject.break_glass),
                  key=lambda i: i.subject.title)
    for n, item in enumerate(mine[:7]):
        clock.advance(timedelta(hours=5))
        action = (Action.REVOKE, Action.KEEP, Action.KEEP, Action.DONT_KNOW)[n % 4]
        justification = f"Not needed since October ({n})" if action is not Action.KEEP else ""
        await service.decide(DecisionRequest(item.id, action, ALEX.object_id or "", ALEX.name, justification=justification))
    await service.run_remediations()
    clock.advance(timedelta(days=5))
    await service.tick()
    outcome = await service.sign_off(ALEX.object_id or "", ALEX.name, confirmed=True)
    assert outcome.ok


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    clock = ManualClock(MONDAY)
    signer = LedgerSigner.generate()
    runtime = await build_runtime(data_dir=tmp_path / "data", policy=replace(policy, remediation=RemediationMode.DRY_RUN),
                                  snapshot=snapshot, clock=clock, credentials=BotCredentials(), ledger_signer=signer)
    await runtime.service.open_current_campaign()
    await review_a_week(runtime, clock)
    runner = web.AppRunner(create_app(runtime, background=False))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    runtime.service.links.base_url = f"http://127.0.0.1:{port}"
    yield Served(runtime, f"http://127.0.0.1:{port}", signer)
    await runner.cleanup()


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed: `make poppler`")
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    # Reading order, not -layout: a wrapped table cell then stays one run of words.
    done = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def ledger_figures(records: list[LedgerRecord]) -> Counter[str]:
    """What the ledger says, counted independently of the report's code: final answers per item."""
    final: dict[str, str] = {}
    for record in records:
        if record.type == "decision" and record.data["action"] in ("keep", "revoke"):
            final[record.data["item_id"]] = record.data["action"]
    return Counter(final.values())


async def test_pdf_report_holds_the_figures_the_ledger_says_and_its_first_page_is_saved(served: Served, tmp_path: Path) -> None:
    status, headers, pdf = await served.get(served.links()["evidence report (PDF)"])
    assert status == 200 and headers["Content-Type"] == "application/pdf" and pdf[:5] == b"%PDF-"
    text = pdf_text(pdf, tmp_path)
    flat = " ".join(text.split())
    service = served.runtime.service
    (state,) = service.campaigns()
    records = await service.campaign_ledger(state.campaign.id)
    figures = ledger_figures(records)
    decisions = [r for r in records if r.type == "decision"]
    assert figures["keep"] >= 2 and figures["revoke"] >= 1  # the week above did happen
    assert f"Answered {figures['keep'] + figures['revoke']} ({figures['keep']} kept, {figures['revoke']} revoked)" in flat
    assert f"Items {len(state.items)}" in flat and "Contoso" in flat and "Period 2026-11-23T09:00" in flat
    assert f"Attestations ({len(decisions)})" in flat
    for record in decisions:  # every attestation in the table, by its ledger number and hash
        assert re.search(rf"\b{record.seq} {record.at[:10]} {record.at[11:19]}", flat), record.seq
        assert record.hash[:16] in flat, record.seq
    verdicts = Counter(r.data["action"] for r in decisions)
    assert f"Kept {verdicts['keep']}" in flat and f"Revoked {verdicts['revoke']}" in flat
    assert f"Passed on (don't know) {verdicts['dont_know']}" in flat
    # Findings carry the guidance sentence they carry out; exceptions their rationale; remediation its calls.
    assert "Ensure multifactor authentication (MFA) is enabled and registered on every account." in flat
    assert "Break-glass account excluded from MFA by design" in flat and "2027-03-31" in flat
    assert "dry run" in flat and "awaiting approval" in flat and "DELETE /roleManagement" in flat
    # The signed checkpoint, the public key and the command that verifies them.
    checkpoint = await served.runtime.store.latest_checkpoint()
    assert checkpoint is not None and checkpoint.hash in flat and checkpoint.sig[:40] in flat
    assert fingerprint(served.signer.public_key) in flat and "BEGIN PUBLIC KEY" in flat
    assert "accessbot ledger verify --public-key ledger-public-key.pem --witness ledger-checkpoint.json" in flat

    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed: `make poppler`")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "report.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "2", str(ARTIFACTS / "report.pdf"),
                    str(ARTIFACTS / "page")], check=True, timeout=60)
    first = next(ARTIFACTS.glob("page-*1.png"))
    assert first.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class StrictHTML(HTMLParser):
    """Every element closed in order (void elements aside), every image's source an inline SVG that parses."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.problems: list[str] = []
        self.images: list[bytes] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            src = values.get("src") or ""
            if not src.startswith("data:image/svg+xml;base64,"):
                self.problems.append(f"image not inline: {src[:60]!r}")
            else:
                self.images.append(base64.b64decode(src.split(",", 1)[1], validate=True))
            if not values.get("alt"):
                self.problems.append("image without alt text")
        for name in ("src", "href"):
            if (values.get(name) or "").startswith(("http:", "https:", "file:", "/")):
                self.problems.append(f"external reference {values[name]!r}")
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1] if self.open else 'nothing'}")
            return
        self.open.pop()


async def test_html_report_parses_cleanly_and_no_image_is_missing(served: Served) -> None:
    status, headers, body = await served.get(served.links()["report (HTML)"])
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    html = body.decode("utf-8")
    assert html.startswith("<!DOCTYPE html>")
    parser = StrictHTML()
    parser.feed(html)
    parser.close()
    assert parser.problems == [] and parser.open == []
    assert len(parser.images) >= 4  # progress, completion, by role, by severity
    for svg in parser.images:
        assert ElementTree.fromstring(svg).tag == "{http://www.w3.org/2000/svg}svg"
    assert "Completion over time" in html and "Decisions by role" in html


async def test_the_checkpoint_and_key_in_the_report_verify_the_ledger_with_the_command_it_gives(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an auditor does with the last page: save the two blocks, run the command shown."""
    html = (await served.get(served.links()["report (HTML)"]))[2].decode("utf-8")
    blocks = [unescape(block) for block in re.findall(r"<pre>(.*?)</pre>", html, re.S)]
    command, checkpoint, key = blocks[-3], blocks[-2], blocks[-1]
    (tmp_path / "ledger-checkpoint.json").write_text(checkpoint, encoding="utf-8")
    (tmp_path / "ledger-public-key.pem").write_text(key, encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # the command names the files as saved beside the auditor
    args = command.split()[1:]  # "accessbot ledger verify --public-key … --witness …"
    assert args[:2] == ["ledger", "verify"]
    data_dir = served.runtime.store.data_dir  # type: ignore[attr-defined]
    # The CLI runs its own event loop: in a thread, as from an auditor's terminal.
    result = await asyncio.to_thread(CliRunner().invoke, app, [*args, "--data-dir", str(data_dir)],
                                     env={"ACCESSBOT_LEDGER_KEY": ""})
    assert result.exit_code == 0, result.output
    assert "ledger OK" in result.output and "witness" in result.output


async def test_report_links_are_for_security_leads_and_refused_when_altered(served: Served) -> None:
    link = served.links()["evidence report (PDF)"]
    forged = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    assert (await served.get(forged))[0] == 403
    service = served.runtime.service
    campaign_id = service.campaigns()[0].campaign.id
    made_for_patti = service.links.make(ExportRequest(campaign_id, "pdf", PATTI.object_id or ""), service.clock.now())
    status, _, body = await served.get(made_for_patti)
    assert status == 403 and b"no longer a security lead" in body


async def test_status_chart_image_is_a_png_behind_a_signed_expiring_link(served: Served) -> None:
    view = campaign_status(served.runtime.service)
    assert isinstance(view, StatusView)
    assert view.chart_image.startswith(served.base + "/exports/")
    status, headers, png = await served.get(view.chart_image)
    assert status == 200 and headers["Content-Type"] == "image/png" and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert headers["Content-Disposition"].startswith("inline")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "status-chart.png").write_bytes(png)
    served.runtime.service.clock.advance(timedelta(hours=2))  # type: ignore[attr-defined]
    status, _, body = await served.get(view.chart_image)
    assert status == 403 and b"expired" in body


async def test_a_pdf_too_large_for_the_server_is_refused_with_the_command_that_makes_it_and_html_still_works(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Laying out tens of thousands of rows would take the server minutes and gigabytes while reviewers click."""
    monkeypatch.setattr(evidence_report, "SERVER_PDF_ATTESTATIONS", 1)  # this week has a handful of attestations
    status, _, body = await served.get(served.links()["evidence report (PDF)"])
    campaign_id = served.runtime.service.campaigns()[0].campaign.id
    assert status == 413
    assert f"accessbot campaign report --campaign {campaign_id} --format pdf" in body.decode()
    assert (await served.get(served.links()["report (HTML)"]))[0] == 200
