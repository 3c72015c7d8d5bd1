"""Installing the Teams app for a reviewer who does not have it, through Microsoft Graph (optional).

Teams only lets a bot start a chat with someone who has the app. When the operator names the app's id
in the tenant's app catalogue (ACCESSBOT_TEAMS_APP_CATALOG_ID) and grants the app
TeamsAppInstallation.ReadWriteForUser.All, accessbot installs it for reviewers who lack it instead of
leaving their review requests waiting. Off by default: it writes to Graph.
"""

from __future__ import annotations

import logging

from bot.remediation.graph_executor import GraphExecutor
from bot.remediation.plan import GraphCall

log = logging.getLogger(__name__)


class AppInstaller:
    def __init__(self, executor: GraphExecutor, catalog_app_id: str) -> None:
        self.executor = executor
        self.catalog_app_id = catalog_app_id

    async def install_for(self, user_id: str) -> bool:
        call = GraphCall(
            "POST",
            f"/users/{user_id}/teamwork/installedApps",
            "install accessbot for the reviewer",
            body={"teamsApp@odata.bind": f"https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{self.catalog_app_id}"},
        )
        result = await self.executor.execute(call)
        status = int(result.get("status") or 0)
        if 200 <= status < 300 or status == 409:  # 409: it was installed already
            return True
        log.warning("could not install the Teams app for %s: %s %s", user_id, status, result.get("error"))
        return False
