"""The search's cost unit: one step of a bare training loop, re-timed through the search.

A single timing taken at the start moves with whatever else the machine does at that moment;
:class:`StepClock` times a few bare steps at the start, again after every trial and between the
selection round's probes, and the cost unit is the median of all of them, reported with its
quartiles.

Example:
    >>> clock = StepClock(lambda: sum(range(1000)))
    >>> clock.sample(4)
    >>> len(clock.times), clock.median > 0, clock.quartiles[0] <= clock.quartiles[1]
    (3, True, True)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import optuna

__all__ = ["StepClock"]


class StepClock:
    """Times ``step()`` (one bare training step, which leaves the global RNG alone) now and
    then; usable as an Optuna callback."""

    def __init__(self, step: Callable[[], object]) -> None:
        self.step = step
        self.times: list[float] = []
        self.stopped: str | None = None  # why re-timing stopped (the step raised after the start)

    def sample(self, steps: int = 2) -> None:
        """Time ``steps`` steps; the first of a fresh clock only warms up and is not kept.

        A step that raises on a fresh clock raises; later, it only stops the re-timing (a user's
        stateful loop may end, e.g. a scheduler that runs out) and the times so far are kept.
        """
        if self.stopped is not None:
            return
        warm = not self.times
        for i in range(steps):
            t0 = time.perf_counter()
            try:
                self.step()
            except Exception as exc:
                if warm:
                    raise
                self.stopped = f"{type(exc).__name__}: {exc}"
                return
            if not (warm and i == 0):
                self.times.append(time.perf_counter() - t0)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.sample()

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def quartiles(self) -> tuple[float, float]:
        if len(self.times) < 2:
            return self.median, self.median
        q = statistics.quantiles(self.times, n=4)
        return q[0], q[2]
