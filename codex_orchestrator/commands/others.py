"""Handlers for commands that write, reach the network, install packages or run code: what each one needs."""

from __future__ import annotations

import re

from codex_orchestrator.commands.args import guard, has_long, has_short, operands
from codex_orchestrator.commands.findings import EDIT, NETWORK, RUN, Findings, Handler, names
from codex_orchestrator.policy import Capability
from codex_orchestrator.shell_syntax import Word


def fixed(*caps: Capability, reason: str) -> Handler:
    def handler(name: str, args: list[Word], f: Findings, depth: int) -> None:
        for cap in caps:
            f.add(cap, f"{name} {reason}")

    return handler


_CURL_WRITES = names(
    "output remote-name remote-name-all output-dir dump-header cookie-jar config trace trace-ascii libcurl"
    " etag-save hsts alt-svc create-dirs stderr"
)


def curl(name: str, args: list[Word], f: Findings, depth: int) -> None:
    if not guard(name, args, f):
        return
    f.add(NETWORK, "curl reaches the network")
    if has_short(args, "oODcK", "AbCdEeFHmPQrTtUuwXxYyz") or has_long(args, _CURL_WRITES):
        f.add(EDIT, "curl writes the response or its state to a file")


def remote_copy(name: str, args: list[Word], f: Findings, depth: int) -> None:
    f.add(NETWORK, f"{name} copies over the network")
    f.add(EDIT, f"{name} writes the files it copies")
    if has_short(args, "oSFD", "cFiJloPS"):
        f.add(RUN, f"{name} -o/-S/-F/-D can run local programs")


def rsync(name: str, args: list[Word], f: Findings, depth: int) -> None:
    if not guard(name, args, f):
        return
    f.add(EDIT, "rsync writes its destination")
    if any(a.text.startswith("rsync://") or re.match(r"[^/]*:", a.text) for a in operands(args)):
        f.add(NETWORK, "rsync with a remote reaches the network")
    if has_short(args, "e", "BfMT") or has_long(args, ("rsh", "rsync-path")):
        f.add(RUN, "rsync -e/--rsync-path runs a program")


def netcat(name: str, args: list[Word], f: Findings, depth: int) -> None:
    f.add(NETWORK, f"{name} opens network connections")
    if has_short(args, "ec"):
        f.add(RUN, f"{name} -e/-c runs a program")


_PIP_NETWORK = names("install download wheel")
_NODE_NETWORK = names("install i ci add update up upgrade exec dlx x create")
_UV_NETWORK = names("add sync lock run tool remove venv python build publish")


def installs(name: str, f: Findings) -> None:
    f.add(NETWORK, f"{name} downloads packages")
    f.add(EDIT, f"{name} writes the packages it installs")


def pip(name: str, args: list[Word], f: Findings, depth: int) -> None:
    f.add(RUN, f"{name} runs Python code")
    if {a.text for a in operands(args)} & _PIP_NETWORK:  # any operand: global options may take values
        installs(name, f)


def uv(name: str, args: list[Word], f: Findings, depth: int) -> None:
    f.add(RUN, "uv runs Python code")
    if {a.text for a in operands(args)} & (_UV_NETWORK | _PIP_NETWORK):
        installs(name, f)


def node_pm(name: str, args: list[Word], f: Findings, depth: int) -> None:
    f.add(RUN, f"{name} runs package scripts")
    ops = {a.text for a in operands(args)}
    if (not ops and name == "yarn") or ops & _NODE_NETWORK:
        installs(name, f)


def docker(name: str, args: list[Word], f: Findings, depth: int) -> None:
    ops = [a.text for a in operands(args)]
    if ops[:1] == ["pull"]:
        f.add(NETWORK, f"{name} pull downloads an image")
        f.add(EDIT, f"{name} pull stores the image")
        return
    f.add(RUN, f"{name} runs containers with the daemon's privileges")
    if ops[:1] and ops[0] in ("run", "build", "create", "push", "login", "search"):
        f.add(NETWORK, f"{name} {ops[0]} may reach a registry")


PYTHON = re.compile(r"python(?:[23](?:\.[0-9]+)?)?")


def python(name: str, args: list[Word], f: Findings, depth: int) -> None:
    f.add(RUN, f"{name} runs code")
    texts = [a.text for a in args]
    if "-m" in texts:
        k = texts.index("-m")
        if texts[k + 1 : k + 2] == ["pip"] and texts[k + 2 : k + 3] and texts[k + 2] in _PIP_NETWORK:
            installs(f"{name} -m pip", f)


def perl(name: str, args: list[Word], f: Findings, depth: int) -> None:
    f.add(RUN, f"{name} runs code")
    if has_short(args, "i", "eEIMmx"):
        f.add(EDIT, f"{name} -i edits files in place")
