"""Crash-safe whole-file writes, and a TinyDB storage built on them.

TinyDB's own JSONStorage truncates the file and rewrites it in place: a crash in between leaves a
half-written or empty database. Here every write goes to a temp file in the same directory, is
fsynced, then renamed over the old file, and the directory is fsynced so the rename itself survives
a power cut. A reader therefore always sees either the old or the new file, never a mix.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from tinydb.storages import Storage

Tables = dict[str, dict[str, Any]]


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (its entry lives in the directory)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: Path, content: bytes) -> None:
    """Atomically replace ``path`` with ``content``: temp file, fsync, rename, fsync the directory.

    The temp name is fixed per target, so a temp file left by a crash is simply overwritten by the
    next write instead of piling up. One process writes a data directory; readers never touch temps.
    """
    replace_file_streaming(path, (content,))


def replace_file_streaming(path: Path, chunks: Iterable[bytes]) -> None:
    """``replace_file`` for content produced piece by piece, so a 100 MB file never sits in memory whole.

    The chunks go to the temp file as they come; only when the last one is written and fsynced does
    the rename happen. If producing a chunk raises (or the process dies), the torn temp file is left
    where no reader looks and ``path`` keeps its previous content.
    """
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
    fsync_directory(path.parent)


class AtomicJSONStorage(Storage):
    """A TinyDB storage that writes with ``replace_file`` and keeps the last state in memory.

    Reads come from memory after the first one, so a lookup never re-parses the file. TinyDB mutates
    the dict it read before handing it back to ``write``; if that write fails the memory copy is
    dropped, so the next read comes from the file, which still holds the last good state.

    ``batch()`` folds several TinyDB operations into one file replacement.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._cache: Tables | None = None
        self._batching = False
        self._dirty = False

    def read(self) -> Tables | None:
        if self._cache is None:
            try:
                text = self.path.read_bytes()
            except FileNotFoundError:
                return None
            if not text:
                return None
            self._cache = json.loads(text)
        return self._cache

    def write(self, data: Tables) -> None:
        self._cache = data
        if self._batching:
            self._dirty = True
            return
        self._persist()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Every TinyDB write inside the block lands in memory; the file is replaced once at the end."""
        if self._batching:
            raise RuntimeError("batches do not nest")
        self._batching, self._dirty = True, False
        try:
            yield
        except BaseException:
            self._cache = None
            raise
        finally:
            self._batching = False
        if self._dirty:
            self._persist()

    def _persist(self) -> None:
        assert self._cache is not None
        try:
            content = json.dumps(self._cache, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            replace_file(self.path, content.encode())
        except BaseException:
            self._cache = None
            raise

    def close(self) -> None:
        self._cache = None
