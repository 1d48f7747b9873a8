"""An agent's approval request as the gate sees it: the same classifier and ``decide()`` as a step's command.

Pure functions. ``agent_call`` turns one codex request into ``AgentCall`` (what it is, its deterministic id, the
one-line display, the working directory, the ``CallFacts``); ``requirement`` decides it with ``policy.decide``
and two rules of the agent's sandbox on top: a path outside the workspace is refused, and so is a call that
needs network when the agent's sandbox has none (approving it could not give it any).
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from codex_orchestrator import read_sandbox
from codex_orchestrator.agents.protocol import (
    COMMAND_APPROVAL,
    FILE_CHANGE_APPROVAL,
    PERMISSIONS_APPROVAL,
    CommandApprovalParams,
    FileChangeApprovalParams,
    PermissionsApprovalParams,
)
from codex_orchestrator.commands import call_facts
from codex_orchestrator.policy import (
    ApprovalPolicy,
    CallFacts,
    Capability,
    Outcome,
    Requirement,
    ToolKind,
)
from codex_orchestrator.rules.apply import amendment_for
from codex_orchestrator.rules.verdict import NO_VERDICT, RuleVerdict, decide_with_rules

_SHELLS = ("bash", "sh", "zsh", "dash")
_SLUG_RE = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class AgentCall:
    """One tool call of an agent, ready for the gate."""

    id: str  # deterministic: from the agent step's call id, thread, turn and item
    kind: ToolKind
    method: str
    display: str  # the command line, ``apply patch: a.py, b.py`` or ``permissions: network``
    cwd: Path  # absolute
    facts: CallFacts
    paths: tuple[Path, ...] = ()  # files a patch touches (absolute)
    diff: str = ""  # a patch's unified diff, for the approval form
    # What approve-and-remember would allow from now on: codex's proposedExecpolicyAmendment when it made one
    # (``proposed``; answered with acceptWithExecpolicyAmendment), else the command's prefixes as ours split it.
    amendment: tuple[tuple[str, ...], ...] = ()
    proposed: bool = False
    item_id: str = ""
    turn_id: str = ""
    thread_id: str = ""


def agent_call_id(step_call_id: str, thread_id: str, turn_id: str, item_id: str) -> str:
    """Deterministic: the same item of the same turn of the same thread has the same id in every run."""
    digest = hashlib.sha256(f"{step_call_id}\0{thread_id}\0{turn_id}\0{item_id}".encode()).hexdigest()[:8]
    slug = _SLUG_RE.sub("-", item_id.lower()).strip("-")[:24] or "item"
    return f"{step_call_id}.{slug}-{digest}"


def inner_command(command: str) -> str:
    """The script codex runs: ``/bin/bash -lc 'cat a.py'`` is ``cat a.py``; anything else as it is."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return command
    if len(argv) == 3 and PurePosixPath(argv[0]).name in _SHELLS and argv[1] in ("-c", "-lc", "-l -c"):
        return argv[2]
    return command


def agent_call(
    method: str,
    params: Mapping[str, Any],
    *,
    step_call_id: str,
    workspace: Path,
    file_change: Mapping[str, Any] | None = None,
) -> AgentCall:
    """Classify one approval request (``file_change``: the ``fileChange`` item a patch request is about)."""
    ids = {k: str(params.get(k, "")) for k in ("threadId", "turnId", "itemId")}
    call_id = agent_call_id(step_call_id, ids["threadId"], ids["turnId"], ids["itemId"])
    common: dict[str, Any] = {
        "item_id": ids["itemId"],
        "turn_id": ids["turnId"],
        "thread_id": ids["threadId"],
        "method": method,
    }
    if method == COMMAND_APPROVAL:
        cmd = CommandApprovalParams.model_validate(params)
        script = inner_command(cmd.command or "")
        # codex asks with a reason when the command wants out of its sandbox: the step asks for approval
        escalates = cmd.reason is not None
        facts = call_facts(ToolKind.SHELL, script, (), escalates)
        if facts.read_sandbox:
            # Read-only only inside our read sandbox, where codex does not run it: as it is outside, `run`.
            facts = read_sandbox.unconfined(facts)
        if cmd.network_approval_context is not None:
            facts = _with(facts, Capability.NETWORK)
        cwd = Path(cmd.cwd) if cmd.cwd else workspace
        proposed = tuple(str(word) for word in cmd.proposed_execpolicy_amendment or ())
        return AgentCall(
            id=call_id,
            kind=ToolKind.SHELL,
            display=script,
            cwd=cwd,
            facts=facts,
            amendment=(proposed,) if proposed else amendment_for(facts),
            proposed=bool(proposed),
            **common,
        )
    if method == FILE_CHANGE_APPROVAL:
        change = FileChangeApprovalParams.model_validate(params)
        changes = list((file_change or {}).get("changes") or [])
        paths = tuple(Path(str(c.get("path", ""))) for c in changes if isinstance(c, Mapping))
        if change.grant_root:
            paths = (*paths, Path(change.grant_root))
        names = ", ".join(_rel(p, workspace) for p in paths) or "(no files)"
        diff = "\n".join(
            f"--- {_rel(Path(str(c.get('path', ''))), workspace)}\n{c.get('diff', '')}"
            for c in changes
            if isinstance(c, Mapping)
        )
        # A patch to the workspace's codex config or rules is always asked: a rule the agent wrote would
        # decide its next calls.
        protected = workspace / ".codex"
        escalates = change.grant_root is not None or any(
            _inside(p if p.is_absolute() else workspace / p, protected) for p in paths
        )
        facts = call_facts(ToolKind.EDIT, None, (), escalates)
        return AgentCall(
            id=call_id,
            kind=ToolKind.EDIT,
            display=f"apply patch: {names}",
            cwd=workspace,
            facts=facts,
            paths=paths,
            diff=diff,
            **common,
        )
    if method == PERMISSIONS_APPROVAL:
        perm = PermissionsApprovalParams.model_validate(params)
        needs: set[Capability] = {Capability.READ}
        wanted: list[str] = []
        network = perm.permissions.get("network")
        if isinstance(network, Mapping) and network.get("enabled"):
            needs.add(Capability.NETWORK)
            wanted.append("network")
        fs = perm.permissions.get("fileSystem")
        write_paths: tuple[Path, ...] = ()
        if isinstance(fs, Mapping) and (fs.get("write") or fs.get("entries")):
            needs.add(Capability.EDIT)
            write_paths = tuple(Path(str(p)) for p in fs.get("write") or [])
            wanted.append("write " + (", ".join(str(p) for p in write_paths) or "paths"))
        facts = CallFacts(ToolKind.AGENT, frozenset(needs), False, True)
        display = f"permissions: {'; '.join(wanted) or 'none'}" + (f" ({perm.reason})" if perm.reason else "")
        return AgentCall(
            id=call_id,
            kind=ToolKind.AGENT,
            display=display,
            cwd=Path(perm.cwd),
            facts=facts,
            paths=write_paths,
            **common,
        )
    raise ValueError(f"not an approval request the gate decides: {method}")


def requirement(
    call: AgentCall,
    *,
    policy: ApprovalPolicy,
    profile: frozenset[Capability],
    workspace: Path,
    network_available: bool,
    verdict: RuleVerdict = NO_VERDICT,
) -> Requirement:
    """The decision for one agent call: ``decide()`` with the run's exec-policy rules (``verdict``, as for a
    step's command), plus the agent sandbox's two hard rules."""
    outside = [p for p in (call.cwd, *call.paths) if not _inside(p, workspace)]
    if outside:
        return Requirement(Outcome.FORBID, f"{outside[0]} is outside the workspace")
    if Capability.NETWORK in call.facts.needs and not network_available:
        return Requirement(
            Outcome.FORBID,
            "needs network, which this agent step's sandbox does not have (grant `network` in the profile)",
            frozenset({Capability.NETWORK}),
        )
    return decide_with_rules(policy, profile, call.facts, verdict)


def _with(facts: CallFacts, capability: Capability) -> CallFacts:
    return replace(facts, needs=facts.needs | {capability}, read_only_safe=False, env={})


def _inside(path: Path, workspace: Path) -> bool:
    resolved = Path(str(path)) if not path.is_absolute() else path
    try:
        resolved = (workspace / resolved).resolve() if not resolved.is_absolute() else resolved.resolve()
    except OSError:
        return False
    return resolved.is_relative_to(workspace.resolve())


def _rel(path: Path, workspace: Path) -> str:
    try:
        return str(path.resolve().relative_to(workspace.resolve()))
    except (ValueError, OSError):
        return str(path)
