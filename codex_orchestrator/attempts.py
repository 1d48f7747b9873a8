"""One attempt of a tool call the orchestrator performs itself (file edits, fetches), the attempt's result, and
the subscriber that turns PTY output into ``output`` events."""

from __future__ import annotations

import codecs
import urllib.error
import urllib.request
from dataclasses import dataclass

from codex_orchestrator.call_recorder import CallRecorder
from codex_orchestrator.exec.guard import GuardSwitch
from codex_orchestrator.exec.session import OutputEvent
from codex_orchestrator.records import events as ev
from codex_orchestrator.toolcall import ToolCallSpec

# How much of a call's output the manifest keeps (the event log has all of it).
OUTPUT_TAIL_BYTES = 4096
FETCH_MAX_BYTES = 10 * 1024 * 1024


@dataclass
class AttemptResult:
    exit_code: int | None = None
    timed_out: bool = False
    error: BaseException | None = None
    output: str = ""
    output_bytes: int = 0
    omitted_bytes: int = 0
    duration_ms: float = 0.0
    session_id: str | None = None
    guard: GuardSwitch | None = None
    mode: str = "streaming"

    @property
    def ok(self) -> bool:
        return self.error is None and not self.timed_out and self.exit_code == 0


def run_edit(spec: ToolCallSpec) -> AttemptResult:
    assert spec.path is not None and spec.content is not None
    spec.path.parent.mkdir(parents=True, exist_ok=True)
    with spec.path.open("a" if spec.append else "w", encoding="utf-8") as handle:
        handle.write(spec.content)
    size = len(spec.content.encode("utf-8"))
    return AttemptResult(exit_code=0, output=f"wrote {size} bytes", output_bytes=size)


def run_fetch(spec: ToolCallSpec) -> AttemptResult:
    assert spec.url is not None
    try:
        with urllib.request.urlopen(spec.url, timeout=spec.timeout_s) as response:
            body = response.read(FETCH_MAX_BYTES)
            status = int(getattr(response, "status", 200) or 200)
    except urllib.error.HTTPError as exc:
        return AttemptResult(exit_code=1, output=f"HTTP {exc.code}: {exc.reason}")
    except (urllib.error.URLError, TimeoutError) as exc:
        return AttemptResult(exit_code=1, output=f"fetch failed: {exc}")
    if spec.path is not None:
        spec.path.parent.mkdir(parents=True, exist_ok=True)
        spec.path.write_bytes(body)
    text = body[-OUTPUT_TAIL_BYTES:].decode("utf-8", errors="replace")
    return AttemptResult(exit_code=0 if status < 400 else 1, output=text, output_bytes=len(body))


class OutputRecorder:
    """Session subscriber: turns PTY output into ``output`` events (UTF-8 decoded across chunk borders)."""

    def __init__(self, recorder: CallRecorder, tool_call_id: str) -> None:
        self._recorder = recorder
        self._call_id = tool_call_id
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._last: OutputEvent | None = None

    def __call__(self, event: OutputEvent) -> None:
        self._last = event
        text = self._decoder.decode(event.data)
        if text:
            self._emit(event.session_id, event.stream, event.seq, text)

    def flush(self) -> None:
        tail = self._decoder.decode(b"", final=True)
        if tail and self._last is not None:
            self._emit(self._last.session_id, self._last.stream, self._last.seq, tail)

    def _emit(self, session_id: str, stream: str, seq: int, text: str) -> None:
        self._recorder.events.emit(
            ev.Output(
                tool_call_id=self._call_id, session_id=session_id, stream=stream, chunk_seq=seq, data=text
            )
        )
