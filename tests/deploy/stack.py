"""The "Run it on a schedule" steps of docs/deployments.md, run literally against a Prefect server on PostgreSQL.

``readme_steps`` reads the section's shell block; ``Stack`` runs its lines (background ones as processes it
owns), with the server's port and this venv's executables put in place of ``4200`` and ``.venv/bin/``.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import ROOT

SERVER_START_S = 180.0
README_PORT = "4200"


def readme_steps(readme: Path = ROOT / "docs" / "deployments.md") -> list[str]:
    """The command lines of the "Run it on a schedule" shell block (docs/deployments.md), comments stripped."""
    text = readme.read_text(encoding="utf-8")
    section = text.split("## Run it on a schedule", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "the schedule section of docs/deployments.md has no sh block"
    lines = []
    for raw in block.group(1).splitlines():
        line = re.sub(r"\s+#.*$", "", raw).strip()
        if line:
            lines.append(line)
    return lines


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Stack:
    """Processes started from documented lines (README, docs/deployments.md), sharing one environment."""

    home: Path
    env: dict[str, str]
    port: int
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    database_pid: int | None = None  # the PostgreSQL server's postmaster, when the stack has one

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def argv(self, line: str) -> list[str]:
        words = shlex.split(line.replace(README_PORT, str(self.port)))
        bin_dir = Path(sys.executable).parent
        return [
            str(bin_dir / w.removeprefix(".venv/bin/")) if w.startswith(".venv/bin/") else w for w in words
        ]

    def run_line(self, line: str, *, cwd: Path, name: str | None = None, timeout: float = 300) -> str:
        """One documented line: ``export`` sets the environment, ``... &`` starts a process, others must exit 0."""
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            self.env[key] = value.replace(README_PORT, str(self.port))
            return ""
        if line.endswith("&"):
            argv = self.argv(line.removesuffix("&").strip())
            label = name or f"process-{len(self.processes)}"
            log = (self.home / f"{label}.log").open("wb")
            self.processes[label] = subprocess.Popen(
                argv,
                cwd=cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            return ""
        done = subprocess.run(
            self.argv(line), cwd=cwd, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, (
            f"{line}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
        return done.stdout

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + SERVER_START_S
        server = next(iter(self.processes.values()))
        while True:
            assert server.poll() is None, self.logs()
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the Prefect server did not come up\n" + self.logs()
            time.sleep(0.2)

    def logs(self) -> str:
        return "\n".join(
            f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.home.glob("*.log")
        )

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            process = self.processes[name]
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()
