"""``traces.jsonl``: each finished span of a run appended as one JSON line (OTLP-like) to that run's file.

One ``RunFilesProcessor`` serves the whole process: a ``RunTracer`` registers its run's file while it lives,
and a span goes to the file of its ``codex.run_id`` attribute (spans of no run, e.g. Prefect's own, are not
written). Values are scrubbed by the run's redactors before serialising (exception text included).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from codex_orchestrator.redact import Redactor

RUN_ID_KEY = "codex.run_id"


def span_dict(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.get_span_context()
    parent = span.parent
    return {
        "name": span.name,
        "trace_id": f"{ctx.trace_id:032x}" if ctx else None,
        "span_id": f"{ctx.span_id:016x}" if ctx else None,
        "parent_span_id": f"{parent.span_id:016x}" if parent else None,
        "start_time_unix_nano": span.start_time,
        "end_time_unix_nano": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "events": [{"name": e.name, "attributes": dict(e.attributes or {})} for e in span.events],
    }


def _line(span: ReadableSpan, redactors: Sequence[Redactor]) -> str:
    data: Any = span_dict(span)
    for redact in redactors:
        data = redact.tree(data)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n"


class JsonLinesSpanExporter(SpanExporter):
    """Appends each finished span to one file (a run's ``traces.jsonl``), scrubbed by ``redact``."""

    def __init__(self, path: Path, redact: Redactor | None = None) -> None:
        self._path = path
        self._redact = redact or Redactor()
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [_line(s, [self._redact]) for s in spans]
        with self._lock, self._path.open("a", encoding="utf-8") as handle:
            handle.writelines(lines)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


@dataclass
class _RunFile:
    path: Path
    redactors: list[Redactor] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class RunFilesProcessor(SpanProcessor):
    """Writes each finished span of a registered run to that run's file, synchronously (as the span ends)."""

    def __init__(self) -> None:
        self._runs: dict[str, _RunFile] = {}
        self._lock = threading.Lock()

    def register(self, run_id: str, path: Path, redact: Redactor) -> None:
        with self._lock:
            entry = self._runs.setdefault(run_id, _RunFile(path))
            entry.redactors.append(redact)

    def unregister(self, run_id: str, redact: Redactor) -> None:
        with self._lock:
            entry = self._runs.get(run_id)
            if entry is None:
                return
            if redact in entry.redactors:
                entry.redactors.remove(redact)
            if not entry.redactors:
                del self._runs[run_id]

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        run_id = (span.attributes or {}).get(RUN_ID_KEY)
        if not isinstance(run_id, str):
            return
        with self._lock:
            entry = self._runs.get(run_id)
            redactors = list(entry.redactors) if entry else []
        if entry is None:
            return
        line = _line(span, redactors)
        with entry.lock, entry.path.open("a", encoding="utf-8") as handle:
            handle.write(line)

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
