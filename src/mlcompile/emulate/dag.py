"""The step scheduler every pipeline emulator shares: runs the steps of a dependency graph as
the platforms do. A step becomes ready when every step it depends on has ended; a ready step
is shown to `gate` when one of `parallelism` workers is free for it (first come first in
topological order), and `gate` may settle it without running it (an upstream step failed, a
condition chose the other branch, the pipeline stopped at its first failure); otherwise it
starts on that worker. With `parallelism=1` the steps run one by one, in that order.

What a step's result means, and which results block a step, is the caller's business: the
scheduler only orders, starts and collects."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Set
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from graphlib import CycleError, TopologicalSorter
from typing import TypeVar

R = TypeVar("R")
Done = Mapping[str, R]


class Cycle(Exception):
    """The steps depend on each other in a cycle (`steps` lists it, first step repeated last)."""

    def __init__(self, steps: list[str]) -> None:
        super().__init__(f"steps depend on each other in a cycle: {steps}")
        self.steps = steps


def topological_order(graph: Mapping[str, Set[str]]) -> list[str]:
    """The steps, each after the steps it depends on (dependencies outside the graph are ignored)."""
    try:
        return list(TopologicalSorter({step: set(needs) & graph.keys() for step, needs in graph.items()}).static_order())
    except CycleError as exc:
        raise Cycle(list(exc.args[1])) from None


def run(
    graph: Mapping[str, Set[str]],
    step: Callable[[str, Done[R]], R],
    *,
    gate: Callable[[str, Done[R]], R | None] = lambda name, done: None,
    ended: Callable[[str, R], None] = lambda name, result: None,
    parallelism: int = 1,
    name: str = "step",
) -> dict[str, R]:
    """Every step's result, in topological order.

    `graph` maps a step to the steps it depends on. `step(name, done)` runs a step on a worker
    thread, given the results so far (a copy). `gate(name, done)` is asked on the calling
    thread, once per step, when the step's dependencies ended and a worker is free: a result
    settles the step without running it, None starts it. `ended(name, result)` is told on the
    calling thread of each step's result as it comes (settled by the gate or run), before any
    further step is gated or started.
    Raises Cycle; an exception a step raises propagates once the running steps have finished."""
    order = topological_order(graph)
    needs = {node: set(graph[node]) & graph.keys() for node in order}
    position = {node: index for index, node in enumerate(order)}
    workers = max(1, parallelism)
    done: dict[str, R] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        running: dict[Future[R], str] = {}
        while len(done) < len(order):
            for node in order:
                if len(running) >= workers:
                    break
                if node in done or node in running.values() or not needs[node] <= done.keys():
                    continue
                settled = gate(node, dict(done))
                if settled is not None:
                    done[node] = settled
                    ended(node, settled)
                    continue
                running[pool.submit(step, node, dict(done))] = node
            if not running:
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(finished, key=lambda f: position[running[f]]):
                node = running.pop(future)
                done[node] = future.result()
                ended(node, done[node])
    return {node: done[node] for node in order}
