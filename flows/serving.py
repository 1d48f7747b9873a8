"""Serving prefect.yaml's deployments from this machine, under names of their own (``<name>-served``).

``prefect deploy --all`` puts the deployments on a work pool; serving builds the same ones (entrypoint,
parameters, schedules, tags) from the same file, so the two never drift, and names them apart so that serving
never replaces a work-pool deployment of the same flow.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from prefect.deployments.runner import RunnerDeployment
from prefect.flows import Flow, load_flow_from_entrypoint
from prefect.schedules import Cron, Interval, RRule, Schedule

from codex_orchestrator.documents import MAX_YAML_BYTES, load_document
from codex_orchestrator.errors import RequestError
from flows.project import PROJECT_ROOT

SERVED_SUFFIX = "-served"


def served_name(name: str) -> str:
    return f"{name}{SERVED_SUFFIX}"


def read_spec(root: Path = PROJECT_ROOT) -> list[dict[str, Any]]:
    """The ``deployments`` of ``<root>/prefect.yaml``."""
    path = root / "prefect.yaml"
    # Bounded as a request file is: an inline request's aliases cannot make serving hang (documents.py).
    try:
        data = load_document(
            path.read_text(encoding="utf-8"),
            name=str(path),
            json_format=False,
            max_expanded_bytes=MAX_YAML_BYTES,
        )
    except yaml.YAMLError as exc:
        raise RequestError(f"{path} is not valid YAML: {exc}".splitlines()[0], field="deployments") from exc
    data = data or {}
    deployments = data.get("deployments")
    if not isinstance(deployments, list):
        raise RequestError(f"{path} has no 'deployments' list", field="deployments")
    return deployments


def schedule_of(spec: Mapping[str, Any]) -> Schedule:
    """One entry of a deployment's ``schedules`` in prefect.yaml, as a Prefect schedule."""
    timezone = str(spec["timezone"]) if spec.get("timezone") else None
    active = bool(spec.get("active", True))
    if "cron" in spec:
        return Cron(
            str(spec["cron"]), day_or=bool(spec.get("day_or", True)), timezone=timezone, active=active
        )
    if "interval" in spec:
        return Interval(float(spec["interval"]), timezone=timezone, active=active)
    if "rrule" in spec:
        return RRule(str(spec["rrule"]), timezone=timezone, active=active)
    raise RequestError(f"a schedule needs cron, interval or rrule: {dict(spec)}", field="schedules")


@contextmanager
def _cwd(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def served_deployments(
    root: Path = PROJECT_ROOT, names: Sequence[str] = (), *, with_schedules: bool = True
) -> list[RunnerDeployment]:
    """prefect.yaml's deployments (or those named), ready for ``prefect.serve``; entrypoints load from ``root``."""
    specs = read_spec(root)
    known = [str(s["name"]) for s in specs]
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise RequestError(
            f"no deployment named {', '.join(unknown)} in prefect.yaml",
            field="name",
            allowed=", ".join(known),
        )
    built = []
    with _cwd(root):
        for spec in specs:
            if names and spec["name"] not in names:
                continue
            flow: Flow[..., Any] = load_flow_from_entrypoint(str(spec["entrypoint"]))
            schedules = [schedule_of(s) for s in spec.get("schedules") or []] if with_schedules else []
            deployment = flow.to_deployment(
                name=served_name(str(spec["name"])),
                description=spec.get("description"),
                tags=list(spec.get("tags") or []),
                parameters=dict(spec.get("parameters") or {}),
                schedules=schedules or None,
            )
            assert isinstance(deployment, RunnerDeployment)  # the sync form of to_deployment
            built.append(deployment)
    return built


def serve_all(root: Path = PROJECT_ROOT, names: Sequence[str] = (), *, with_schedules: bool = True) -> None:
    """Serve the deployments from this process until interrupted (runs execute in subprocesses of it)."""
    from prefect import serve

    with _cwd(root):  # served runs load their entrypoints relative to the project root
        serve(*served_deployments(root, names, with_schedules=with_schedules))
