"""Run the pinned ``codex execpolicy check`` (the openai-codex-cli-bin wheel's binary) many times at once."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


def codex_binary() -> Path:
    from codex_cli_bin import bundled_codex_path

    return bundled_codex_path()


def check(
    binary: Path, rules: Sequence[Path], argv: Sequence[str], env: dict[str, str], resolve: bool = True
) -> dict[str, Any]:
    cmd = [str(binary), "execpolicy", "check"]
    for path in rules:
        cmd += ["--rules", str(path)]
    if resolve:
        cmd.append("--resolve-host-executables")
    cmd += ["--", *argv]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise AssertionError(f"codex failed ({done.returncode}) for {argv!r}: {done.stderr.strip()}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def check_many(
    binary: Path,
    jobs: Sequence[tuple[Sequence[Path], Sequence[str]]],
    codex_home: Path,
    workers: int | None = None,
) -> list[dict[str, Any]]:
    """Each job's codex answer, in order; ``workers`` processes at a time (default: 2 per core)."""
    codex_home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CODEX_HOME": str(codex_home), "RUST_LOG": "error"}
    with ThreadPoolExecutor(max_workers=workers or 2 * (os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda job: check(binary, job[0], job[1], env), jobs))
