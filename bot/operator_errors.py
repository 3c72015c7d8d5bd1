"""What the `accessbot` command line says when something goes wrong: one line and a documented exit code.

An operator running `accessbot serve` from a unit file or a cron job reads one line in a log, and a script
branches on the exit code; a 100-line traceback helps neither. So every error that has a cause the
operator can fix is an ``OperatorError`` (raised where it is detected, e.g. by whoever reads a key file:
this module imports nothing of the project, so any module may raise one), or is translated into one
from the exception that names it (``bot/cli_errors.py``). The traceback is shown only with
``accessbot --debug``.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit codes of every `accessbot` command (README and `accessbot --help` list them)."""

    OK = 0
    FAILED = 1  # the command ran and found a failure: ledger broken, doctor failures, nothing collected
    USAGE = 2  # what was asked cannot be done as given: an option, the policy, a snapshot, key or output file
    INCOMPLETE = 3  # a collection finished, but some sources or tenants could not be read
    UNAVAILABLE = 4  # the data directory cannot be used (in use by another process, read-only, missing, full), or the port


EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 failed (ledger broken, doctor found failures, nothing could be collected, "
    "unexpected error); 2 usage or configuration (bad option, policy, snapshot or key file, a path that "
    "cannot be read or written, missing settings); 3 incomplete collection (some sources or tenants could not be read); 4 data directory "
    "unavailable (in use by another accessbot process, read-only, missing or full) or the port taken. "
    "Errors are one line on stderr; --debug shows the traceback."
)


class OperatorError(Exception):
    """An error the operator can fix: ``message`` says what happened and what to do, on one line."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def one_line(text: str) -> str:
    """Collapse a message to one line, so a log shows the whole error in one entry; control characters
    (from names a tenant chose, say) are shown escaped, never sent to the operator's terminal."""
    shown = "".join(char if char.isprintable() or char.isspace() else ascii(char)[1:-1] for char in text)
    return " ".join(shown.split())
