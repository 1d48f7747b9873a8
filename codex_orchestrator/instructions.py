"""Instruction files (AGENTS.md and friends): find them in the workspace and fingerprint each with sha256."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from codex_orchestrator.errors import RequestError

# Read in this order; later files refine earlier ones (the same convention codex uses).
DEFAULT_INSTRUCTION_FILES = ("AGENTS.md", "AGENTS.override.md", "CODEX.md", ".codex/instructions.md")
MAX_INSTRUCTION_BYTES = 1_000_000


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
        data = path.read_bytes()[:MAX_INSTRUCTION_BYTES]
        seen.add(rel)
        found.append(
            InstructionFile(
                path=rel,
                sha256=hashlib.sha256(data).hexdigest(),
                size_bytes=len(data),
                text=data.decode("utf-8", errors="replace"),
            )
        )
    return found
