"""The logger every Slack Web API client of ours writes to, with Slack's tokens and the app's secrets blotted out.

slack_sdk redacts the ``Authorization`` header in its DEBUG log, but logs every request's arguments and every
response body whole: the answer of ``oauth.v2.access`` is the new workspace's bot token itself, and
``apps.uninstall`` carries the app's client secret. A deployment that turns DEBUG on to chase a problem must not
write either into its logs, so our clients log through this logger, whose filter replaces anything shaped like a
Slack token (``xoxb-``, ``xoxp-``, ``xapp-``…) and the secrets it was given before any handler sees the record.
"""

from __future__ import annotations

import logging
import re

TOKEN = re.compile(r"\b(xox[a-z]|xapp)-[A-Za-z0-9-]+")


class RedactSecrets(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = TOKEN.sub(r"\1-(redacted)", message)
        for secret in self.secrets:
            redacted = redacted.replace(secret, "(redacted)")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def web_api_logger(*secrets: str) -> logging.Logger:
    """``bot.channels.slack.web``, with the filter (added once) blotting out ``secrets`` too."""
    logger = logging.getLogger("bot.channels.slack.web")
    found = [f for f in logger.filters if isinstance(f, RedactSecrets)]
    redact = found[0] if found else RedactSecrets()
    if not found:
        logger.addFilter(redact)
    redact.secrets.update(secret for secret in secrets if secret)
    return logger
