"""Atomic file replacement: readers, and a writer killed mid-way, only ever see a whole old or new file.

Durability rule. Every write is a temp file renamed over the target, so a killed *process* (SIGKILL included)
never leaves a torn file, durable or not: the page cache outlives the process. ``durable=True`` also survives
a crash of the *machine*: the temp file's data is ``fdatasync``-ed before the rename and the directory is
``fsync``-ed after it. The directory sync is group-committed per process: one ``fsync`` of a directory covers
every rename into it that was done before the sync began, so threads finishing calls at the same time share
one instead of queueing one each (``DirSync``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from codex_orchestrator.errors import RecordError


def fsync_dir(path: Path) -> None:
    """Force ``path``'s entries (a rename into it) to disk."""
    dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class DirSync:
    """Group commit of one directory's ``fsync``: ``sync()`` returns once a sync that began after the caller's
    rename has finished. A caller that arrives while another's sync runs waits for the next one, which serves
    every caller that arrived meanwhile."""

    def __init__(self, path: Path, sync: Callable[[Path], None] = fsync_dir) -> None:
        self.path = path
        self._sync = sync
        self._cond = threading.Condition()
        self.requested = 0  # renames that asked for a sync
        self.synced = 0  # renames covered by a finished sync
        self.syncs = 0  # syncs done (one may cover several requests)
        self._busy = False

    def sync(self) -> None:
        with self._cond:
            self.requested += 1
            mine = self.requested
            while self.synced < mine:
                if self._busy:
                    self._cond.wait()
                    continue
                self._busy = True
                covers = self.requested  # every rename counted so far happened before this sync starts
                self._cond.release()
                try:
                    self._sync(self.path)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
                self.synced = max(self.synced, covers)
                self.syncs += 1


_DIR_SYNCS: dict[Path, DirSync] = {}
_DIR_SYNCS_LOCK = threading.Lock()


def dir_sync(path: Path) -> DirSync:
    """This process's group committer for ``path``."""
    with _DIR_SYNCS_LOCK:
        found = _DIR_SYNCS.get(path)
        if found is None:
            found = _DIR_SYNCS[path] = DirSync(path)
        return found


def write_atomic(path: Path, data: bytes, *, durable: bool = True, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, whole.

    ``durable`` makes the new file survive a machine crash once this returns (see the module docstring);
    progress writes skip it, since a killed process cannot tear a rename either way."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            try:
                os.fchmod(fd, mode)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if durable:
                    os.fdatasync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if durable:
            dir_sync(path.parent).sync()
    except OSError as exc:
        raise RecordError(f"cannot write: {exc.strerror}", path=str(path)) from exc
