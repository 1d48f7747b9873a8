"""Hostile request files: how fast each is refused (issue 21), in-process and through the CLI.

Rows: the nine-level YAML alias bomb, a request nested 100,000 levels deep in YAML and in JSON, and the largest
YAML file read at all (1 MiB) made of one-letter values, the most nodes per byte (refused as over the request's
size limit once parsed). Baselines, timed
in the same interleaved rounds: in-process, loading a small valid request; through the CLI, ``run`` of a request
file that does not exist (the same interpreter start and imports, refused at the read). Target: each refusal
within a second through the CLI, and in-process within 100x a valid request's load.

Run from the repo root: ``.venv/bin/python bench/hostile_requests.py [--quick]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script (``python bench/hostile_requests.py``): make the repo root importable for ``bench._common``.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import subprocess
import tempfile
from collections.abc import Callable

from bench._common import Stats, Target, emit_report, interleaved_ms, note, parser, print_table, spread_target
from codex_orchestrator.documents import MAX_YAML_BYTES
from codex_orchestrator.errors import RequestError
from codex_orchestrator.request import load_request

ROUNDS = 15
QUICK_ROUNDS = 2
WARMUP_ROUNDS = 1
CLI_TIMEOUT_S = 120.0
REFUSAL_TARGET_S = 1.0
IN_PROCESS_OVER_VALID_TARGET = 100.0
_MS_PER_S = 1000.0
VALID = 'task: bomb\nworkspace: .\nsteps:\n  - {name: s, command: "true"}\n'


def alias_bomb(levels: int = 9) -> str:
    """``a0: &a0 [x,...]`` then each level nine aliases of the one before: 9^levels values once expanded."""
    lines = ["a0: &a0 [x,x,x,x,x,x,x,x,x]"]
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n" + VALID


def nested(depth: int, *, json_format: bool) -> str:
    """A valid request whose ``goal`` is ``depth`` nested empty lists."""
    goal = "[" * depth + "]" * depth
    if json_format:
        return f'{{"task": "deep", "workspace": ".", "steps": [{{"name": "s", "command": "true"}}], "goal": {goal}}}'
    return f"task: deep\nworkspace: .\nsteps: [{{name: s, command: 'true'}}]\ngoal: {goal}\n"


def many_values(size: int) -> str:
    """A request file of about ``size`` bytes that is all one-letter list items: the most YAML nodes per byte."""
    count = (size - len(VALID) - 16) // 2
    return VALID + "profile: [" + "x," * (count - 1) + "x]\n"


HOSTILE = {
    "9-level alias bomb (YAML)": ("bomb.yaml", alias_bomb()),
    "100,000 levels deep (YAML)": ("deep.yaml", nested(100_000, json_format=False)),
    "100,000 levels deep (JSON)": ("deep.json", nested(100_000, json_format=True)),
    "1 MiB of one-letter values (YAML)": ("many.yaml", many_values(MAX_YAML_BYTES)),
}
VALID_ROW = "valid small request (baseline)"
MISSING_ROW = "missing request file (baseline)"


def _refused(path: Path) -> Callable[[], object]:
    def call() -> object:
        try:
            load_request(path)
        except RequestError:
            return None
        raise SystemExit(f"{path.name} was not refused")

    return call


def _cli(path: Path, expect: int = 2) -> Callable[[], object]:
    def call() -> object:
        done = subprocess.run(
            [sys.executable, "-m", "codex_orchestrator.cli", "run", str(path)],
            cwd=path.parent,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != expect or done.stderr.count("\n") != 1:
            raise SystemExit(f"{path.name}: exit {done.returncode}: {done.stderr[-500:]}")
        return None

    return call


def main() -> int:
    args = parser(__doc__ or "").parse_args()
    rounds = QUICK_ROUNDS if args.quick else ROUNDS
    with tempfile.TemporaryDirectory(prefix="hostile-requests-") as tmp:
        root = Path(tmp)
        paths = {}
        for row, (name, text) in HOSTILE.items():
            paths[row] = root / name
            paths[row].write_text(text, encoding="utf-8")
        valid = root / "valid.yaml"
        valid.write_text(VALID, encoding="utf-8")
        note(f"in-process: {rounds} rounds")
        inner = interleaved_ms(
            {VALID_ROW: lambda: load_request(valid), **{row: _refused(p) for row, p in paths.items()}},
            rounds,
            WARMUP_ROUNDS,
        )
        note(f"through the CLI: {rounds} rounds")
        outer = interleaved_ms(
            {MISSING_ROW: _cli(root / "missing.yaml"), **{row: _cli(p) for row, p in paths.items()}},
            rounds,
            WARMUP_ROUNDS,
        )
    inner_stats = {row: Stats.of(samples) for row, samples in inner.items()}
    outer_stats = {row: Stats.of(samples) for row, samples in outer.items()}
    print_table(
        "Refusal time of hostile request files (ms, p50 / p95)",
        ["request", "in-process p50", "p95", "CLI `run` p50", "p95"],
        [
            [row, inner_stats[row].p50, inner_stats[row].p95, outer_stats[row].p50, outer_stats[row].p95]
            for row in HOSTILE
        ]
        + [
            [VALID_ROW, inner_stats[VALID_ROW].p50, inner_stats[VALID_ROW].p95, "", ""],
            [MISSING_ROW, "", "", outer_stats[MISSING_ROW].p50, outer_stats[MISSING_ROW].p95],
        ],
    )
    targets: dict[str, Target] = {}
    for row in HOSTILE:
        targets[f"{row}: CLI refusal (s)"] = spread_target(
            [ms / _MS_PER_S for ms in outer[row]], REFUSAL_TARGET_S, unit="s"
        )
        targets[f"{row}: in-process over a valid request"] = spread_target(
            [value / base for value, base in zip(inner[row], inner[VALID_ROW], strict=True)],
            IN_PROCESS_OVER_VALID_TARGET,
        )
    results = {
        "in_process_ms": {row: stats.as_dict() for row, stats in inner_stats.items()},
        "cli_ms": {row: stats.as_dict() for row, stats in outer_stats.items()},
    }
    emit_report("hostile_requests", results, targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
