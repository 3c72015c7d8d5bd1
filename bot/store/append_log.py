"""A file that only grows by whole lines: one write and one fsync per append, whatever the batch size.

Used for data that is appended far more often than it is read (the ledger, the keys of sent messages),
where rewriting a whole file per change would cost O(history) on every click.

A crash mid-append can leave a last line without its newline. That line was never acknowledged, so
readers ignore it and the writer cuts it off before its first append — not when the file is opened,
because a reader (``accessbot ledger verify`` next to a running bot) must never change the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from bot.store.atomic_storage import fsync_directory

_TAIL_CHUNK = 64 * 1024


class LogChanged(RuntimeError):
    """Whole lines appeared in, or vanished from, the file behind the writer's back: someone else wrote it."""


class AppendLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._size, self._last_line = _complete_tail(path)

    @property
    def last_line(self) -> bytes | None:
        """The last complete line (without its newline) as of opening or the latest append."""
        return self._last_line

    def lines(self) -> list[bytes]:
        """Every complete line, read from the file now (a torn last line is left out)."""
        content = self.complete()
        return content[:-1].split(b"\n") if content else []

    def complete(self) -> bytes:
        """The file's complete lines as one byte string, each ending in a newline (a torn last line is left out):
        for a reader that takes them all at once rather than line by line."""
        try:
            content = self.path.read_bytes()
        except FileNotFoundError:
            return b""
        return content[:content.rfind(b"\n") + 1]

    def append(self, lines: Sequence[bytes]) -> None:
        """Append newline-terminated lines with a single write and a single fsync.

        If the write or the fsync fails the file is cut back to where it was, so a failed append
        never leaves a fragment for the next one to land after.
        """
        if not lines:
            return
        fd = self._writer()
        if os.fstat(fd).st_size != self._size:  # appending after a stranger's lines would sign them as ours
            raise LogChanged(f"{self.path.name} was changed by another process since this one last wrote it")
        blob = b"".join(lines)
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            try:
                os.ftruncate(fd, self._size)
            except OSError:  # the caller must hear the first failure; the next append re-checks the tail
                os.close(fd)
                self._fd = None
            raise
        self._size += len(blob)
        self._last_line = lines[-1].rstrip(b"\n")

    def mark(self) -> tuple[int, bytes | None]:
        """Where the file ends now, to :meth:`cut_back` to if what is appended next must be taken back."""
        return self._size, self._last_line

    def cut_back(self, mark: tuple[int, bytes | None]) -> None:
        """Remove everything appended since ``mark`` (durably): the ledger takes back records it could not sign."""
        fd = self._writer()
        os.ftruncate(fd, mark[0])
        os.fsync(fd)
        self._size, self._last_line = mark

    def _writer(self) -> int:
        if self._fd is None:
            existed = self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                self._cut_torn_line(fd)
            except BaseException:
                os.close(fd)
                raise
            if not existed:
                fsync_directory(self.path.parent)
            self._fd = fd
        return self._fd

    def _cut_torn_line(self, fd: int) -> None:
        """Remove what a crashed append left after the last newline; refuse if whole lines appeared."""
        extra = os.fstat(fd).st_size - self._size
        if extra == 0:
            return
        if extra < 0 or b"\n" in os.pread(fd, extra, self._size):
            raise LogChanged(f"{self.path.name} was changed by another process since it was opened")
        os.ftruncate(fd, self._size)
        os.fsync(fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _complete_tail(path: Path) -> tuple[int, bytes | None]:
    """The length of the file up to its last newline, and the last complete line, reading from the end."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return 0, None
    with handle:
        position = handle.seek(0, os.SEEK_END)
        buffer = b""
        while position > 0 and buffer.count(b"\n") < 2:
            step = min(_TAIL_CHUNK, position)
            position -= step
            handle.seek(position)
            buffer = handle.read(step) + buffer
    end = buffer.rfind(b"\n")
    if end < 0:
        return 0, None
    start = buffer.rfind(b"\n", 0, end) + 1
    return position + end + 1, buffer[start:end]
