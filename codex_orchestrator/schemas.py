"""JSON Schemas generated from the models: ``schemas/manifest.schema.json`` and ``schemas/events.schema.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from codex_orchestrator.records.events import EVENT_ADAPTER
from codex_orchestrator.records.manifest import manifest_json_schema

BASE_ID = "https://codex-orchestrator.dev/schemas/"


def events_json_schema() -> dict[str, Any]:
    # Serialization mode: the lines as written (the event models say so too, json_schema_mode_override); asking
    # for it here as well lets pydantic 2.14 describe nested models (in validation mode it fails on their refs).
    schema = EVENT_ADAPTER.json_schema(mode="serialization")
    schema["$id"] = BASE_ID + "events.schema.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "codex-orchestrator event (one line of events.jsonl or of exec --json)"
    return schema


def rendered() -> dict[str, str]:
    return {
        "manifest.schema.json": json.dumps(manifest_json_schema(), indent=2, sort_keys=True) + "\n",
        "events.schema.json": json.dumps(events_json_schema(), indent=2, sort_keys=True) + "\n",
    }


def write_schemas(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered().items():
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    return written


def check_schemas(out: Path) -> list[str]:
    """Names of schema files that are missing or differ from the models."""
    return [
        name
        for name, text in rendered().items()
        if not (out / name).exists() or (out / name).read_text(encoding="utf-8") != text
    ]
