"""The hyperparameter search both tuning services run: a grid over the discrete values, or
seeded random draws (uniform, or uniform in log space). Bayesian and the other model-based
algorithms draw at random here: the emulator checks the wiring, not the optimizer."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any


class SearchSpaceError(ValueError):
    """A search space the service refuses (e.g. a grid over a continuous range)."""


@dataclass(frozen=True)
class Parameter:
    name: str
    kind: str  # double | int | categorical | discrete
    low: float | None = None
    high: float | None = None
    values: tuple[Any, ...] = ()
    log: bool = False
    step: float | None = None

    def grid(self) -> list[Any]:
        if self.values:
            return list(self.values)
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if not self.step:
            raise SearchSpaceError(f"parameter {self.name}: a grid over a continuous range needs a step")
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return [self.low + i * self.step for i in range(count)]

    def draw(self, rng: random.Random) -> Any:
        if self.values:
            return rng.choice(self.values)
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            return rng.randint(int(self.low), int(self.high))
        if self.log and self.low > 0:
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)


def assignments(parameters: Sequence[Parameter], algorithm: str, seed: str) -> Iterator[dict[str, Any]]:
    """Parameter assignments in the order trials get them: every grid point once (then the
    search is exhausted), or an endless sequence of random draws seeded by `seed`."""
    if algorithm == "grid":
        for point in itertools.product(*(p.grid() for p in parameters)):
            yield {p.name: value for p, value in zip(parameters, point)}
        return
    rng = random.Random(seed)
    while True:
        yield {p.name: p.draw(rng) for p in parameters}
