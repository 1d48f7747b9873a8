"""Instruction files (AGENTS.md and friends): find them in the workspace, check them, fingerprint each with sha256.

Each file must be inside the workspace, at most ``MAX_INSTRUCTION_BYTES`` and UTF-8 text; the hash covers the whole
file. ``parse_request`` calls ``load_instructions`` so that a bad file is refused before a run directory exists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from codex_orchestrator.errors import RequestError

# Read in this order; later files refine earlier ones (the same convention codex uses).
DEFAULT_INSTRUCTION_FILES = ("AGENTS.md", "AGENTS.override.md", "CODEX.md", ".codex/instructions.md")
MAX_INSTRUCTION_BYTES = 1024 * 1024


@dataclass(frozen=True)
class InstructionFile:
    path: str  # workspace-relative
    sha256: str
    size_bytes: int
    text: str


def load_instructions(workspace: Path, extra: Iterable[str] = ()) -> list[InstructionFile]:
    """Load the default instruction files that exist plus every ``extra`` one (which must exist)."""
    found: list[InstructionFile] = []
    names = [(n, False) for n in DEFAULT_INSTRUCTION_FILES] + [(n, True) for n in extra]
    seen: set[str] = set()
    root = workspace.resolve()
    for name, required in names:
        if "\x00" in name:
            raise RequestError(f"{name!r} contains a NUL byte", field="instructions")
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise RequestError(
                f"{name!r} must be a path inside the workspace (relative, no '..')", field="instructions"
            )
        path = (root / name).resolve()
        if not path.is_relative_to(root):
            raise RequestError(f"{name!r} is outside the workspace", field="instructions")
        rel = path.relative_to(root).as_posix()
        if rel in seen:
            continue
        if not path.is_file():
            if required:
                raise RequestError(
                    f"instruction file {name!r} not found in the workspace", field="instructions"
                )
            continue
        data = _read_text_file(path, rel)
        seen.add(rel)
        found.append(
            InstructionFile(
                path=rel,
                sha256=hashlib.sha256(data).hexdigest(),
                size_bytes=len(data),
                text=data.decode("utf-8"),
            )
        )
    return found


def _read_text_file(path: Path, rel: str) -> bytes:
    """The whole file, refused when it is too large, binary (a NUL byte) or not UTF-8."""
    try:
        size = path.stat().st_size
        if size > MAX_INSTRUCTION_BYTES:
            raise RequestError(
                f"instruction file {rel!r} is {size} bytes; the limit is {MAX_INSTRUCTION_BYTES} bytes",
                field="instructions",
            )
        with path.open("rb") as handle:
            data = handle.read(MAX_INSTRUCTION_BYTES + 1)
    except OSError as exc:
        raise RequestError(
            f"cannot read instruction file {rel!r}: {exc.strerror}", field="instructions"
        ) from exc
    if len(data) > MAX_INSTRUCTION_BYTES:  # grew after the stat
        raise RequestError(
            f"instruction file {rel!r} is over the limit of {MAX_INSTRUCTION_BYTES} bytes",
            field="instructions",
        )
    if b"\x00" in data:
        raise RequestError(
            f"instruction file {rel!r} is binary (it contains NUL bytes)", field="instructions"
        )
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(
            f"instruction file {rel!r} is not UTF-8 text (bad byte at offset {exc.start})",
            field="instructions",
        ) from None
    return data
