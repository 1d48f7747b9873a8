"""Where rules files are read from, as codex reads them: ``$CODEX_HOME/rules/*.rules`` (the user's; a run may
ignore them), ``<workspace>/.codex/rules/*.rules`` (the project's), then a request's ``rules:`` list.

Records name a user file ``$CODEX_HOME/rules/<name>`` and the others workspace-relative, never by home path.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from codex_orchestrator.errors import RequestError
from codex_orchestrator.instructions import GLOBAL_PREFIX, codex_home
from codex_orchestrator.rules.loader import MAX_RULES_FILE_BYTES, RulesSource, load_cached
from codex_orchestrator.rules.model import Policy

RULES_DIRNAME = "rules"
PROJECT_RULES_DIR = Path(".codex") / RULES_DIRNAME
DEFAULT_RULES_FILENAME = "default.rules"  # where codex (and approve-and-remember) appends amendments
RULES_SUFFIX = ".rules"


class RulesSettings(BaseModel):
    """The request's ``rules`` section (a bare list is read as ``files``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    files: list[str] = Field(
        default=[], description="more rules files (workspace-relative, must exist), read after codex's places"
    )
    include_user: bool = Field(default=True, description="read $CODEX_HOME/rules/*.rules")
    remember_to: Literal["workspace", "codex-home"] = Field(
        default="workspace",
        description="where approve-and-remember appends its rule: <workspace>/.codex/rules/default.rules or "
        "$CODEX_HOME/rules/default.rules",
    )


def _read(path: Path, name: str, scope: str) -> RulesSource:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RequestError(f"cannot read rules file: {exc.strerror or exc}", field=name) from exc
    if len(data) > MAX_RULES_FILE_BYTES:
        raise RequestError(f"rules file is over {MAX_RULES_FILE_BYTES} bytes", field=name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("rules file is not UTF-8", field=name) from None
    return RulesSource(name=name, text=text, scope=scope)


def _dir_sources(directory: Path, prefix: str, scope: str) -> list[RulesSource]:
    if not directory.is_dir():
        return []
    files = sorted(p for p in directory.iterdir() if p.suffix == RULES_SUFFIX and p.is_file())
    return [_read(p, prefix + p.name, scope) for p in files]


def find_sources(
    workspace: Path, settings: RulesSettings, environ: Mapping[str, str] | None = None
) -> list[RulesSource]:
    """Every rules file a run in ``workspace`` reads, in the order they are loaded."""
    sources: list[RulesSource] = []
    if settings.include_user:
        home = codex_home(environ) / RULES_DIRNAME
        sources += _dir_sources(home, f"{GLOBAL_PREFIX}{RULES_DIRNAME}/", "user")
    root = workspace.resolve()
    sources += _dir_sources(root / PROJECT_RULES_DIR, f"{PROJECT_RULES_DIR.as_posix()}/", "project")
    seen = {s.name for s in sources}
    for rel in settings.files:
        path = (root / rel).resolve()
        if not path.is_relative_to(root):
            raise RequestError(f"{rel!r} resolves outside the workspace", field="rules.files")
        if not path.is_file():
            raise RequestError(f"{rel!r} does not exist", field="rules.files")
        name = path.relative_to(root).as_posix()
        if name not in seen:
            sources.append(_read(path, name, "request"))
            seen.add(name)
    return sources


def load_policy(
    workspace: Path, settings: RulesSettings, environ: Mapping[str, str] | None = None
) -> tuple[Policy, list[RulesSource]]:
    """The policy of every rules file a run reads (``RulesError`` for a bad one), and the files."""
    sources = find_sources(workspace, settings, environ)
    return load_cached(sources), sources


def remember_path(workspace: Path, settings: RulesSettings, environ: Mapping[str, str] | None = None) -> Path:
    """The file approve-and-remember appends to."""
    if settings.remember_to == "codex-home":
        return codex_home(environ) / RULES_DIRNAME / DEFAULT_RULES_FILENAME
    return workspace.resolve() / PROJECT_RULES_DIR / DEFAULT_RULES_FILENAME


def record_name(workspace: Path, path: Path, environ: Mapping[str, str] | None = None) -> str:
    """How records name a rules file: workspace-relative, or under $CODEX_HOME."""
    resolved = path.resolve()
    root = workspace.resolve()
    if resolved.is_relative_to(root):
        return resolved.relative_to(root).as_posix()
    home = codex_home(environ).resolve()
    if resolved.is_relative_to(home):
        return GLOBAL_PREFIX + resolved.relative_to(home).as_posix()
    return path.name
