"""The read sandbox: where a command that is read-only only when confined (``CallFacts.read_sandbox``: git
status, diff, blame, patches) runs unasked, so that whatever a repository's config makes it run can only read.

It is the read-only bubblewrap sandbox (nothing writable but a private /tmp, no network, its own pid, ipc and
uts namespaces, no capabilities) whatever the run's sandbox mode, with two additions: the command runs under a
seccomp filter that refuses ``socket()``, io_uring and the kernel keyring (exec/no_sockets.py: a read-only
bind does not stop a ``connect()`` to a Unix socket such as the docker daemon's), and with git's
program-running config neutralised (commands/git_env.py). Only a local backend with a working bwrap on a
known architecture has it; elsewhere such a command needs ``run``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

from codex_orchestrator.exec.backend import ExecBackend
from codex_orchestrator.exec.local import LocalPtyBackend
from codex_orchestrator.exec.no_sockets import ARCHES
from codex_orchestrator.policy import ApprovalPolicy, CallFacts, Capability, Outcome, Requirement, decide
from codex_orchestrator.sandbox import SandboxMode, SandboxSpec, SandboxState, host_tmp_entries, probe
from codex_orchestrator.shell_attempt import SandboxChoice

NO_SOCKETS_SCRIPT = Path(__file__).with_name("exec") / "no_sockets.py"
# Run inside the sandbox before the command: a Python without site (-S) or environment (-I).
INNER: tuple[str, ...] = (sys.executable, "-I", "-S", str(NO_SOCKETS_SCRIPT))
DETAIL = "read sandbox: read-only, no network, no sockets; git's program-running config neutralised"


def available(backend: ExecBackend, bwrap_path: str) -> bool:
    """Whether this gate can run a call in the read sandbox (probes bwrap once per path)."""
    return (
        isinstance(backend, LocalPtyBackend) and os.uname().machine in ARCHES and probe(bwrap_path).available
    )


def unconfined(facts: CallFacts) -> CallFacts:
    """``facts`` as they are outside the read sandbox: the repository's programs may do anything, ``run``."""
    return replace(
        facts, needs=facts.needs | {Capability.RUN}, read_only_safe=False, read_sandbox=False, env={}
    )


def requirement(
    policy: ApprovalPolicy,
    profile: frozenset[Capability],
    facts: CallFacts,
    backend: ExecBackend,
    bwrap_path: str,
) -> tuple[CallFacts, Requirement]:
    """The decision for a ``read_sandbox`` call: run there unasked when the policy would ask or forbid it
    otherwise and the sandbox is available; else the call as it is outside, with the stricter of the two
    decisions (a person asked sees it needs ``run``, and runs it as it is)."""
    outside = unconfined(facts)
    plain = decide(policy, profile, outside)
    if plain.outcome is Outcome.SKIP or not available(backend, bwrap_path):
        return outside, plain
    inside = decide(policy, profile, facts)
    if inside.outcome is Outcome.SKIP:
        return facts, replace(inside, reason=f"read-only in the read sandbox ({plain.reason} outside it)")
    return outside, max(inside, plain, key=lambda r: _STRICTNESS[r.outcome])


_STRICTNESS = {Outcome.SKIP: 0, Outcome.ASK: 1, Outcome.FORBID: 2}


def choice(workspace: Path, bwrap_path: str) -> SandboxChoice:
    """Step 2's choice for a call that runs unasked because it is read-only in the read sandbox."""
    spec = SandboxSpec(
        mode=SandboxMode.READ_ONLY,
        workspace=workspace,
        network=False,
        bwrap_path=bwrap_path,
        readable_paths=host_tmp_entries(),
    )
    return SandboxChoice(SandboxState.SANDBOXED, spec=spec, detail=DETAIL, inner=INNER)
