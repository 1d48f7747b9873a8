"""One claim per tool call on the shared records store, so that a call handed to several task workers (the
first one's worker died, the flow submitted it again) runs once.

A claim is a file ``calls/<call id>.<scope>.claim`` naming ``hostname:pid`` of the process that holds it (and a
token: two task runs of one call in one process are two claimants), created
exclusively; the scope is the submitting run's, so that a resumed run may run the call again. A claim whose holder
is provably dead (on this host, pid gone) is taken over; a live holder's claim makes the newcomer a follower: it
waits for the call's record to be final instead of running it again.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from codex_orchestrator.call_recorder import host_label, process_gone
from codex_orchestrator.records.manifest import FINAL_CALL_STATUSES, ToolCallRecord
from codex_orchestrator.records.store import RunStore

# How often a follower looks at the call's record while its claimer runs it.
FOLLOW_POLL_S = 0.5


def claim_path(store: RunStore, call_id: str, scope: str) -> Path:
    return store.calls_dir / f"{call_id}.{scope}.claim"


def _holder(path: Path) -> str | None:
    """``hostname:pid`` of the claim's holder, or None when there is no claim."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return text.split(" ", 1)[0] or None


def try_claim(store: RunStore, call_id: str, scope: str) -> bool:
    """Claim ``call_id`` for this caller: True if it is ours now (there was none, or its holder died)."""
    path = claim_path(store, call_id, scope)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = f"{host_label()} {uuid.uuid4().hex}"
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            holder = _holder(path)
            if holder is not None and not process_gone(holder):
                return False
            # The holder died: take the claim over (one newcomer wins the rename of its own stale copy away).
            stale = path.with_name(f"{path.name}.{os.getpid()}.stale")
            with contextlib.suppress(FileNotFoundError):
                os.rename(path, stale)
                stale.unlink()
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(me)
        return True


def follow(
    store: RunStore, call_id: str, scope: str, sleep: Callable[[float], None] = time.sleep
) -> ToolCallRecord | None:
    """Wait while another live process runs ``call_id``; its final record, or None if the claim was let go
    (or its holder died) without one, so that the caller may claim it itself."""
    path = claim_path(store, call_id, scope)
    while True:
        record = store.read_call(call_id)
        if record is not None and record.status in FINAL_CALL_STATUSES:
            return record
        holder = _holder(path)
        if holder is None or process_gone(holder):
            return None
        sleep(FOLLOW_POLL_S)
