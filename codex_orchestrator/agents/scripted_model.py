"""A scripted stand-in for the LLM: a Responses-API server on loopback that plays a fixed script.

No model service is reachable from the machines this project is built and tested on, so tests, the demo and the
bench point the real codex binary at this server (``model_provider`` with ``base_url = http://127.0.0.1:PORT/v1``,
``wire_api = "responses"``). Only the model is scripted; codex, its protocol, our gate and the sandbox are real.

Script format (JSON or YAML file, or Python data): a list of *responses*, played one per ``POST /v1/responses``
request, in order. A response is either a list of output items (shorthand) or a mapping::

    {items: [ITEM, ...], usage: {input_tokens: N, output_tokens: N}}   # usage is optional
    {fault: http500}        # answer HTTP 500 with a JSON error body
    {fault: malformed}      # a 200 SSE stream whose first event's data is not JSON
    {fault: drop}           # send response.created, then close the connection without response.completed
    {delay_s: 0.5, items: [...]}   # wait before answering (for tests that interrupt a waiting model)

An ITEM is one of::

    {exec: "cat calc.py"}                 # function_call exec_command {"cmd": "cat calc.py"}
    {exec: "...", workdir: "sub", justification: "...", escalate: true}
                                          # the same with those exec_command arguments; escalate asks codex for
                                          # sandbox_permissions "require_escalated"
    {patch: "*** Begin Patch\\n*** Update File: calc.py\\n...*** End Patch"}
                                          # exec_command "apply_patch <<'EOF'\\n...\\nEOF" (codex turns it into a
                                          # fileChange item)
    {message: "done"}                     # an assistant message; a response with no function call ends the turn
    {reasoning: "thinking about it"}      # a reasoning item with that summary text
    {plan: [{step: "read", status: "completed"}, ...], explanation: "..."}
                                          # function_call update_plan
    {call: "tool_name", arguments: {...}} # any other function call, as is

Function-call ids are ``call_<response index>_<item index>`` (deterministic). When the script is exhausted the
server answers a final message ``"(scripted model: script exhausted)"`` so a turn always ends.

Every request body is recorded (``ScriptedModel.requests``) so tests can read what codex sent back, e.g. the
``function_call_output`` of a command. ``GET /v1/models`` answers an empty list.

Run standalone: ``python -m codex_orchestrator.agents.scripted_model SCRIPT --port N`` (port 0 picks a free one;
the chosen base URL is printed on stdout as its first line).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

EXHAUSTED_MESSAGE = "(scripted model: script exhausted)"
FAULTS = ("http500", "malformed", "drop")
_ITEM_KEYS = ("exec", "patch", "message", "reasoning", "plan", "call")


class ScriptError(ValueError):
    """The script is not in the documented format; the message names the response and item."""


@dataclass(frozen=True)
class Response:
    """One scripted model response: output items, or a fault, after an optional delay."""

    items: tuple[Mapping[str, Any], ...] = ()
    fault: str | None = None
    usage: Mapping[str, int] = field(default_factory=dict)
    delay_s: float = 0.0


def parse_script(data: Any) -> tuple[Response, ...]:
    """Validate a script (see the module docstring) into responses. Raises ScriptError."""
    if not isinstance(data, list):
        raise ScriptError("a script is a list of responses")
    out: list[Response] = []
    for index, raw in enumerate(data):
        where = f"response {index}"
        if isinstance(raw, list):
            raw = {"items": raw}
        if not isinstance(raw, dict):
            raise ScriptError(f"{where}: a response is a list of items or a mapping")
        unknown = set(raw) - {"items", "fault", "usage", "delay_s"}
        if unknown:
            raise ScriptError(f"{where}: unknown keys {sorted(unknown)}")
        fault = raw.get("fault")
        if fault is not None and fault not in FAULTS:
            raise ScriptError(f"{where}: fault must be one of {', '.join(FAULTS)}")
        items = raw.get("items", [])
        if not isinstance(items, list):
            raise ScriptError(f"{where}: items must be a list")
        for j, item in enumerate(items):
            if not isinstance(item, dict) or not any(key in item for key in _ITEM_KEYS):
                raise ScriptError(f"{where} item {j}: an item has one of the keys {', '.join(_ITEM_KEYS)}")
        usage = raw.get("usage", {})
        if not isinstance(usage, dict):
            raise ScriptError(f"{where}: usage must be a mapping")
        out.append(
            Response(
                items=tuple(items), fault=fault, usage=dict(usage), delay_s=float(raw.get("delay_s", 0.0))
            )
        )
    return tuple(out)


def load_script(path: Path) -> tuple[Response, ...]:
    """Read a script file (JSON, or YAML when the name ends in .yaml/.yml)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return parse_script(yaml.safe_load(text))
    return parse_script(json.loads(text))


def output_item(item: Mapping[str, Any], call_id: str) -> dict[str, Any]:
    """The Responses-API output item for one script item. Pure."""
    if "exec" in item:
        args: dict[str, Any] = {"cmd": item["exec"]}
        if "workdir" in item:
            args["workdir"] = item["workdir"]
        if item.get("escalate"):
            args["sandbox_permissions"] = "require_escalated"
        if "justification" in item:
            args["justification"] = item["justification"]
        return _function_call("exec_command", args, call_id)
    if "patch" in item:
        body = str(item["patch"]).rstrip("\n")
        return _function_call("exec_command", {"cmd": f"apply_patch <<'EOF'\n{body}\nEOF\n"}, call_id)
    if "plan" in item:
        plan_args: dict[str, Any] = {"plan": item["plan"]}
        if "explanation" in item:
            plan_args["explanation"] = item["explanation"]
        return _function_call("update_plan", plan_args, call_id)
    if "call" in item:
        return _function_call(str(item["call"]), dict(item.get("arguments", {})), call_id)
    if "reasoning" in item:
        return {
            "type": "reasoning",
            "id": f"rs_{call_id}",
            "summary": [{"type": "summary_text", "text": str(item["reasoning"])}],
        }
    return _message(str(item["message"]), call_id)


def _function_call(name: str, arguments: Mapping[str, Any], call_id: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": f"fc_{call_id}",
        "call_id": call_id,
        "name": name,
        "arguments": json.dumps(arguments),
    }


def _message(text: str, call_id: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": f"msg_{call_id}",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def sse_events(response: Response, index: int) -> list[dict[str, Any]]:
    """The SSE events (as JSON objects) that play one scripted response. Pure."""
    response_id = f"resp_{index}"
    events: list[dict[str, Any]] = [{"type": "response.created", "response": {"id": response_id}}]
    for j, item in enumerate(response.items):
        events.append(
            {
                "type": "response.output_item.done",
                "output_index": j,
                "item": output_item(item, f"call_{index}_{j}"),
            }
        )
    input_tokens = int(response.usage.get("input_tokens", 100))
    output_tokens = int(response.usage.get("output_tokens", 10))
    events.append(
        {
            "type": "response.completed",
            "response": {
                "id": response_id,
                "usage": {
                    "input_tokens": input_tokens,
                    "input_tokens_details": {"cached_tokens": int(response.usage.get("cached_tokens", 0))},
                    "output_tokens": output_tokens,
                    "output_tokens_details": {
                        "reasoning_tokens": int(response.usage.get("reasoning_tokens", 0))
                    },
                    "total_tokens": input_tokens + output_tokens,
                },
            },
        }
    )
    return events


class ScriptedModel:
    """The server: ``with ScriptedModel(script) as model: model.base_url`` (``http://127.0.0.1:PORT/v1``)."""

    def __init__(self, script: Sequence[Response] | list[Any], *, port: int = 0) -> None:
        self.script: tuple[Response, ...] = (
            tuple(script) if all(isinstance(r, Response) for r in script) else parse_script(list(script))
        )
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []  # each request's HTTP headers (tests check the key arrived)
        self._next = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def played(self) -> int:
        """How many responses have been handed out so far."""
        with self._lock:
            return self._next

    def start(self) -> ScriptedModel:
        self._thread = threading.Thread(target=self._server.serve_forever, name="scripted-model", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ScriptedModel:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def function_call_outputs(self) -> dict[str, str]:
        """call_id → the output codex sent back for it, over every request seen so far."""
        outputs: dict[str, str] = {}
        for body in list(self.requests):
            for entry in body.get("input", []) or []:
                if isinstance(entry, dict) and entry.get("type") == "function_call_output":
                    output = entry.get("output")
                    outputs[str(entry.get("call_id"))] = (
                        output if isinstance(output, str) else json.dumps(output)
                    )
        return outputs

    def provider_overrides(self, name: str = "scripted") -> dict[str, str | int]:
        """The ``codex_config`` overrides that point codex at this server (no retries: faults surface at once)."""
        prefix = f"model_providers.{name}"
        return {
            "model": "scripted-model",
            "model_provider": name,
            f"{prefix}.name": "scripted model",
            f"{prefix}.base_url": self.base_url,
            f"{prefix}.wire_api": "responses",
            f"{prefix}.request_max_retries": 0,
            f"{prefix}.stream_max_retries": 0,
        }

    def _take(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Response]:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            index = self._next
            self._next += 1
        if index < len(self.script):
            return index, self.script[index]
        return index, Response(items=({"message": EXHAUSTED_MESSAGE},))


def _handler_for(model: ScriptedModel) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read requests, not logs
            return

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._json(200, {"object": "list", "data": [], "models": []})
            else:
                self._json(404, {"error": {"message": f"no such path {self.path}"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not self.path.rstrip("/").endswith("/responses"):
                self._json(404, {"error": {"message": f"no such path {self.path}"}})
                return
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                self._json(400, {"error": {"message": "request body is not JSON"}})
                return
            index, response = model._take(body if isinstance(body, dict) else {}, dict(self.headers.items()))
            if response.delay_s:
                time.sleep(response.delay_s)
            if response.fault == "http500":
                self._json(
                    500,
                    {"error": {"message": "scripted model: internal server error", "type": "server_error"}},
                )
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            events = sse_events(response, index)
            if response.fault == "malformed":
                self._send_raw(b"event: response.created\ndata: {this is not json\n\n")
            elif response.fault == "drop":
                self._send_event(events[0])
            else:
                for event in events:
                    self._send_event(event)
            self.close_connection = True

        def _send_event(self, event: Mapping[str, Any]) -> None:
            self._send_raw(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())

        def _send_raw(self, data: bytes) -> None:
            try:
                self.wfile.write(data)
                self.wfile.flush()
            except OSError:  # codex went away mid-stream (an interrupted turn): nothing to tell it
                pass

        def _json(self, status: int, payload: Mapping[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Play a scripted model on loopback (Responses API, SSE).")
    parser.add_argument("script", type=Path, help="the script file (JSON or YAML; see the module docstring)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    args = parser.parse_args(argv)
    try:
        script = load_script(args.script)
    except (OSError, ValueError) as exc:
        print(f"scripted_model: {args.script}: {exc}", file=sys.stderr)
        return 2
    model = ScriptedModel(script, port=args.port).start()
    print(model.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        model.close()


if __name__ == "__main__":
    sys.exit(main())
