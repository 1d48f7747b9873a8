"""The README is a front page, and every command it shows runs as written.

Its shell blocks run in order, one line at a time, as a new user would type them in the project root: here a
scratch directory (this venv's executables in place of ``.venv/bin/``, a free port in place of ``4200``, a
scratch path in place of ``/tmp/hello``), with ``hello.yaml`` written from the README's own YAML block.
``make`` lines run as ``make -n`` in the project: the demo and the suite they start are what ``make test`` runs
(tests/flows/test_demo_output.py runs the demo). docs/deployments.md's steps run in tests/deploy.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.deploy.stack import Stack, free_port

README = ROOT / "README.md"
FRONT_PAGE_MAX_BYTES = 10 * 1024
SECTIONS = ["Two commands", "What the demo shows", "A minimal request", "Where the UI is", "Documentation"]
HELLO = "/tmp/hello"


def _readme() -> str:
    return README.read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", _readme(), re.S)


def command_lines(block: str) -> list[str]:
    lines = []
    for raw in block.splitlines():
        line = re.sub(r"(^|\s+)#.*$", "", raw).strip()
        if line:
            lines.append(line)
    return lines


def test_the_readme_is_a_front_page() -> None:
    text = _readme()
    size = len(text.encode("utf-8"))
    assert size <= FRONT_PAGE_MAX_BYTES, f"README.md is {size} bytes: move reference text into docs/"
    headings = re.findall(r"(?m)^## (.+)$", text)
    assert headings == SECTIONS


def test_every_docs_page_is_linked_from_the_readme_and_every_link_resolves() -> None:
    links = re.findall(r"\]\(([^)#]+)\)", _readme())
    assert all((ROOT / link).exists() for link in links), [
        link for link in links if not (ROOT / link).exists()
    ]
    pages = {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md")}
    assert pages - set(links) == set()


def test_links_between_docs_pages_resolve() -> None:
    broken = []
    for page in (ROOT / "docs").glob("*.md"):
        for link in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if not (page.parent / link).exists():
                broken.append(f"{page.name}: {link}")
    assert broken == []


@pytest.mark.sandbox
def test_every_readme_command_runs_as_written(tmp_path: Path) -> None:
    shell = blocks("sh")
    assert [command_lines(b)[0].split()[0] for b in shell] == ["make", "mkdir", ".venv/bin/prefect"]
    (request,) = blocks("yaml")
    scratch = tmp_path / "project"
    scratch.mkdir()
    hello = tmp_path / "hello"
    (scratch / "hello.yaml").write_text(request.replace(HELLO, str(hello)), encoding="utf-8")

    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    stack = Stack(home=tmp_path, env=env, port=port)
    outputs: dict[str, str] = {}
    try:
        for block in shell:
            for line in command_lines(block):
                if line.startswith("make "):
                    target = shlex.split(line)[1:]
                    done = subprocess.run(
                        ["make", "-n", *target], cwd=ROOT, capture_output=True, text=True, timeout=120
                    )
                    assert done.returncode == 0, f"{line}: {done.stderr}"
                    continue
                outputs[line] = stack.run_line(line.replace(HELLO, str(hello)), cwd=scratch, timeout=600)
                if line.endswith("&"):
                    stack.wait_healthy()
    finally:
        stack.stop()
    (listing,) = [out for line, out in outputs.items() if " runs " in line]
    assert "hello" in listing and "succeeded" in listing, listing
    assert (hello / "NOTES.md").read_text() == "hello from a gated run\n"
    assert stack.env["PREFECT_API_URL"] == f"http://127.0.0.1:{port}/api"
