"""Which instance a call runs on: a step's pin or labels, each instance's concurrency limit, instances lost.

Pure state, driven by the step loop (flows/workflow.py): ``choose`` the least busy instance that fits and has
room (None: wait for a slot), ``release`` when the call ends, ``mark_down`` when a host is lost so its calls
go elsewhere. A named shell session stays on the instance its first call got (affinity). Across runs the same
limits are held by Prefect global concurrency limits (tasks/tool_call.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from codex_orchestrator.request import InstanceSettings, Step


class NoInstance(Exception):
    """No instance that is up fits the step (pin, labels); the message says which were asked for."""


@dataclass
class Placement:
    instances: Sequence[InstanceSettings]
    busy: Counter[str] = field(default_factory=Counter)
    down: dict[str, str] = field(default_factory=dict)  # name -> why
    sessions: dict[str, str] = field(default_factory=dict)  # session name -> instance

    def candidates(self, step: Step) -> list[InstanceSettings]:
        up = [i for i in self.instances if i.name not in self.down]
        if step.session is not None and step.session in self.sessions:
            pinned = self.sessions[step.session]
            return [i for i in up if i.name == pinned]
        if step.instance is not None:
            return [i for i in up if i.name == step.instance]
        return [i for i in up if set(step.labels) <= set(i.labels)]

    def choose(self, step: Step) -> InstanceSettings | None:
        """The least busy fitting instance with a free slot; None while all that fit are full."""
        fits = self.candidates(step)
        if not fits:
            wanted = step.instance or (f"labels {step.labels}" if step.labels else "any instance")
            lost = f" (down: {', '.join(f'{n}: {why}' for n, why in self.down.items())})" if self.down else ""
            raise NoInstance(f"no instance that is up fits step {step.name!r} ({wanted}){lost}")
        free = [i for i in fits if self.busy[i.name] < i.max_concurrency]
        if not free:
            return None
        chosen = min(free, key=lambda i: (self.busy[i.name] / i.max_concurrency, fits.index(i)))
        self.busy[chosen.name] += 1
        if step.session is not None:
            self.sessions.setdefault(step.session, chosen.name)
        return chosen

    def release(self, name: str) -> None:
        self.busy[name] -= 1

    def mark_down(self, name: str, why: str) -> None:
        self.down.setdefault(name, why)
