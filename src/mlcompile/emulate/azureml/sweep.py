"""A sweep node's search, as Azure ML's sweep (HyperDrive) runs it: trials sampled from the
search space (`random`, `grid`; `bayesian` is sampled at random, as its first trials are),
each trial ranked by the primary metric its own MLflow run logged, early termination
policies applied to the metrics trials have reported, and the best trial's outputs become
the node's outputs.

Sampling keeps HyperDrive's value types: `choice` gives its options as they are, `randint`
an int, every `q*` distribution `round(x / q) * q` as a float (12.0 for an integer-looking
parameter: a trainer that wants an int must convert it)."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class SearchSpaceError(ValueError):
    """A search space the service refuses (an unknown distribution, grid over a range)."""


def _quantized(value: float, q: float) -> float:
    return float(round(value / q) * q)


def sample_one(name: str, space: Mapping[str, Any], rng: random.Random) -> Any:
    kind = space.get("type")
    low, high, q = space.get("min_value", 0.0), space.get("max_value", 0.0), space.get("q", 1)
    if kind == "choice":
        return rng.choice(list(space["values"]))
    if kind == "randint":
        return rng.randrange(int(space["upper"]))
    if kind in ("uniform", "quniform"):
        value = rng.uniform(float(low), float(high))
    elif kind in ("loguniform", "qloguniform"):
        value = math.exp(rng.uniform(float(low), float(high)))  # min/max are natural logs
    elif kind in ("normal", "qnormal"):
        value = rng.gauss(float(space["mu"]), float(space["sigma"]))
    elif kind in ("lognormal", "qlognormal"):
        value = math.exp(rng.gauss(float(space["mu"]), float(space["sigma"])))
    else:
        raise SearchSpaceError(f"search_space.{name}: unknown distribution {kind!r}")
    return _quantized(value, float(q)) if kind.startswith("q") else value


def sample(search_space: Mapping[str, Mapping[str, Any]], algorithm: str, count: int, seed: int = 0) -> list[dict[str, Any]]:
    """The parameter sets of up to `count` trials."""
    algorithm = (algorithm if isinstance(algorithm, str) else (algorithm or {}).get("type", "random")).lower()
    if algorithm == "grid":
        names = sorted(search_space)
        for name in names:
            if search_space[name].get("type") != "choice":
                raise SearchSpaceError(f"search_space.{name}: grid sampling takes only choice() parameters")
        grid = itertools.product(*(list(search_space[name]["values"]) for name in names))
        return [dict(zip(names, values)) for values in itertools.islice(grid, count)]
    if algorithm not in ("random", "bayesian"):
        raise SearchSpaceError(f"sampling_algorithm {algorithm!r}: random, grid or bayesian")
    rng = random.Random(seed)
    return [{name: sample_one(name, space, rng) for name, space in sorted(search_space.items())} for _ in range(count)]


@dataclass
class Trial:
    number: int
    parameters: dict[str, Any]
    status: str = "pending"  # completed, failed, canceled (early termination)
    metric: float | None = None
    history: list[float] = field(default_factory=list)  # the primary metric as logged, in order
    outputs: dict[str, Any] = field(default_factory=dict)  # name -> steps.Data
    reason: str = ""


def better(a: float, b: float, goal: str) -> bool:
    return a > b if goal == "maximize" else a < b


def terminated(trial: Trial, finished: Sequence[Trial], policy: Mapping[str, Any] | None, goal: str) -> str:
    """Why the early termination policy cancels `trial` when it is evaluated on its last
    reported metric ("" to keep it): bandit (slack from the best), median stopping (worse
    than the median of the running averages), truncation selection (in the worst percent)."""
    if not policy or not trial.history:
        return ""
    kind = str(policy.get("type", "")).lower()
    delay = int(policy.get("delay_evaluation") or 0)
    if len(trial.history) <= delay:
        return ""
    value = trial.history[-1]
    others = [t.metric for t in finished if t.metric is not None and t is not trial]
    if not others:
        return ""
    best = max(others) if goal == "maximize" else min(others)
    if kind == "bandit":
        if policy.get("slack_amount") is not None:
            bound = best - float(policy["slack_amount"]) if goal == "maximize" else best + float(policy["slack_amount"])
        else:
            factor = float(policy.get("slack_factor") or 0.0)
            bound = best / (1 + factor) if goal == "maximize" else best * (1 + factor)
        return f"bandit policy: {value:g} is outside the slack of the best {best:g}" if better(bound, value, goal) else ""
    if kind == "median_stopping":
        averages = sorted(others)
        median = averages[len(averages) // 2] if len(averages) % 2 else (averages[len(averages) // 2 - 1] + averages[len(averages) // 2]) / 2
        return f"median stopping policy: {value:g} is worse than the median {median:g}" if better(median, value, goal) else ""
    if kind == "truncation_selection":
        percent = float(policy.get("truncation_percentage") or 0)
        ranked = sorted([*others, value], reverse=goal == "maximize")
        cut = max(1, int(len(ranked) * percent / 100)) if percent else 0
        return f"truncation selection: {value:g} is in the worst {percent:g}%" if cut and value in ranked[len(ranked) - cut :] else ""
    raise SearchSpaceError(f"early_termination.type {kind!r}: bandit, median_stopping or truncation_selection")


def best_trial(trials: Sequence[Trial], goal: str) -> Trial | None:
    """The completed trial with the best primary metric (the first among equals)."""
    best, best_metric = None, 0.0
    for trial in trials:
        if trial.status == "completed" and trial.metric is not None and (best is None or better(trial.metric, best_metric, goal)):
            best, best_metric = trial, trial.metric
    return best
