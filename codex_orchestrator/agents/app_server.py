"""``codex app-server`` in our sandbox, spoken to with OpenAI's own client (``openai_codex.CodexClient``).

What we use of the SDK: the process's stdio transport, the request/response routing, ``initialize`` and the typed
``thread/start``, ``thread/resume``, ``turn/start`` and ``turn/interrupt``. What we change: its reader thread
answers each server request with ``approval_handler(...)`` on that one thread, so a question waiting for a person
would hold up every other message (including the answer to our own ``turn/interrupt``). ``GatedCodexClient``
replaces that loop (``_reader_loop``, private in the pinned 0.163.0 — the pin and tests/agents keep it honest):
server requests and notifications go, in order, into one ``inbox`` that the step's driver reads; the driver answers
each request later with ``respond`` from whatever thread decided it. Responses are still routed by the SDK.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openai_codex.client import CodexClient, CodexConfig

from codex_orchestrator.agents.bridge import Endpoint
from codex_orchestrator.agents.errors import AgentIncompatible, AgentUnavailable
from codex_orchestrator.agents.protocol import REQUIRED_CLIENT_METHODS, REQUIRED_SERVER_REQUESTS
from codex_orchestrator.sandbox import SandboxSpec, wrap_argv

# How long a codex binary may take to print its schema (a named binary is checked once per step).
SCHEMA_CHECK_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ServerRequest:
    """A request codex sent us (an approval); answer it with ``GatedCodexClient.respond(request.id, ...)``."""

    id: Any
    method: str
    params: dict[str, Any]


@dataclass(frozen=True)
class ServerNotification:
    method: str
    params: dict[str, Any]


@dataclass(frozen=True)
class StreamClosed:
    """codex's stdout ended or broke: the process is gone (or about to be)."""

    error: str


InboxItem = ServerRequest | ServerNotification | StreamClosed


class GatedCodexClient(CodexClient):
    """A ``CodexClient`` whose server requests are answered asynchronously by the gate (see module docstring)."""

    def __init__(self, config: CodexConfig) -> None:
        # The handler is never called (``_reader_loop`` below does not); should it ever be, it refuses.
        super().__init__(config, approval_handler=lambda _method, _params: {"decision": "cancel"})
        self.inbox: queue.Queue[InboxItem] = queue.Queue()

    def _reader_loop(self) -> None:
        try:
            while True:
                msg = self._read_message()
                method = msg.get("method")
                params = msg.get("params")
                params = params if isinstance(params, dict) else {}
                if isinstance(method, str) and "id" in msg:
                    self.inbox.put(ServerRequest(msg["id"], method, params))
                elif isinstance(method, str):
                    self.inbox.put(ServerNotification(method, params))
                else:
                    self._router.route_response(msg)
        except BaseException as exc:
            self._router.fail_all(exc)
            self.inbox.put(StreamClosed(f"{type(exc).__name__}: {exc}"))

    def respond(self, request_id: Any, result: Mapping[str, Any]) -> None:
        """Answer one server request (thread-safe: the SDK serialises writes)."""
        self._write_message({"id": request_id, "result": dict(result)})

    def refuse(self, request_id: Any, message: str) -> None:
        """Answer a server request we do not serve with a JSON-RPC error (codex treats it as declined)."""
        self._write_message({"id": request_id, "error": {"code": -32601, "message": message}})

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def stderr_tail(self, limit: int = 20) -> str:
        return self._stderr_tail(limit)

    def process(self) -> subprocess.Popen[str] | None:
        return self._proc


def pinned_codex() -> Path:
    """The codex binary that comes with the project's install (``openai-codex-cli-bin``)."""
    try:
        from codex_cli_bin import bundled_codex_path
    except ImportError as exc:  # pragma: no cover - a broken install
        raise AgentUnavailable("the pinned codex is not installed (pip install openai-codex)") from exc
    return Path(bundled_codex_path())


def bundled_path_dirs() -> tuple[str, ...]:
    """Helper binaries that come with the pinned codex (rg), for PATH."""
    try:
        from codex_cli_bin import bundled_path_dir
    except (ImportError, AttributeError):  # pragma: no cover
        return ()
    found = bundled_path_dir()
    return (str(found),) if found is not None else ()


def resolve_binary(named: str | None) -> Path:
    """The codex to run: ``named`` (a path or a name on PATH) or the pinned one. AgentUnavailable if missing."""
    if named is None:
        path = pinned_codex()
    else:
        found = shutil.which(named) if "/" not in named else named
        if found is None:
            raise AgentUnavailable(f"codex binary {named!r} not found")
        path = Path(found)
    if not path.is_file() or not os.access(path, os.X_OK):
        raise AgentUnavailable(f"codex binary {path} is missing or not executable")
    return path.resolve()


def check_protocol(binary: Path, scratch: Path) -> None:
    """Refuse a binary whose app-server protocol lacks what the driver needs (its own schema says so)."""
    out = scratch / "schema-check"
    try:
        done = subprocess.run(
            [str(binary), "app-server", "generate-json-schema", "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=SCHEMA_CHECK_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AgentUnavailable(f"codex binary {binary} does not run: {exc}") from exc
    try:
        client = json.loads((out / "ClientRequest.json").read_text())
        server = json.loads((out / "ServerRequest.json").read_text())
    except (OSError, ValueError) as exc:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise AgentIncompatible(
            f"codex binary {binary} has no usable `app-server generate-json-schema` ({tail[0]})"
        ) from exc
    finally:
        shutil.rmtree(out, ignore_errors=True)
    missing = [m for m in REQUIRED_CLIENT_METHODS if m not in _methods(client)]
    missing += [m for m in REQUIRED_SERVER_REQUESTS if m not in _methods(server)]
    if missing:
        raise AgentIncompatible(
            f"codex binary {binary} lacks app-server methods the gate needs: {', '.join(missing)}"
        )


def _methods(schema: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    for option in schema.get("oneOf", []):
        for value in option.get("properties", {}).get("method", {}).get("enum", []):
            found.add(value)
    return found


def config_value(value: str | int | float | bool) -> str:
    """A ``codex_config`` value as codex's ``-c key=value`` wants it (the value is TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)  # a TOML basic string


def launch_argv(
    binary: Path,
    overrides: Sequence[str],
    *,
    sandbox: SandboxSpec | None,
    endpoint: Endpoint | None,
    bridge_socket: Path | None,
    keep_env: Sequence[str],
) -> list[str]:
    """The command line: codex app-server with ``-c`` overrides, started by the bridge (which gives it only the
    ``keep_env`` variables and, when the sandbox has no network, relays its model endpoint) in our sandbox."""
    codex = [str(binary)]
    for override in overrides:
        codex += ["-c", override]
    codex += ["app-server", "--listen", "stdio://"]
    inner = [
        sys.executable,
        "-m",
        "codex_orchestrator.agents.bridge",
        "--keep-env",
        ",".join(sorted(keep_env)),
    ]
    if endpoint is not None and bridge_socket is not None:
        host, port = endpoint.inside_listen
        inner += ["--listen", f"{host}:{port}", "--unix", str(bridge_socket)]
    inner += ["--", *codex]
    return list(wrap_argv(inner, sandbox)) if sandbox is not None else inner


def start_client(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> GatedCodexClient:
    """Start codex app-server and complete ``initialize``; AgentUnavailable when it cannot start."""
    client = GatedCodexClient(CodexConfig(launch_args_override=tuple(argv), cwd=str(cwd), env=dict(env)))
    try:
        client.start()
    except OSError as exc:
        raise AgentUnavailable(f"codex cannot start: {exc}") from exc
    return client
