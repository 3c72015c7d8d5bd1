"""Installing the Teams app through Graph for a reviewer who lacks it, then starting their chat."""

from __future__ import annotations

from datetime import timedelta

from bot.app_install import AppInstaller
from bot.remediation.graph_executor import GraphExecutor
from checks.graph.client import AccessTokenCredential, graph_client

from tests.integration.test_remediation import FakeGraphWrites, graph  # noqa: F401 (pytest fixture)
from tests.integration.test_teams_messages import PATTI, Bot, bot  # noqa: F401 (pytest fixture)

CATALOG_ID = "e1a9f7c2-2b4d-4e8f-9a1b-3c5d7e9f1a2b"


async def test_a_reviewer_without_the_app_gets_it_installed_through_graph_then_their_chat(bot: Bot, graph) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    fake_graph, base_url = graph
    patti = PATTI["aadObjectId"]
    bot.connector.not_installed.add(patti)
    # the far side: once Graph installs the app for Patti, Teams lets the bot start a chat with her
    fake_graph.effects.append(
        lambda method, path: bot.connector.not_installed.discard(path.split("/")[2]) if path.endswith("/teamwork/installedApps") else None
    )
    executor = GraphExecutor(graph_client(AccessTokenCredential("local-test-token"), base_url))
    bot.runtime.teams.installer = AppInstaller(executor, CATALOG_ID).install_for
    await bot.say("help")  # the bot learns the tenant's connector URL
    await bot.runtime.scheduler.run_once()
    (install,) = [c for c in fake_graph.calls if c[1].endswith("/teamwork/installedApps")]
    assert install[0] == "POST" and install[1] == f"/users/{patti}/teamwork/installedApps"
    assert install[2] == {"teamsApp@odata.bind": f"https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{CATALOG_ID}"}
    assert [r for r in bot.connector.received if r.conversation_id == f"a:created-{patti}"]


async def test_without_an_installer_the_message_waits_instead(bot: Bot) -> None:  # noqa: F811
    bot.connector.not_installed.add(PATTI["aadObjectId"])
    await bot.say("help")
    await bot.runtime.scheduler.run_once()
    assert not bot.connector.created or all(c["members"][0]["aadObjectId"] != PATTI["aadObjectId"] for c in bot.connector.created)
    waiting = await bot.runtime.store.due_messages(bot.runtime.service.clock.now() + timedelta(hours=1), 100)
    assert any(m.recipient == PATTI["aadObjectId"] for m in waiting)
