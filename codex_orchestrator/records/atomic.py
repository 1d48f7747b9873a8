"""Atomic file replacement: readers, and a writer killed mid-way, only ever see a whole old or new file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from codex_orchestrator.errors import RecordError


def write_atomic(path: Path, data: bytes, *, durable: bool = True, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, whole.

    ``durable`` fsyncs file and directory (survives power loss); progress writes skip it, since a killed process
    cannot tear a rename either way."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                if durable:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if durable:
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except OSError as exc:
        raise RecordError(f"cannot write: {exc.strerror}", path=str(path)) from exc
