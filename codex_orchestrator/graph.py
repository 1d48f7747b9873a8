"""The step graph: ``needs`` edges checked up front (unknown names, self-references, cycles), and the pure
scheduling rule that says which steps may start, which must be skipped, and when a milestone is done.

Steps without an edge between them run concurrently, at most ``max_parallel`` at once, in request order. On a
failure, ``stop`` lets running calls finish and starts nothing new (every step not started is skipped);
``continue`` skips only the steps that depend, directly or not, on the failed one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class OnFailure(StrEnum):
    STOP = "stop"
    CONTINUE = "continue"


class StepState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class GraphError(ValueError):
    """The ``needs`` edges do not form a graph we can run; the message names the step(s)."""


def check_graph(order: Sequence[str], needs: Mapping[str, Sequence[str]]) -> None:
    """Refuse unknown names, self-references and cycles (naming the cycle, e.g. ``a -> b -> a``)."""
    known = set(order)
    for name in order:
        for dep in needs.get(name, ()):
            if dep == name:
                raise GraphError(f"step {name!r} needs itself")
            if dep not in known:
                raise GraphError(f"step {name!r} needs {dep!r}, which is not a step of this list")
    # Depth-first search with colours; the stack gives the cycle's path.
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(order, white)
    stack: list[str] = []

    def visit(name: str) -> None:
        colour[name] = grey
        stack.append(name)
        for dep in needs.get(name, ()):
            if colour[dep] == grey:
                cycle = [*stack[stack.index(dep) :], dep]
                raise GraphError("the steps' needs form a cycle: " + " -> ".join(cycle))
            if colour[dep] == white:
                visit(dep)
        stack.pop()
        colour[name] = black

    for name in order:
        if colour[name] == white:
            visit(name)


@dataclass
class Skip:
    step: str
    reason: str


@dataclass
class GraphScheduler:
    """Which steps to start next. Pure state: the milestone flow tells it what started and how calls ended."""

    order: Sequence[str]
    needs: Mapping[str, Sequence[str]]
    max_parallel: int = 4
    on_failure: OnFailure = OnFailure.STOP
    state: dict[str, StepState] = field(default_factory=dict)
    stopping: str | None = None  # the step whose failure stopped the milestone (on_failure: stop)

    def __post_init__(self) -> None:
        check_graph(self.order, self.needs)
        for name in self.order:
            self.state.setdefault(name, StepState.PENDING)

    @property
    def running(self) -> list[str]:
        return [n for n in self.order if self.state[n] is StepState.RUNNING]

    def ready(self) -> list[str]:
        """Steps to start now, in request order, within the parallelism left."""
        if self.stopping is not None:
            return []
        room = self.max_parallel - len(self.running)
        out: list[str] = []
        for name in self.order:
            if room <= 0:
                break
            if self.state[name] is StepState.PENDING and all(
                self.state[d] is StepState.SUCCEEDED for d in self.needs.get(name, ())
            ):
                out.append(name)
                room -= 1
        return out

    def start(self, name: str) -> None:
        self.state[name] = StepState.RUNNING

    def finish(self, name: str, succeeded: bool) -> list[Skip]:
        """Record how ``name`` ended; returns the steps that can now never run, with why."""
        self.state[name] = StepState.SUCCEEDED if succeeded else StepState.FAILED
        if not succeeded and self.on_failure is OnFailure.STOP and self.stopping is None:
            self.stopping = name
        return self._skips()

    def mark(self, name: str, state: StepState) -> list[Skip]:
        """Set a state found in the records (a resumed run: succeeded calls are not run again)."""
        self.state[name] = state
        if state is StepState.FAILED and self.on_failure is OnFailure.STOP and self.stopping is None:
            self.stopping = name
        return self._skips()

    def _skips(self) -> list[Skip]:
        skipped: list[Skip] = []
        changed = True
        while changed:
            changed = False
            for name in self.order:
                if self.state[name] is not StepState.PENDING:
                    continue
                reason = self._skip_reason(name)
                if reason is not None:
                    self.state[name] = StepState.SKIPPED
                    skipped.append(Skip(name, reason))
                    changed = True
        return skipped

    def _skip_reason(self, name: str) -> str | None:
        for dep in self.needs.get(name, ()):
            if self.state[dep] in (StepState.FAILED, StepState.SKIPPED):
                return f"needs {dep!r}, which {self.state[dep].value}"
        if self.stopping is not None:
            return f"not started: step {self.stopping!r} failed (on_failure: stop)"
        return None

    def done(self) -> bool:
        return all(s not in (StepState.PENDING, StepState.RUNNING) for s in self.state.values())

    def succeeded(self) -> bool:
        return all(s is StepState.SUCCEEDED for s in self.state.values())


def needs_of(steps: Iterable[tuple[str, Sequence[str]]]) -> dict[str, tuple[str, ...]]:
    return {name: tuple(deps) for name, deps in steps}
