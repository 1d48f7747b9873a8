"""A task's metrics snapshots, made from its runs' event logs alone (definitions and formulas: docs/metrics.md).

    .runs/<task>/metrics.json                  every finished run's row and the task's aggregates (MTTR too)
    .runs/<task>/metrics/post-rollout.json     rates since the rollout marker (the gate feature flag on)
    .runs/<task>/metrics/completeness.json     per run, the share of required evidence present
    .runs/<task>/state.json                    the task's latest state
    out/<task>/metrics/mttr-delta.json         MTTR now against a chosen baseline window
    .runs/<task>/metrics/config.json           (input, optional) the rollout marker and the baseline window

``build_snapshots`` is pure (run digests + config → documents); ``render`` fixes the bytes (sorted keys, fixed
rounding, timestamps from events, never from the clock). A finishing run writes them (``write_snapshots``) and
``recompute`` rebuilds them without any cache: the same logs give the same bytes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from codex_orchestrator.clock import parse_utc
from codex_orchestrator.errors import RecordError, RequestError
from codex_orchestrator.records.atomic import write_atomic
from codex_orchestrator.records.metrics import DIGEST_VERSION, FAILED_RUN_STATUSES, RunDigest, digest_log
from codex_orchestrator.records.paths import EVENTS_FILENAME, METRICS_FILENAME

SNAPSHOT_SCHEMA = 1
STATE_FILENAME = "state.json"
METRICS_DIRNAME = "metrics"
OUT_DIRNAME = "out"
CONFIG_FILENAME = "config.json"
RATE_DIGITS = 4  # rates are rounded to this many decimals; durations are whole milliseconds
SnapshotName = Literal["metrics", "post-rollout", "completeness", "state", "mttr-delta"]
SNAPSHOT_NAMES: tuple[SnapshotName, ...] = ("metrics", "post-rollout", "completeness", "state", "mttr-delta")


@dataclass(frozen=True)
class SnapshotPaths:
    """Where a task's snapshots live: under the runs directory, and ``out/`` beside it (the workspace's)."""

    runs_dir: Path
    task_id: str

    @property
    def task_dir(self) -> Path:
        return self.runs_dir / self.task_id

    @property
    def metrics_dir(self) -> Path:
        return self.task_dir / METRICS_DIRNAME

    @property
    def out_dir(self) -> Path:
        return self.runs_dir.parent / OUT_DIRNAME / self.task_id / METRICS_DIRNAME

    @property
    def config(self) -> Path:
        return self.metrics_dir / CONFIG_FILENAME

    @property
    def digests(self) -> Path:
        return self.metrics_dir / ".digests"

    def files(self) -> dict[SnapshotName, Path]:
        return {
            "metrics": self.task_dir / METRICS_FILENAME,
            "post-rollout": self.metrics_dir / "post-rollout.json",
            "completeness": self.metrics_dir / "completeness.json",
            "state": self.task_dir / STATE_FILENAME,
            "mttr-delta": self.out_dir / "mttr-delta.json",
        }


class SnapshotConfig(BaseModel):
    """The choices the snapshots are made with (``metrics --rollout-at/--baseline``), recorded in them."""

    model_config = ConfigDict(extra="forbid")

    rollout_at: str | None = Field(default=None, description="the rollout marker; default: first gated run")
    baseline_from: str | None = Field(default=None, description="start of the baseline window (inclusive)")
    baseline_to: str | None = Field(default=None, description="end of the baseline window (exclusive)")
    current_from: str | None = Field(
        default=None, description="start of the current window; default: baseline_to"
    )

    @field_validator("rollout_at", "baseline_from", "baseline_to", "current_from")
    @classmethod
    def _utc(cls, value: str | None) -> str | None:
        return None if value is None else normalise_ts(value)


def normalise_ts(value: str) -> str:
    """An ISO 8601 time as the records write it (UTC, milliseconds, ``Z``); ValueError when it is not one."""
    from datetime import UTC

    stamp = parse_utc(value.strip())
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def load_config(path: Path) -> SnapshotConfig:
    if not path.exists():
        return SnapshotConfig()
    try:
        return SnapshotConfig.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as exc:
        raise RecordError(
            f"the snapshots' config is not valid ({exc}); fix or remove it", path=str(path)
        ) from exc


def save_config(path: Path, config: SnapshotConfig) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (config.model_dump_json(indent=2) + "\n").encode("utf-8"))


# -- pure: digests -> documents ------------------------------------------------------------------------------
def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, RATE_DIGITS) if whole else None


def _mean(values: list[int]) -> int | None:
    return round(sum(values) / len(values)) if values else None


def _before(stamp: str, bound: str | None) -> bool:
    return bound is None or parse_utc(stamp) < parse_utc(bound)


def _at_or_after(stamp: str, bound: str | None) -> bool:
    return bound is None or parse_utc(stamp) >= parse_utc(bound)


def _began(digest: RunDigest) -> str:
    # A finished run always has its end; one finished without ever starting counts from its end.
    return digest.started_at or digest.finished_at or ""


def _by_start(digests: list[RunDigest]) -> list[RunDigest]:
    return sorted(digests, key=lambda d: (parse_utc(_began(d)), d.run_id))


def _by_finish(digests: list[RunDigest]) -> list[RunDigest]:
    return sorted(digests, key=lambda d: (parse_utc(d.finished_at or ""), d.run_id))


def incidents(digests: list[RunDigest]) -> list[dict[str, Any]]:
    """Failure streaks in finishing order: from the first failed run's end to the next succeeded run's end.
    The last one has ``recovered_at`` None while no run has succeeded since."""
    found: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for digest in _by_finish(digests):
        if digest.status in FAILED_RUN_STATUSES and current is None:
            current = {"failed_run": digest.run_id, "failed_at": digest.finished_at, "failed_runs": 0}
            found.append(current)
        if digest.status in FAILED_RUN_STATUSES and current is not None:
            current["failed_runs"] += 1
        if digest.status == "succeeded" and current is not None:
            current["recovered_by"] = digest.run_id
            current["recovered_at"] = digest.finished_at
            current["ms"] = round(
                (parse_utc(digest.finished_at or "") - parse_utc(current["failed_at"])).total_seconds() * 1000
            )
            current = None
    if current is not None:
        current.update(recovered_by=None, recovered_at=None, ms=None)
    return found


def _mttr(found: list[dict[str, Any]]) -> dict[str, Any]:
    recovered = [int(i["ms"]) for i in found if i["ms"] is not None]
    return {"incidents": len(found), "recovered": len(recovered), "mttr_ms": _mean(recovered)}


def rollout_marker(digests: list[RunDigest], config: SnapshotConfig) -> dict[str, Any]:
    """The moment the gate went on: the configured one, or the start of the first run with the gate on."""
    if config.rollout_at is not None:
        return {"at": config.rollout_at, "chosen_by": "config", "run_id": None}
    gated = _by_start([d for d in digests if d.gate_enabled])
    if not gated:
        return {"at": None, "chosen_by": "none: no run with the gate on yet", "run_id": None}
    return {"at": _began(gated[0]), "chosen_by": "first-gated-run", "run_id": gated[0].run_id}


def _guardrails_passed(digest: RunDigest) -> int:
    return sum(1 for g in digest.guardrails if g.result == "passed")


def _row(d: RunDigest) -> dict[str, Any]:
    return {
        "run_id": d.run_id,
        "status": d.status,
        "exit_code": d.exit_code,
        "mode": d.mode,
        "gate_enabled": d.gate_enabled,
        "started_at": d.started_at,
        "finished_at": d.finished_at,
        "duration_ms": d.duration_ms,
        "tool_calls": d.tool_calls,
        "calls_by_status": d.calls_by_status,
        "attempts": d.attempts,
        "retries": d.retries,
        "escalations": d.escalations,
        "sandbox_denials": d.sandbox_denials,
        "approvals_asked": d.approvals_asked,
        "approvals_by_outcome": d.approvals_by_outcome,
        "approvals_by_source": d.approvals_by_source,
        "guardrails_passed": _guardrails_passed(d),
        "guardrails_failed": sum(1 for g in d.guardrails if g.result in ("failed", "error")),
        "review_verdict": (d.review or {}).get("verdict"),
        "chain_intact": d.chain_intact,
    }


def _head(task_id: str, digests: list[RunDigest]) -> dict[str, Any]:
    last = max((d.finished_at for d in digests if d.finished_at), key=parse_utc, default=None)
    return {
        "schema": SNAPSHOT_SCHEMA,
        "task_id": task_id,
        "generated_at": last,
        "definitions": "docs/metrics.md",
    }


def metrics_doc(task_id: str, runs: list[RunDigest]) -> dict[str, Any]:
    found = incidents(runs)
    durations = [d.duration_ms for d in runs if d.duration_ms is not None]
    sources: Counter[str] = Counter()
    for d in runs:
        sources.update(d.approvals_by_source)
    succeeded = sum(1 for d in runs if d.status == "succeeded")
    return {
        **_head(task_id, runs),
        "runs": [_row(d) for d in runs],
        "aggregates": {
            "runs": len(runs),
            "succeeded_runs": succeeded,
            "failed_runs": sum(1 for d in runs if d.status in FAILED_RUN_STATUSES),
            "success_rate": _rate(succeeded, len(runs)),
            "tool_calls": sum(d.tool_calls for d in runs),
            "attempts": sum(d.attempts for d in runs),
            "retries": sum(d.retries for d in runs),
            "escalations": sum(d.escalations for d in runs),
            "approvals_by_source": dict(sorted(sources.items())),
            "mean_run_duration_ms": _mean(durations),
            **_mttr(found),
            "open_incident": bool(found and found[-1]["recovered_at"] is None),
        },
    }


def post_rollout_doc(task_id: str, runs: list[RunDigest], config: SnapshotConfig) -> dict[str, Any]:
    marker = rollout_marker(runs, config)
    since = [d for d in runs if marker["at"] is not None and _at_or_after(_began(d), marker["at"])]
    calls = sum(d.tool_calls for d in since)
    denied_calls = sum(d.calls_by_status.get("denied", 0) for d in since)
    escalated = sum(d.escalations for d in since)
    results: Counter[str] = Counter()
    required: Counter[str] = Counter()
    by_name: dict[str, Counter[str]] = {}
    for d in since:
        for g in d.guardrails:
            results[g.result] += 1
            by_name.setdefault(g.name, Counter())[g.result] += 1
            if g.required:
                required[g.result] += 1
    verdicts = Counter(str((d.review or {}).get("verdict")) for d in since if d.review)

    def rates(counts: Counter[str]) -> dict[str, Any]:
        judged = counts["passed"] + counts["failed"] + counts["error"]  # a skipped guardrail judged nothing
        return {
            **{k: counts[k] for k in ("passed", "failed", "skipped", "error")},
            "pass_rate": _rate(counts["passed"], judged),
        }

    return {
        **_head(task_id, since),
        "marker": marker,
        "runs": {
            "total": len(since),
            "succeeded": sum(1 for d in since if d.status == "succeeded"),
            "failed": sum(1 for d in since if d.status in FAILED_RUN_STATUSES and d.status != "denied"),
            "denied": sum(1 for d in since if d.status == "denied"),
            "gate_off": sum(1 for d in since if not d.gate_enabled),
            "success_rate": _rate(sum(1 for d in since if d.status == "succeeded"), len(since)),
            "denial_rate": _rate(sum(1 for d in since if d.status == "denied"), len(since)),
            "escalation_rate": _rate(sum(1 for d in since if d.escalations), len(since)),
        },
        "tool_calls": {
            "total": calls,
            "denied": denied_calls,
            "escalated": escalated,
            "denial_rate": _rate(denied_calls, calls),
            "escalation_rate": _rate(escalated, calls),
        },
        "guardrails": {
            **rates(results),
            "required": rates(required),
            "by_name": {name: rates(by_name[name]) for name in sorted(by_name)},
        },
        "reviews": dict(sorted(verdicts.items())),
    }


def completeness_doc(task_id: str, runs: list[RunDigest]) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for d in runs:
        expected = sum(c.expected for c in d.checks)
        present = sum(c.present for c in d.checks)
        rows.append(
            {
                "run_id": d.run_id,
                "share": round(present / expected, RATE_DIGITS) if expected else 1.0,
                "checks": {c.name: {"expected": c.expected, "present": c.present} for c in d.checks},
                "missing": [c.name for c in d.checks if c.present < c.expected],
            }
        )
    required = {c.name: c.field for c in runs[0].checks} if runs else {}
    shares = [float(r["share"]) for r in rows]
    return {
        **_head(task_id, runs),
        "required": required,
        "runs": rows,
        "aggregates": {
            "runs": len(rows),
            "complete_runs": sum(1 for r in rows if not r["missing"]),
            "mean_share": round(sum(shares) / len(shares), RATE_DIGITS) if shares else None,
        },
    }


def _brief(d: RunDigest | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {"run_id": d.run_id, "status": d.status, "finished_at": d.finished_at}


def state_doc(task_id: str, runs: list[RunDigest]) -> dict[str, Any]:
    ordered = _by_finish(runs)
    latest = ordered[-1] if ordered else None
    streak = 0
    for d in reversed(ordered):
        if d.status == "succeeded":
            break
        streak += 1
    found = incidents(runs)
    open_incident = found[-1] if found and found[-1]["recovered_at"] is None else None
    return {
        **_head(task_id, runs),
        "runs": len(runs),
        "latest": None
        if latest is None
        else {
            **(_brief(latest) or {}),
            "exit_code": latest.exit_code,
            "started_at": latest.started_at,
            "gate_enabled": latest.gate_enabled,
            "chain_head": {"seq": latest.chain_head_seq, "hash": latest.chain_head_hash},
        },
        "last_success": _brief(next((d for d in reversed(ordered) if d.status == "succeeded"), None)),
        "last_failure": _brief(next((d for d in reversed(ordered) if d.status in FAILED_RUN_STATUSES), None)),
        "consecutive_failures": streak,
        "open_incident": open_incident,
    }


def mttr_delta_doc(task_id: str, runs: list[RunDigest], config: SnapshotConfig) -> dict[str, Any]:
    """MTTR of the current window against the baseline window; each incident counts where it began."""
    found = incidents(runs)
    if config.baseline_from is not None or config.baseline_to is not None:
        chosen_by = "config"
        base_from, base_to = config.baseline_from, config.baseline_to
        current_from = config.current_from or config.baseline_to
    else:
        marker = rollout_marker(runs, config)
        chosen_by = f"rollout marker ({marker['chosen_by']})" if marker["at"] else "none: no baseline chosen"
        base_from, base_to, current_from = None, marker["at"], marker["at"]

    def window(start: str | None, end: str | None) -> dict[str, Any]:
        inside = [i for i in found if _at_or_after(i["failed_at"], start) and _before(i["failed_at"], end)]
        return {"from": start, "to": end, **_mttr(inside)}

    defined = base_to is not None or base_from is not None
    baseline = window(base_from, base_to) if defined else {"from": None, "to": None, **_mttr([])}
    current = window(current_from, None) if defined else {"from": None, "to": None, **_mttr([])}
    b, c = baseline["mttr_ms"], current["mttr_ms"]
    return {
        **_head(task_id, runs),
        "definition": "MTTR: mean time from a failed run to the next succeeded run of the task, per failure "
        "streak (docs/metrics.md)",
        "window_chosen_by": chosen_by,
        "baseline": baseline,
        "current": current,
        "delta_ms": c - b if b is not None and c is not None else None,
        "ratio": round(c / b, RATE_DIGITS) if b and c is not None else None,
        "incidents": found,
    }


def build_snapshots(
    task_id: str, digests: list[RunDigest], config: SnapshotConfig
) -> dict[SnapshotName, Any]:
    """Every snapshot document of a task, from its runs' digests; only finished runs count."""
    runs = _by_start([d for d in digests if d.finished])
    return {
        "metrics": metrics_doc(task_id, runs),
        "post-rollout": post_rollout_doc(task_id, runs, config),
        "completeness": completeness_doc(task_id, runs),
        "state": state_doc(task_id, runs),
        "mttr-delta": mttr_delta_doc(task_id, runs, config),
    }


def render(document: Any) -> bytes:
    """The one way a snapshot becomes bytes: sorted keys, two-space indent, UTF-8, a final newline."""
    return (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# -- reading logs, writing files -----------------------------------------------------------------------------
def _run_dirs(paths: SnapshotPaths) -> list[Path]:
    folder = paths.task_dir / "cli"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (p / EVENTS_FILENAME).is_file())


def read_digests(paths: SnapshotPaths, *, cache: bool) -> list[RunDigest]:
    """One digest per run of the task. With ``cache``, a run whose log is unchanged (inode, size, mtime) since
    its digest was cached is not read again; ``recompute`` never uses the cache."""
    digests = []
    for run_dir in _run_dirs(paths):
        log = run_dir / EVENTS_FILENAME
        cached = paths.digests / f"{run_dir.name}.json"
        try:
            st = log.stat()
            sig = [DIGEST_VERSION, st.st_ino, st.st_size, st.st_mtime_ns]
            digest = _cached(cached, sig) if cache else None
            if digest is None:
                digest = digest_log(log.read_bytes(), run_dir.name)
                if cache and digest.finished:  # a running run's log still grows: no point caching it
                    paths.digests.mkdir(parents=True, exist_ok=True)
                    entry = {"sig": sig, "digest": digest.model_dump(mode="json")}
                    write_atomic(cached, json.dumps(entry).encode("utf-8"), durable=False)
        except OSError as exc:
            raise RecordError(f"cannot read the event log: {exc.strerror}", path=str(log)) from exc
        digests.append(digest)
    return digests


def _cached(path: Path, sig: list[int]) -> RunDigest | None:
    try:
        entry = json.loads(path.read_bytes())
        return RunDigest.model_validate(entry["digest"]) if entry.get("sig") == sig else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # no entry, or a damaged one: computed afresh


def compute(paths: SnapshotPaths, *, cache: bool = False) -> dict[SnapshotName, bytes]:
    config = load_config(paths.config)
    documents = build_snapshots(paths.task_id, read_digests(paths, cache=cache), config)
    return {name: render(doc) for name, doc in documents.items()}


@contextlib.contextmanager
def _task_lock(paths: SnapshotPaths) -> Iterator[None]:
    paths.metrics_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(paths.metrics_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RecordError(
            f"cannot lock the task's snapshots: {exc.strerror}", path=str(paths.metrics_dir)
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_snapshots(paths: SnapshotPaths) -> dict[SnapshotName, bytes]:
    """Compute and replace every snapshot of the task, under the task's lock (runs finishing at once)."""
    with _task_lock(paths):
        data = compute(paths, cache=True)
        files = paths.files()
        for name, content in data.items():
            path = files[name]
            path.parent.mkdir(parents=True, exist_ok=True)
            if name == "mttr-delta":
                _ignore_out_dir(path.parent)
            write_atomic(path, content)
        return data


def _ignore_out_dir(folder: Path) -> None:
    # out/<task>/metrics/ is in the workspace: keep it out of the agent's commits, as the runs directory is.
    ignore = folder / ".gitignore"
    if not ignore.exists():
        write_atomic(
            ignore, b"# metrics snapshots of codex-orchestrator; never committed\n*\n", durable=False
        )


CompareStatus = Literal["identical", "differs", "missing"]


def recompute(paths: SnapshotPaths) -> list[tuple[SnapshotName, Path, CompareStatus, bytes]]:
    """Rebuild every snapshot from the event logs alone and compare it with the file the runs wrote."""
    if not paths.task_dir.is_dir():
        raise RequestError(f"no task {paths.task_id!r} under {paths.runs_dir}", field="task")
    rows: list[tuple[SnapshotName, Path, CompareStatus, bytes]] = []
    files = paths.files()
    for name, content in compute(paths, cache=False).items():
        path = files[name]
        try:
            status: CompareStatus = "identical" if path.read_bytes() == content else "differs"
        except FileNotFoundError:
            status = "missing"
        rows.append((name, path, status, content))
    return rows


def write_recomputed(
    paths: SnapshotPaths, rows: list[tuple[SnapshotName, Path, CompareStatus, bytes]]
) -> None:
    with _task_lock(paths):
        for name, path, _status, content in rows:
            path.parent.mkdir(parents=True, exist_ok=True)
            if name == "mttr-delta":
                _ignore_out_dir(path.parent)
            write_atomic(path, content)


# -- tables for the Prefect UI -------------------------------------------------------------------------------
def _flatten(value: Any, prefix: str = "") -> list[dict[str, Any]]:
    if isinstance(value, dict) and value:
        rows: list[dict[str, Any]] = []
        for key in sorted(value):
            rows.extend(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return rows
    if isinstance(value, list):
        return [{"field": prefix, "value": f"{len(value)} item(s)"}]
    return [{"field": prefix, "value": "—" if value is None else str(value)}]


def snapshot_table(name: SnapshotName, document: dict[str, Any]) -> list[dict[str, Any]]:
    """A snapshot as table rows: one row per run for ``metrics`` and ``completeness``, else field / value."""
    if name == "metrics" and document.get("runs"):
        keys = (
            "run_id",
            "status",
            "gate_enabled",
            "duration_ms",
            "tool_calls",
            "attempts",
            "retries",
            "escalations",
            "approvals_asked",
            "guardrails_passed",
            "guardrails_failed",
            "chain_intact",
        )
        return [{k: row.get(k) for k in keys} for row in document["runs"]]
    if name == "completeness" and document.get("runs"):
        return [
            {"run_id": r["run_id"], "share": r["share"], "missing": ", ".join(r["missing"]) or "—"}
            for r in document["runs"]
        ]
    skip = {"schema", "definitions", "incidents"}
    return _flatten({k: v for k, v in document.items() if k not in skip}) or [{"field": "—", "value": "—"}]
