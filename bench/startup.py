"""Start-up: wall time of ``codex-orchestrator exec -- true`` (a sandboxed call that needs no pause) against
its floor, ``bwrap … true`` plus an interpreter start, with what lies between (imports, records).

The import rows end with ``os._exit(0)``: they time the import, not the interpreter's teardown of what it
imported (``exec`` freezes its start-up heap, so the collector skips that at exit).

Run from the repo root: ``.venv/bin/python bench/startup.py [--quick]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script (``python bench/startup.py``): make the repo root importable for ``bench._common``.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence

from bench._common import (
    BenchError,
    Stats,
    emit_report,
    interleaved_ms,
    note,
    parser,
    print_table,
    spread_target,
)
from codex_orchestrator.sandbox import SandboxMode, SandboxSpec, host_tmp_entries, wrap_argv

ROUNDS = 15
QUICK_ROUNDS = 2
WARMUP_ROUNDS = 2
QUICK_WARMUP_ROUNDS = 0
WAIT_S = 120.0
# Targets (issue 13): at most 0.35 s, and at most 1.3x the floor (bwrap around true + an interpreter start).
WALL_TARGET_S = 0.35
OVER_FLOOR_TARGET = 1.3
_MS_PER_S = 1000.0

EXEC = "codex-orchestrator exec -- true"
BWRAP = "bwrap (workspace-write) true"
PYTHON = "python -c pass (interpreter start)"
IMPORT = "python -c 'import codex_orchestrator.cli_exec'"
PYDANTIC = "python -c 'import pydantic; one model built'"
OTEL = "python -c 'import the OpenTelemetry SDK (traces)'"
EXEC_NONE = "codex-orchestrator exec --sandbox none -- true"
ROWS = (EXEC, BWRAP, PYTHON, IMPORT, PYDANTIC, OTEL, EXEC_NONE)
_EXIT = "; import os; os._exit(0)"
# pydantic's own import and its first model build (which loads its schema machinery and scans the installed
# distributions' entry points for plugins): what any pydantic user pays before the first model of its own.
_PYDANTIC = "import pydantic\nclass M(pydantic.BaseModel):\n    x: int = 0\nM()"
# What telemetry/ imports to write a run's traces.jsonl through the SDK, with the resource it creates.
_OTEL = (
    "import opentelemetry.sdk.trace, opentelemetry.sdk.trace.export\n"
    "opentelemetry.sdk.trace.TracerProvider(resource=opentelemetry.sdk.resources.Resource.create({}))"
)


def fresh(scratch: Path) -> Path:
    """A new, empty workspace: an ``exec`` run's end folds the task's metrics snapshots over every earlier
    run in the workspace, so one shared workspace would time a growing history, not the start-up."""
    return Path(tempfile.mkdtemp(dir=scratch, prefix="ws-"))


def run(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, timeout=WAIT_S, check=False)
    if done.returncode != 0:
        raise BenchError(f"{argv[0]} exited {done.returncode}: {done.stderr.decode(errors='replace')[-500:]}")


def main(argv: list[str] | None = None) -> int:
    options = parser(__doc__.splitlines()[0] if __doc__ else "start-up").parse_args(argv)
    rounds = QUICK_ROUNDS if options.quick else ROUNDS
    warmup = QUICK_WARMUP_ROUNDS if options.quick else WARMUP_ROUNDS
    cli = Path(sys.executable).with_name("codex-orchestrator")
    if not cli.exists():
        print(f"benchmark failed: {cli} is not installed (make install)", file=sys.stderr)
        return 1
    scratch = Path(tempfile.mkdtemp(prefix="codex-bench-startup-"))
    try:
        workspace = scratch / "ws"
        workspace.mkdir()
        env = {**os.environ}
        env.pop("PREFECT_API_URL", None)
        # Measure what an installed CLI costs: with its bytecode cached (pip compiles a wheel's modules on
        # install; an editable install writes the cache on first use, here in the warm-up rounds). Without
        # it (PYTHONDONTWRITEBYTECODE=1 in some shells) every start compiles ~200 modules, ~0.15-0.3 s.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        bwrap = wrap_argv(
            ["true"],
            SandboxSpec(SandboxMode.WORKSPACE_WRITE, workspace.resolve(), readable_paths=host_tmp_entries()),
            cwd=workspace.resolve(),
        )
        rows: dict[str, Callable[[], object]] = {
            EXEC: lambda: run([str(cli), "exec", "--", "true"], fresh(scratch), env),
            BWRAP: lambda: run(bwrap, workspace, env),
            PYTHON: lambda: run([sys.executable, "-c", "pass"], workspace, env),
            IMPORT: lambda: run(
                [sys.executable, "-c", "import codex_orchestrator.cli_exec" + _EXIT], workspace, env
            ),
            PYDANTIC: lambda: run([sys.executable, "-c", _PYDANTIC + _EXIT], workspace, env),
            OTEL: lambda: run([sys.executable, "-c", _OTEL + _EXIT], workspace, env),
            EXEC_NONE: lambda: run(
                [str(cli), "exec", "--sandbox", "none", "--", "true"], fresh(scratch), env
            ),
        }
        note(f"start-up: {len(rows)} rows x {rounds} rounds (+{warmup} warm-up), interleaved ...")
        samples = interleaved_ms(rows, rounds, warmup)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    stats = {row: Stats.of(samples[row]) for row in ROWS}
    print_table(
        f"Start-up ({rounds} rounds, interleaved; ms)",
        ["command", "median", "p95"],
        [[row, s.p50, s.p95] for row, s in stats.items()],
    )
    floor = [b + p for b, p in zip(samples[BWRAP], samples[PYTHON], strict=True)]
    print_table(
        "Where the time goes (differences of medians; ms)",
        ["cost of", "ms"],
        [
            ["importing what exec needs, over a bare interpreter", stats[IMPORT].p50 - stats[PYTHON].p50],
            ["  of which pydantic and its first model", stats[PYDANTIC].p50 - stats[PYTHON].p50],
            ["  of which the OpenTelemetry SDK", stats[OTEL].p50 - stats[PYTHON].p50],
            [
                "  the rest: our modules and the models they build",
                stats[IMPORT].p50 - stats[PYDANTIC].p50 - stats[OTEL].p50 + stats[PYTHON].p50,
            ],
            ["the run: records, probe, the call, teardown", stats[EXEC].p50 - stats[IMPORT].p50],
            ["the sandbox inside exec", stats[EXEC].p50 - stats[EXEC_NONE].p50],
        ],
    )
    targets = {
        "`exec -- true` wall time (s)": spread_target(
            [ms / _MS_PER_S for ms in samples[EXEC]], WALL_TARGET_S, unit=" s"
        ),
        "`exec -- true` / (bwrap true + interpreter start)": spread_target(
            [e / f for e, f in zip(samples[EXEC], floor, strict=True)], OVER_FLOOR_TARGET
        ),
    }
    emit_report("startup", {"rows": {row: s.as_dict() for row, s in stats.items()}}, targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
