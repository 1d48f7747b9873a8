"""The per-call cost table (issue 13) from one `make bench` run: every figure, its target, met or missed.

Reads the JSON line each benchmark script printed last (``python bench/summary.py OUT...``, one file of
captured stdout per script) and prints one table in the issue's order, with each figure's spread.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# (the figure, the script, the script's target name); ``{n}`` stands for a size the script chose.
FIGURES = (
    (
        "tool-call task in a flow, sandbox none / @task(ShellOperation.run()) in a flow",
        "gate_overhead",
        "tool-call task in flow, sandbox none / @task(ShellOperation.run())",
    ),
    (
        "tool-call task in a flow, workspace-write / @task(ShellOperation.run()) in a flow",
        "gate_overhead",
        "tool-call task in flow, workspace-write / @task(ShellOperation.run())",
    ),
    (
        "gate.run workspace-write / gate.run sandbox none (the sandbox's price)",
        "gate_overhead",
        "gate.run workspace-write / gate.run sandbox none",
    ),
    (
        "64 local sessions printing at once: delivery p95 / raw select loop",
        "exec_latency",
        "local sessions printing at once: delivery p95 / raw select loop",
    ),
    ("local bulk throughput / raw PTY read", "exec_latency", "local bulk throughput / raw PTY read"),
    ("record cost per call at 10,000 calls / at 100", "gate_overhead", "record us/call at "),
    ("`codex-orchestrator exec -- true` wall time (s)", "startup", "`exec -- true` wall time (s)"),
    (
        "`exec -- true` / (`bwrap ... true` + interpreter start)",
        "startup",
        "`exec -- true` / (bwrap true + interpreter start)",
    ),
)


def last_json(path: Path) -> dict[str, Any] | None:
    for line in reversed(path.read_text(encoding="utf-8").splitlines()):
        if line.startswith("{"):
            report: dict[str, Any] = json.loads(line)
            return report
    return None


def find(reports: dict[str, dict[str, Any]], bench: str, name: str) -> dict[str, Any] | None:
    targets: dict[str, dict[str, Any]] = reports.get(bench, {}).get("targets", {})
    for key, target in targets.items():
        if name in key:
            return target
    return None


def main(argv: list[str]) -> int:
    reports = {}
    for arg in argv:
        report = last_json(Path(arg))
        if report is not None:
            reports[report["bench"]] = report
    rows = []
    for figure, bench, name in FIGURES:
        target = find(reports, bench, name)
        if target is None:
            rows.append((figure, "not measured", "", "", "MISSING"))
            continue
        goal = f"{'>=' if figure.startswith('local bulk') else '<='} {target['target']}"
        spread = target.get("spread")
        rows.append(
            (
                figure,
                f"{target['ratio']:.3f}",
                goal,
                f"{spread[0]:.3f}-{spread[1]:.3f} ({target['rounds']})" if spread else "",
                "met" if target["met"] else "MISSED",
            )
        )
    headers = ("figure (issue 13)", "median", "target", "spread (rounds)", "")
    widths = [max(len(str(r[i])) for r in (headers, *rows)) for i in range(len(headers))]
    print("\nPer-call cost, this run")
    for row in (headers, tuple("-" * w for w in widths), *rows):
        print(
            "  ".join(
                str(v).ljust(w) if i == 0 else str(v).rjust(w)
                for i, (v, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    return 0 if all(r[1] != "not measured" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
