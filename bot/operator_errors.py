"""What the `accessbot` command line says when something goes wrong: one line and a documented exit code.

An operator running `accessbot serve` from a unit file or a cron job reads one line in a log, and a script
branches on the exit code; a 100-line traceback helps neither. So every error that has a cause the
operator can fix is an ``OperatorError`` (raised where it is detected, e.g. by whoever reads a key file)
or is translated into one here from the exception that names it (a locked store, a policy error, a
file that cannot be written). The traceback is shown only with ``accessbot --debug``.
"""

from __future__ import annotations

import errno
from contextvars import ContextVar
from enum import IntEnum
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from bot.collection import GraphNotConfigured
from bot.policy import PolicyError
from bot.store.base import StoreLocked, StoreUnavailable
from checks.snapshot import SnapshotError


class ExitCode(IntEnum):
    """The exit codes of every `accessbot` command (README and `accessbot --help` list them)."""

    OK = 0
    FAILED = 1  # the command ran and found a failure: ledger broken, doctor failures, nothing collected
    USAGE = 2  # what was asked cannot be done as given: an option, the policy, a snapshot or key file
    INCOMPLETE = 3  # a collection finished, but some sources or tenants could not be read
    UNAVAILABLE = 4  # the data directory cannot be used (in use by another process, read-only, missing, full), or the port


EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 failed (ledger broken, doctor found failures, nothing could be collected, "
    "unexpected error); 2 usage or configuration (bad option, policy, snapshot or key file, missing "
    "settings); 3 incomplete collection (some sources or tenants could not be read); 4 data directory "
    "unavailable (in use by another accessbot process, read-only, missing or full) or the port taken. "
    "Errors are one line on stderr; --debug shows the traceback."
)


class OperatorError(Exception):
    """An error the operator can fix: ``message`` says what happened and what to do, on one line."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


DEBUG = "accessbot.debug"  # in the context's meta: --debug was given
data_dir_in_use: ContextVar[Path | None] = ContextVar("data_dir_in_use", default=None)
"""The data directory the running command uses, so a file error inside it can say so."""


class OperatorErrorGroup(TyperGroup):
    """The root command: whatever a subcommand raises ends as one line on stderr and an exit code."""

    def invoke(self, ctx: typer.Context) -> Any:
        token = data_dir_in_use.set(None)
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # usage errors, --help, and the exits commands chose themselves
        except Exception as error:
            if ctx.meta.get(DEBUG):
                raise
            known = operator_error(error, data_dir_in_use.get())
            if known is None:
                message = f"unexpected error: {type(error).__name__}: {error} (rerun with --debug for the traceback)"
                code = ExitCode.FAILED
            else:
                message, code = known.message, known.exit_code
            typer.echo(f"accessbot: {one_line(message)}", err=True)
            raise typer.Exit(int(code)) from None
        finally:
            data_dir_in_use.reset(token)


def operator_error(error: BaseException, data_dir: Path | None = None) -> OperatorError | None:
    """The operator's view of ``error``, or None when it is a bug (shown as unexpected).

    ``data_dir``, when known, lets a file error inside it say that the data directory is the problem.
    """
    if isinstance(error, OperatorError):
        return error
    if isinstance(error, StoreLocked):
        return OperatorError(str(error), ExitCode.UNAVAILABLE)
    if isinstance(error, StoreUnavailable):
        return OperatorError(f"the data directory cannot be written: {error}", ExitCode.UNAVAILABLE)
    if isinstance(error, PolicyError):
        return OperatorError(f"{error} (`accessbot doctor --policy FILE` lists every problem)", ExitCode.USAGE)
    if isinstance(error, (SnapshotError, GraphNotConfigured)):
        return OperatorError(str(error), ExitCode.USAGE)
    if isinstance(error, OSError):
        return _file_error(error, data_dir)
    return None


def _file_error(error: OSError, data_dir: Path | None) -> OperatorError:
    name = error.filename or ""
    reason = (error.strerror or str(error)).lower()
    if not name:
        return OperatorError(f"{reason}; check the machine's network, disk and permissions", ExitCode.UNAVAILABLE)
    inside = data_dir is not None and bool(name) and _within(Path(name), data_dir)
    if isinstance(error, FileNotFoundError) and not inside:
        return OperatorError(f"{name}: no such file", ExitCode.USAGE)
    if error.errno == errno.ENOSPC:
        what = "free some space on its disk, then retry"
    elif inside or (data_dir is not None and Path(name) == data_dir):
        what = (f"the data directory {data_dir} must be a directory this user can write: fix its permissions "
                "or mount, or pass --data-dir (ACCESSBOT_DATA_DIR)")
    else:
        what = "check the path and its permissions"
    return OperatorError(f"cannot use {name or 'a file'}: {reason}; {what}", ExitCode.UNAVAILABLE)


def _within(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # an unresolvable path (a loop) is not inside anything
        return False


def one_line(text: str) -> str:
    """Collapse a message to one line, so a log shows the whole error in one entry; control characters
    (from names a tenant chose, say) are shown escaped, never sent to the operator's terminal."""
    shown = "".join(char if char.isprintable() or char.isspace() else ascii(char)[1:-1] for char in text)
    return " ".join(shown.split())
