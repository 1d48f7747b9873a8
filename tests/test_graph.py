"""The step graph: up-front refusal of bad edges, and the pure scheduling rule (parallelism, stop, continue)."""

from __future__ import annotations

import pytest

from codex_orchestrator.errors import RequestError
from codex_orchestrator.graph import GraphError, GraphScheduler, OnFailure, StepState, check_graph
from codex_orchestrator.request import parse_request

DIAMOND = {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")}


@pytest.mark.parametrize(
    ("needs", "message"),
    [
        ({"a": ("a",)}, "step 'a' needs itself"),
        ({"a": ("zz",)}, "step 'a' needs 'zz', which is not a step"),
        ({"a": ("c",), "b": ("a",), "c": ("b",)}, "cycle: a -> c -> b -> a"),
    ],
)
def test_bad_edges_are_refused_naming_the_steps(needs: dict[str, tuple[str, ...]], message: str) -> None:
    with pytest.raises(GraphError, match=message):
        check_graph(list(needs), needs)


def test_a_request_with_a_cycle_is_a_usage_error(tmp_path: object) -> None:
    steps = [
        {"name": "build", "command": "true", "needs": ["test"]},
        {"name": "test", "command": "true", "needs": ["build"]},
    ]
    with pytest.raises(RequestError, match="cycle: build -> test -> build"):
        parse_request({"task": "t", "workspace": str(tmp_path), "steps": steps})


def test_independent_steps_start_together_within_max_parallel() -> None:
    s = GraphScheduler(["a", "b", "c", "d"], {}, max_parallel=2)
    first = s.ready()
    assert first == ["a", "b"]
    for name in first:
        s.start(name)
    assert s.ready() == []  # the limit is reached
    s.finish("a", True)
    assert s.ready() == ["c"]


def test_a_diamond_runs_its_middle_in_parallel_and_joins() -> None:
    s = GraphScheduler(list(DIAMOND), DIAMOND, max_parallel=4)
    assert s.ready() == ["a"]
    s.start("a")
    s.finish("a", True)
    assert s.ready() == ["b", "c"]
    s.start("b")
    s.start("c")
    s.finish("b", True)
    assert s.ready() == []  # d waits for c too
    s.finish("c", True)
    assert s.ready() == ["d"]
    s.start("d")
    s.finish("d", True)
    assert s.done() and s.succeeded()


def test_stop_lets_running_calls_finish_and_skips_everything_not_started() -> None:
    s = GraphScheduler(["a", "b", "c", "d"], {"d": ("b",)}, max_parallel=2, on_failure=OnFailure.STOP)
    s.start("a")
    s.start("b")
    skips = s.finish("a", False)
    assert {k.step for k in skips} == {"c", "d"}
    assert all("on_failure: stop" in k.reason for k in skips)
    assert s.state["b"] is StepState.RUNNING and not s.done()  # b still runs to its end
    assert s.ready() == []
    s.finish("b", True)
    assert s.done() and not s.succeeded()


def test_continue_skips_only_the_dependants_of_the_failure() -> None:
    s = GraphScheduler([*DIAMOND, "e"], DIAMOND, max_parallel=4, on_failure=OnFailure.CONTINUE)
    assert s.ready() == ["a", "e"]
    s.start("a")
    s.start("e")
    s.finish("a", True)
    s.start("b")
    s.start("c")
    skips = s.finish("b", False)
    assert [(k.step, k.reason) for k in skips] == [("d", "needs 'b', which failed")]
    s.finish("c", True)
    s.finish("e", True)
    assert s.done() and s.state["c"] is StepState.SUCCEEDED and s.state["e"] is StepState.SUCCEEDED


def test_a_skip_spreads_through_the_graph() -> None:
    s = GraphScheduler(["a", "b", "c"], {"b": ("a",), "c": ("b",)}, on_failure=OnFailure.CONTINUE)
    s.start("a")
    skips = s.finish("a", False)
    assert [(k.step, k.reason) for k in skips] == [
        ("b", "needs 'a', which failed"),
        ("c", "needs 'b', which skipped"),
    ]


def test_a_resumed_graph_starts_after_what_already_succeeded() -> None:
    s = GraphScheduler(list(DIAMOND), DIAMOND)
    s.mark("a", StepState.SUCCEEDED)
    s.mark("b", StepState.SUCCEEDED)
    assert s.ready() == ["c"]
