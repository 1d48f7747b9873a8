"""What the classifier has found so far about one command line, and the result it hands back."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from codex_orchestrator.policy import Capability
from codex_orchestrator.shell_syntax import Word

READ, EDIT, RUN, NETWORK = Capability.READ, Capability.EDIT, Capability.RUN, Capability.NETWORK


@dataclass(frozen=True)
class CommandPart:
    """One command the classifier saw, as its argv; a ``wrapper`` (env, sudo, sh -c, ...) ran the parts after it.

    Exec-policy rules (codex_orchestrator/rules) are matched against every part."""

    argv: tuple[str, ...]
    literal: tuple[bool, ...]  # per word: the shell passes exactly that text
    wrapper: bool = False


@dataclass(frozen=True)
class Classification:
    """What a command needs; ``read_only_safe`` when no part may write, run unvetted code or go online.

    ``env`` holds the environment overrides that read-only-ness depends on (git's executable config
    neutralised): a read-only-safe command is only safe when it runs with them. ``read_sandbox``: it is
    read-only only in the read sandbox (read_sandbox.py), because the only programs it may run beyond the
    vetted ones are those a repository's config names (git's filters, textconv, external diff), which that
    sandbox confines to reading; ``needs`` is then ``{read}`` and the gate must run it there or ask.
    """

    needs: frozenset[Capability]
    read_only_safe: bool
    reasons: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict, hash=False)
    read_sandbox: bool = False
    parts: tuple[CommandPart, ...] = ()
    # Something runs that is no part: a command name from an expansion, a control structure, code nested too
    # deeply. Rules cannot vouch for such a command line.
    opaque: bool = False


class Findings:
    """Capabilities needed so far, with one reason per finding (in order, without repeats).

    Handlers classify nested commands (``env CMD``, ``bash -c SCRIPT``) through ``command`` and ``script``,
    which the walker (walk.py) provides, so that handler modules need not import it.
    """

    def __init__(
        self,
        command: Callable[[Findings, list[Word], int], None],
        script: Callable[[Findings, str, int], None],
    ) -> None:
        self.needs: set[Capability] = {READ}
        self.reasons: list[str] = []
        self.count = 0  # findings so far, repeated ones included
        self.env: dict[str, str] = {}  # overrides some part relies on (see Classification.env)
        self.configured = 0  # findings of `run` for programs only the repository's config names
        self.run_count = 0  # findings of `run`, those included
        self.parts: list[CommandPart] = []
        self.opaque = False
        self._command, self._script = command, script

    def add(self, cap: Capability, reason: str) -> None:
        self.needs.add(cap)
        self.count += 1
        self.run_count += cap is RUN
        if reason not in self.reasons:
            self.reasons.append(reason)

    def add_configured(self, reason: str) -> None:
        """``run``, for programs that only the repository's config can name (see Classification.read_sandbox)."""
        self.add(RUN, reason)
        self.configured += 1

    def command(self, words: list[Word], depth: int) -> None:
        """Classify ``words`` as a command and its arguments (no shell syntax left)."""
        self._command(self, words, depth)

    def script(self, src: str, depth: int) -> None:
        """Classify ``src`` as shell code, one nesting level deeper."""
        self._script(self, src, depth)

    def result(self) -> Classification:
        safe = self.needs == {READ}
        sandboxed = self.needs == {READ, RUN} and self.configured == self.run_count
        return Classification(
            frozenset({READ}) if sandboxed else frozenset(self.needs),
            safe or sandboxed,
            tuple(self.reasons),
            dict(self.env) if safe or sandboxed else {},
            sandboxed,
            tuple(self.parts),
            self.opaque,
        )


Handler = Callable[[str, list[Word], Findings, int], None]


def names(text: str) -> frozenset[str]:
    return frozenset(text.split())
