"""Redaction of values (not of serialised text) and of streams (a secret split across reads is still found)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codex_orchestrator.records import events as ev
from codex_orchestrator.records.events import EventLog
from codex_orchestrator.records.manifest import RunState
from codex_orchestrator.records.store import ManifestFolder, RunRef, RunStore
from codex_orchestrator.redact import REDACTED, Redactor, StreamRedactor, redactor_for_env

SHAPES = ['pa"ss-wo"rd', "back\\slash\\value", "ünï-cødé-秘密", "tab\tand\nnewline", "</script>&amp;"]


def _escaped_forms(secret: str) -> list[str]:
    return [secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]]


def test_tree_redacts_every_string_value_and_key() -> None:
    redact = Redactor(SHAPES)
    tree = {"a": [SHAPES[0], {"b": f"x{SHAPES[1]}y"}], SHAPES[2]: 3, "c": (SHAPES[3],), "n": None}
    assert redact.tree(tree) == {"a": ["***", {"b": "x***y"}], "***": 3, "c": ["***"], "n": None}


@pytest.mark.parametrize("secret", SHAPES)
def test_event_log_and_manifest_redact_before_serialising(tmp_path: Path, secret: str) -> None:
    redact = Redactor([secret])
    log = EventLog(tmp_path / "events.jsonl", "r", redact)
    seen: list[tuple[ev._Event, str]] = []
    log.add_listener(lambda event, line: seen.append((event, line)))
    log.emit(ev.Output(tool_call_id="tc", session_id="s", stream="pty", chunk_seq=1, data=f"<{secret}>"))
    log.close()
    text = (tmp_path / "events.jsonl").read_text(encoding="utf-8")
    ref = RunRef(run_id="r", task_id="t", runs_dir=str(tmp_path / ".runs"), workspace=str(tmp_path))
    store = RunStore(ref, redact)
    store.create_dirs()
    state = RunState(
        run_id="r",
        task_id="t",
        run_dir=".runs/t/cli/r",
        created_at="",
        updated_at="",
        heartbeat_at="",
        goal=f"goal {secret}",
        request={"steps": [{"command": f"echo '{secret}'"}]},
    )
    store.write_run(state)  # records are redacted value by value as they are written
    ManifestFolder(store).write()
    written = store.paths.manifest.read_text(encoding="utf-8")
    for form in _escaped_forms(secret):
        assert form not in text and form not in seen[0][1] and form not in written
    assert json.loads(text)["data"] == "<***>"
    assert isinstance(seen[0][0], ev.Output) and seen[0][0].data == "<***>"  # listeners get redacted events
    assert json.loads(written)["goal"] == "goal ***"


def test_stream_holds_back_a_possible_prefix_until_the_next_chunk() -> None:
    secret = 'first-half"second-half'
    stream = StreamRedactor(Redactor([secret, "other-secret"]))
    out = [stream.feed("before first-"), stream.feed('half"'), stream.feed("second-half after")]
    out.append(stream.flush())
    assert "".join(out) == "before *** after"
    assert not any(part.startswith("first") or "first-half" in part for part in out)
    # Text that only began like a secret is passed on at the end of the stream.
    tail = StreamRedactor(Redactor([secret]))
    assert tail.feed("ends with first-ha") == "ends with "
    assert tail.flush() == "first-ha"


def test_stream_never_splits_a_whole_secret_at_the_hold_point() -> None:
    # "abcd" is whole in the buffer while its end "cd" could begin "cdxy": the cut must not fall inside it.
    stream = StreamRedactor(Redactor(["abcd", "cdxy"]))
    out = stream.feed("zzabcdx") + stream.feed("q") + stream.flush()
    assert out == "zz***xq"


def test_a_tail_cut_inside_a_secret_hides_its_remaining_end() -> None:
    redact = Redactor(["abcdefghij"])
    assert redact.tail("efghij and abcdefghij") == "*** and ***"
    assert redact.tail("hij stays: too short to tell") == "hij stays: too short to tell"


def test_redactor_for_env_reads_only_named_string_variables_that_are_set() -> None:
    env = {"TOKEN": "t0k-981", "EMPTY": "", "OTHER": "not-named"}
    redact = redactor_for_env(["TOKEN", "EMPTY", "UNSET", 7], env)
    assert redact("a t0k-981 b not-named") == f"a {REDACTED} b not-named"
    assert not redactor_for_env("TOKEN", env).active  # a damaged record names nothing
