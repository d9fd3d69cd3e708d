"""The cost unit's clock: re-timing never breaks a search."""

from __future__ import annotations

import pytest

from autoinit.clock import StepClock


def ends_after(calls: int):
    count = [0]

    def step() -> None:
        count[0] += 1
        if count[0] > calls:
            raise ValueError("the scheduler ran out")

    return step


def test_a_step_that_fails_later_stops_the_re_timing_and_keeps_the_times():
    clock = StepClock(ends_after(9))
    clock.sample(8)
    clock(None, None)  # call 9 is timed, call 10 raises
    assert len(clock.times) == 8 and clock.stopped == "ValueError: the scheduler ran out"
    clock.sample(4)  # no more calls once stopped
    assert len(clock.times) == 8 and clock.median > 0


def test_a_step_that_fails_on_a_fresh_clock_raises():
    with pytest.raises(ValueError, match="ran out"):
        StepClock(ends_after(0)).sample(8)
