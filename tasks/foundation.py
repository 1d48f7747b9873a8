"""Foundation tasks: load and fingerprint the run's instruction files."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from codex_orchestrator.instructions import load_instructions
from codex_orchestrator.records.manifest import InstructionRecord
from codex_orchestrator.records.store import RunRef


@task(name="load-instructions", cache_policy=NO_CACHE, persist_result=False)
def load_instruction_files(run: RunRef, extra: list[str]) -> list[InstructionRecord]:
    files = load_instructions(Path(run.workspace), extra)
    return [InstructionRecord(path=f.path, sha256=f.sha256, bytes=f.size_bytes) for f in files]
