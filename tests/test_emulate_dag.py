"""The scheduler the pipeline emulators share: steps run after the steps they depend on, ready
steps run at once up to the parallelism, a gate settles steps without running them (after a
failed or skipped upstream step), and a cycle is refused."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

import pytest

from mlcompile.emulate import dag

DIAMOND = {"a": set(), "b": {"a"}, "c": {"a"}, "d": {"b", "c"}}


def record(log: list[str], result: str = "ok"):
    def step(name: str, done: Mapping[str, str]) -> str:
        log.append(name)
        return result

    return step


def test_each_step_runs_after_the_steps_it_depends_on_and_results_come_in_topological_order() -> None:
    ran: list[str] = []
    graph = {"train": {"prepare"}, "evaluate": {"train", "prepare"}, "prepare": set()}
    results = dag.run(graph, record(ran), parallelism=1)
    assert ran == ["prepare", "train", "evaluate"]
    assert list(results) == ["prepare", "train", "evaluate"] and set(results.values()) == {"ok"}


def test_a_step_sees_the_results_of_the_steps_before_it() -> None:
    seen: dict[str, set[str]] = {}

    def step(name: str, done: Mapping[str, str]) -> str:
        seen[name] = set(done)
        return name.upper()

    assert dag.run(DIAMOND, step, parallelism=2) == {"a": "A", "b": "B", "c": "C", "d": "D"}
    assert seen["a"] == set() and {"a"} <= seen["b"] and seen["d"] == {"a", "b", "c"}


def test_dependencies_outside_the_graph_do_not_hold_a_step_back() -> None:
    assert dag.run({"a": {"elsewhere"}}, lambda name, done: "ok") == {"a": "ok"}


def test_ready_steps_run_at_once_up_to_the_parallelism() -> None:
    both_running = threading.Barrier(2, timeout=10)

    def step(name: str, done: Mapping[str, str]) -> str:
        if name in ("b", "c"):
            both_running.wait()  # b and c wait for each other: they only pass if they run together
        return "ok"

    assert dag.run(DIAMOND, step, parallelism=2)["d"] == "ok"


def test_no_more_steps_run_at_once_than_the_parallelism() -> None:
    lock, running, most = threading.Lock(), [0], [0]

    def step(name: str, done: Mapping[str, str]) -> str:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return "ok"

    dag.run({name: set() for name in "abcdef"}, step, parallelism=3)
    assert most[0] == 3


def test_a_gate_settles_the_steps_after_a_failed_or_skipped_step_without_running_them() -> None:
    ran: list[str] = []
    results = {"a": "ok", "b": "failed", "c": "skipped"}

    def step(name: str, done: Mapping[str, str]) -> str:
        ran.append(name)
        return results.get(name, "ok")

    def gate(name: str, done: Mapping[str, str]) -> str | None:
        upstream = sorted(d for d in graph[name] if done[d] != "ok")
        return f"not triggered: {', '.join(upstream)}" if upstream else None

    graph = {"a": set(), "b": {"a"}, "c": {"a"}, "after_b": {"b"}, "after_c": {"c"}, "after_both": {"after_b", "after_c"}, "free": {"a"}}
    out = dag.run(graph, step, gate=gate, parallelism=2)
    assert sorted(ran) == ["a", "b", "c", "free"]
    assert out["after_b"] == "not triggered: b" and out["after_c"] == "not triggered: c"
    assert out["after_both"] == "not triggered: after_b, after_c" and out["free"] == "ok"


def test_ended_hears_every_result_before_the_next_step_is_gated() -> None:
    heard: list[tuple[str, str]] = []
    failed: list[str] = []

    def ended(name: str, result: str) -> None:
        heard.append((name, result))
        if result == "failed":
            failed.append(name)

    def gate(name: str, done: Mapping[str, str]) -> str | None:
        return "canceled" if failed else None  # stop at the first failure, as Azure ML does by default

    graph = {"a": set(), "b": {"a"}, "c": {"b"}}
    out = dag.run(graph, lambda name, done: "failed" if name == "a" else "ok", gate=gate, ended=ended)
    assert out == {"a": "failed", "b": "canceled", "c": "canceled"}
    assert heard == [("a", "failed"), ("b", "canceled"), ("c", "canceled")]


def test_a_cycle_is_refused_before_any_step_runs() -> None:
    ran: list[str] = []
    with pytest.raises(dag.Cycle) as caught:
        dag.run({"a": {"b"}, "b": {"a"}, "c": set()}, record(ran))
    assert set(caught.value.steps) == {"a", "b"} and ran == []


def test_an_error_a_step_raises_reaches_the_caller() -> None:
    def step(name: str, done: Mapping[str, str]) -> str:
        raise RuntimeError(f"{name} broke")

    with pytest.raises(RuntimeError, match="a broke"):
        dag.run({"a": set()}, step, parallelism=2)
