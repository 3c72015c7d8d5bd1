"""How the `accessbot` command line turns any error into one line on stderr and a documented exit code.

``OperatorErrorGroup`` is the root command: it catches what a subcommand raises, translates the
exceptions that name an operator's problem (a locked store, a policy error, a file that cannot be
written) into an ``OperatorError``, and shows anything else as an unexpected error, in one line too.
``accessbot --debug`` lets the traceback through.
"""

from __future__ import annotations

import errno
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from bot.collection import GraphNotConfigured
from bot.operator_errors import ExitCode, OperatorError, one_line
from bot.policy import PolicyError
from bot.store.base import DatabaseUnavailable, StoreLocked, StoreUnavailable
from checks.snapshot import SnapshotError

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
    if isinstance(error, DatabaseUnavailable):
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
    """A file error: the data directory's (exit 4, with what to fix), a full disk (4), or a path the
    operator named, such as --policy, --snapshot or --output (exit 2)."""
    name = str(error.filename or "")
    reason = (error.strerror or str(error)).lower()
    if not name:
        return OperatorError(f"{reason}; check the machine's network, disk and permissions", ExitCode.UNAVAILABLE)
    if error.errno == errno.ENOSPC:
        return OperatorError(f"cannot write {name}: {reason}; free some space on its disk, then retry",
                             ExitCode.UNAVAILABLE)
    if data_dir is not None and _within(Path(name), data_dir):
        return OperatorError(f"cannot use {name}: {reason}; the data directory {data_dir} must be a directory this "
                             "user can write: fix its permissions or mount, or pass --data-dir (ACCESSBOT_DATA_DIR)",
                             ExitCode.UNAVAILABLE)
    if isinstance(error, FileNotFoundError):
        return OperatorError(f"{name}: no such file or directory", ExitCode.USAGE)
    return OperatorError(f"cannot use {name}: {reason}; check the path and its permissions", ExitCode.USAGE)


def _within(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # an unresolvable path (a loop) is not inside anything
        return False
