"""One attempt of a tool call the orchestrator performs itself (file edits, fetches), the attempt's result, and
the subscriber that turns PTY output into ``output`` events."""

from __future__ import annotations

import codecs
from collections import deque
from dataclasses import dataclass

from codex_orchestrator.call_recorder import CallRecorder
from codex_orchestrator.errors import FetchError
from codex_orchestrator.exec.guard import GuardSwitch
from codex_orchestrator.exec.session import OutputEvent
from codex_orchestrator.fetch import fetch
from codex_orchestrator.records import events as ev
from codex_orchestrator.redact import StreamRedactor
from codex_orchestrator.toolcall import ToolCallSpec

# How much of a call's output the manifest keeps (the event log has all of it).
OUTPUT_TAIL_BYTES = 4096


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
    final_url: str | None = None  # fetch: where the body came from, after redirects

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
    """GET the step's URL through the fetch fence (fetch.py); the final URL after redirects is recorded."""
    assert spec.url is not None
    try:
        response = fetch(spec.url, spec.fetch_policy, spec.timeout_s)
    except FetchError as exc:
        return AttemptResult(exit_code=1, output=str(exc), final_url=exc.url)
    body = response.body
    summary = f"GET {response.final_url}: HTTP {response.status}, {len(body)} bytes"
    if response.status >= 400:
        return AttemptResult(
            exit_code=1, output=summary, output_bytes=len(body), final_url=response.final_url
        )
    if spec.path is not None:
        spec.path.parent.mkdir(parents=True, exist_ok=True)
        spec.path.write_bytes(body)
        text = f"{summary}, saved"
    else:
        text = body[-OUTPUT_TAIL_BYTES:].decode("utf-8", errors="replace")
    return AttemptResult(exit_code=0, output=text, output_bytes=len(body), final_url=response.final_url)


class OutputRecorder:
    """Session subscriber: turns PTY output into ``output`` events.

    Output is UTF-8 decoded across chunk borders and redacted as a stream (a secret split across two reads is
    still found), and the event log keeps at most ``budget_bytes`` of it per call: the first half as it comes,
    the last half at the end, with one ``output.omitted`` event between them counting what was left out.
    """

    def __init__(self, recorder: CallRecorder, tool_call_id: str, budget_bytes: int | None = None) -> None:
        self._recorder = recorder
        self._call_id = tool_call_id
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._redactor = StreamRedactor(recorder.redact)
        self._last: OutputEvent | None = None
        budget = recorder.events.output_budget_bytes if budget_bytes is None else budget_bytes
        self._budget = max(0, budget)
        self._head_left = self._budget - self._budget // 2
        self._tail = HeadTailText(self._budget // 2)

    def __call__(self, event: OutputEvent) -> None:
        self._last = event
        text = self._redactor.feed(self._decoder.decode(event.data))
        if text:
            self._record(event.session_id, event.stream, event.seq, text)

    def flush(self) -> None:
        if self._last is None:
            return
        last = self._last
        text = self._redactor.feed(self._decoder.decode(b"", final=True)) + self._redactor.flush()
        if text:
            self._record(last.session_id, last.stream, last.seq, text)
        if self._tail.total_bytes:
            tail = self._tail.text()
            omitted = self._tail.total_bytes - len(tail.encode("utf-8"))
            if omitted:
                self._recorder.events.emit(
                    ev.OutputOmitted(
                        tool_call_id=self._call_id,
                        session_id=last.session_id,
                        omitted_bytes=omitted,
                        budget_bytes=self._budget,
                    )
                )
            if tail:
                self._emit(last.session_id, last.stream, last.seq, tail)
            self._tail = HeadTailText(self._budget // 2)

    def _record(self, session_id: str, stream: str, seq: int, text: str) -> None:
        if self._head_left > 0 and not self._tail.total_bytes:
            data = text.encode("utf-8")
            if len(data) <= self._head_left:
                self._head_left -= len(data)
                self._emit(session_id, stream, seq, text)
                return
            head = data[: self._head_left].decode("utf-8", errors="ignore")
            self._head_left = 0
            if head:
                self._emit(session_id, stream, seq, head)
            text = text[len(head) :]
        self._tail.add(text)

    def _emit(self, session_id: str, stream: str, seq: int, text: str) -> None:
        self._recorder.events.emit(
            ev.Output(
                tool_call_id=self._call_id, session_id=session_id, stream=stream, chunk_seq=seq, data=text
            )
        )


class HeadTailText:
    """The last ``keep_bytes`` of a text stream, counting what was dropped before it."""

    def __init__(self, keep_bytes: int) -> None:
        self._keep = keep_bytes
        self._parts: deque[bytes] = deque()
        self._size = 0
        self.total_bytes = 0

    def add(self, text: str) -> None:
        data = text.encode("utf-8")
        self.total_bytes += len(data)
        self._parts.append(data)
        self._size += len(data)
        while self._parts and self._size - len(self._parts[0]) >= self._keep:
            self._size -= len(self._parts.popleft())

    def text(self) -> str:
        data = b"".join(self._parts)
        if len(data) > self._keep:
            data = data[len(data) - self._keep :]
        # A cut may land inside a character: drop its continuation bytes rather than invent a replacement.
        return data.decode("utf-8", errors="ignore") if self._keep else ""
