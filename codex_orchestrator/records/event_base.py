"""The fields every event of the log has, and the schema version they are written with (records/events.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# MAJOR changes when a reader of the old stream could misread the new one (a field removed, renamed or retyped);
# MINOR when something is only added (a field, an event type). Readers refuse another MAJOR.
EVENTS_SCHEMA_VERSION = "1.2"


class _Event(BaseModel):
    # The schema describes the lines as written, where every field is present: defaults count as required, so
    # generated types (sdk/node) get `seq: number` and a required `type` to narrow on, not optional ones.
    # defer_build: an event type is built when first written or read (a one-call `exec` writes 8 of 25).
    model_config = ConfigDict(
        extra="forbid",
        defer_build=True,
        json_schema_mode_override="serialization",
        json_schema_serialization_defaults_required=True,
    )

    seq: int = Field(default=0, description="position in the run's log, from 1, no gaps")
    ts: str = Field(default="", description="UTC time the event was recorded (ISO 8601)")
    run_id: str = ""
    schema_version: str = Field(
        default=EVENTS_SCHEMA_VERSION,
        pattern=r"^[0-9]+\.[0-9]+$",
        description="MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know",
    )
    prev_hash: str = Field(
        default="",
        description="SHA-256 (hex) of the previous line of the log as written, without its newline; for the "
        "first event, of 'codex-orchestrator:<run_id>' (records/chain.py)",
    )
