"""Instruction files (AGENTS.md and friends), found the way codex finds them, checked, and fingerprinted.

Precedence (codex's ``project_doc``; docs/instructions.md):
1. global: ``$CODEX_HOME`` (default ``~/.codex``): ``AGENTS.override.md`` if it is non-empty, else ``AGENTS.md``;
2. project: each directory from the repository root (the nearest ``.git`` at or above the step's cwd, never
   above the workspace) down to the step's cwd, at most one file per directory — the first of
   ``AGENTS.override.md``, ``AGENTS.md``, then the configured fallback names that exists; whitespace-only files
   add nothing; then the request's ``extra`` files;
3. the project part is concatenated root-first and stops at a byte budget (default 32 KiB): the file that
   crosses it is cut, later ones are left out, and a warning says so.
Each source is hashed whole (sha256), whatever the budget keeps; the combined text gets a hash of its own. A
file over ``MAX_INSTRUCTION_BYTES``, binary (a NUL byte) or not UTF-8 is refused with a ``RequestError``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from codex_orchestrator.errors import RequestError

OVERRIDE_FILENAME = "AGENTS.override.md"
DEFAULT_FILENAME = "AGENTS.md"
DEFAULT_MAX_BYTES = 32 * 1024  # codex's project_doc_max_bytes
MAX_INSTRUCTION_BYTES = 1024 * 1024  # any one file; larger ones are refused, not cut
CODEX_HOME_ENV = "CODEX_HOME"
GLOBAL_PREFIX = "$CODEX_HOME/"  # how a global source is named in records: never an absolute home path
# codex joins the user's (global) instructions and the project docs with this line.
PROJECT_DOC_SEPARATOR = "\n\n--- project-doc ---\n\n"
Scope = Literal["global", "project", "extra"]


class InstructionSettings(BaseModel):
    """The request's ``instructions`` section (a bare list is read as ``extra``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fallback_filenames: list[str] = Field(
        default=[], description="names tried after AGENTS.override.md and AGENTS.md in each directory"
    )
    max_bytes: int = Field(
        default=DEFAULT_MAX_BYTES, ge=0, le=MAX_INSTRUCTION_BYTES, description="budget of the project part"
    )
    extra: list[str] = Field(
        default=[], description="more files (workspace-relative, must exist), after the hierarchy"
    )
    include_global: bool = Field(default=True, description="read $CODEX_HOME's AGENTS.override.md/AGENTS.md")


@dataclass(frozen=True)
class InstructionFile:
    """One source: its whole content's hash and size, and how many of its bytes the budget kept."""

    path: str  # workspace-relative; a global one as $CODEX_HOME/<name>
    scope: Scope
    sha256: str
    size_bytes: int
    text: str
    included_bytes: int

    @property
    def truncated(self) -> bool:
        return self.included_bytes < self.size_bytes


@dataclass(frozen=True)
class InstructionSet:
    """What a step running in ``cwd`` is given: its sources root-first and their combined text."""

    cwd: str
    sources: tuple[InstructionFile, ...]
    text: str
    sha256: str
    warnings: tuple[str, ...] = field(default=())

    @property
    def truncated(self) -> bool:
        return any(s.truncated for s in self.sources)


def candidate_filenames(fallbacks: Iterable[str] = ()) -> tuple[str, ...]:
    """The names tried in each directory, in order: the override, the default, then unique fallbacks."""
    names = [OVERRIDE_FILENAME, DEFAULT_FILENAME]
    for name in fallbacks:
        name = name.strip()
        if name and name not in names:
            names.append(name)
    return tuple(names)


def codex_home(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    value = env.get(CODEX_HOME_ENV, "").strip()
    return Path(value).expanduser() if value else Path.home() / ".codex"


def project_dirs(workspace: Path, cwd: Path) -> list[Path]:
    """The directories searched, root first: from the nearest ``.git`` at or above ``cwd`` (not above the
    workspace; a repository root above it counts as the workspace) down to ``cwd``; without one, ``cwd`` alone
    (as codex does)."""
    root = workspace.resolve()
    cwd = cwd.resolve()
    chain = [cwd, *cwd.parents]
    inside = [d for d in chain if d.is_relative_to(root)]
    start = next((d for d in inside if (d / ".git").exists()), None)
    if start is None:
        above = any((d / ".git").exists() for d in chain if not d.is_relative_to(root))
        start = root if above else cwd
    return [d for d in reversed(inside) if d.is_relative_to(start)]


def load_instruction_set(
    workspace: Path,
    cwd: str = ".",
    settings: InstructionSettings | None = None,
    environ: Mapping[str, str] | None = None,
) -> InstructionSet:
    """The instruction set of a step whose cwd is ``cwd`` (workspace-relative)."""
    settings = settings or InstructionSettings()
    root = workspace.resolve()
    here = _inside(root, cwd, "cwd")
    names = candidate_filenames(settings.fallback_filenames)
    found_global = _global_source(environ) if settings.include_global else None
    project: list[tuple[str, bytes, Scope]] = []
    for directory in project_dirs(root, here):
        for name in names:
            path = directory / name
            if path.is_file():  # a symlink to a file counts, as in codex
                rel = path.relative_to(root).as_posix()
                project.append((rel, _read_text_file(path, rel), "project"))
                break
    seen = {rel for rel, _, _ in project}
    for name in settings.extra:
        path = _inside(root, name, "instructions")
        rel = path.relative_to(root).as_posix()
        if not path.is_file():
            raise RequestError(f"instruction file {name!r} not found in the workspace", field="instructions")
        if rel not in seen:
            seen.add(rel)
            project.append((rel, _read_text_file(path, rel), "extra"))
    return _assemble(here.relative_to(root).as_posix() or ".", found_global, project, settings.max_bytes)


def load_instructions(
    workspace: Path, extra: Iterable[str] = (), settings: InstructionSettings | None = None
) -> list[InstructionFile]:
    """The sources of the workspace root's set (its global file included), ``extra`` added."""
    base = settings or InstructionSettings()
    merged = base.model_copy(update={"extra": [*base.extra, *extra]})
    return list(load_instruction_set(workspace, ".", merged).sources)


def load_for_cwds(
    workspace: Path, cwds: Sequence[str], settings: InstructionSettings | None = None
) -> list[InstructionSet]:
    """One set per distinct cwd (the workspace root first), e.g. for every step of a request."""
    ordered = list(dict.fromkeys([".", *cwds]))
    return [load_instruction_set(workspace, cwd, settings) for cwd in ordered]


def _global_source(environ: Mapping[str, str] | None) -> tuple[str, bytes, Scope] | None:
    home = codex_home(environ)
    for name in (OVERRIDE_FILENAME, DEFAULT_FILENAME):  # the first *non-empty* one, as codex
        path = home / name
        if path.is_file():
            label = GLOBAL_PREFIX + name
            data = _read_text_file(path, label)
            if data.strip():
                return label, data, "global"
    return None


def _assemble(
    cwd: str,
    found_global: tuple[str, bytes, Scope] | None,
    project: list[tuple[str, bytes, Scope]],
    budget: int,
) -> InstructionSet:
    sources: list[InstructionFile] = []
    warnings: list[str] = []
    global_text = ""
    if found_global is not None:
        label, data, scope = found_global
        global_text = data.decode("utf-8").strip()
        sources.append(_source(label, scope, data, len(data)))
    parts: list[str] = []
    remaining = budget
    for rel, data, scope in project:
        kept = _utf8_prefix(data, remaining)
        remaining -= len(kept)
        sources.append(_source(rel, scope, data, len(kept)))
        if len(kept) < len(data):
            warnings.append(
                f"instruction file {rel!r}: {len(kept)} of {len(data)} bytes kept (budget {budget} bytes)"
            )
        text = kept.decode("utf-8").strip()
        if text:
            parts.append(text)
    combined = "\n\n".join(parts)
    if global_text:
        combined = global_text + (PROJECT_DOC_SEPARATOR + combined if combined else "")
    return InstructionSet(
        cwd=cwd,
        sources=tuple(sources),
        text=combined,
        sha256=hashlib.sha256(combined.encode("utf-8")).hexdigest(),
        warnings=tuple(warnings),
    )


def _source(path: str, scope: Scope, data: bytes, included: int) -> InstructionFile:
    return InstructionFile(
        path=path,
        scope=scope,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        text=data.decode("utf-8"),
        included_bytes=included,
    )


def _utf8_prefix(data: bytes, limit: int) -> bytes:
    """At most ``limit`` bytes of ``data``, never ending inside a UTF-8 sequence."""
    if limit <= 0:
        return b""
    if len(data) <= limit:
        return data
    cut = limit
    while cut > 0 and (data[cut] & 0xC0) == 0x80:  # a continuation byte: back up to the sequence's start
        cut -= 1
    return data[:cut]


def _inside(root: Path, name: str, what: str) -> Path:
    if "\x00" in name:
        raise RequestError(f"{name!r} contains a NUL byte", field=what)
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise RequestError(f"{name!r} must be a path inside the workspace (relative, no '..')", field=what)
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise RequestError(f"{name!r} is outside the workspace", field=what)
    return path


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
