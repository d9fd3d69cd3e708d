"""Threads and subnormals: the flush reaches torch's worker threads, the thread count is
measured (or taken from the user), and everything is restored afterwards."""

from __future__ import annotations

import pytest
import torch

from autoinit import threads
from autoinit.threads import (
    choose_threads,
    compute_threads,
    cpu_cores,
    flush_holds,
    flush_supported,
    flushing,
)

needs_flush = pytest.mark.skipif(not flush_supported(), reason="this CPU cannot flush subnormals")
needs_two = pytest.mark.skipif(cpu_cores() < 2, reason="one core: no worker thread to flush")


@needs_flush
@needs_two
def test_set_flush_denormal_alone_misses_the_worker_threads():
    """The fault this module exists for: torch's own call flushes the calling thread only."""
    with compute_threads(2):  # the pool exists; now undo the flush everywhere but here
        pass
    torch.set_num_threads(2)
    torch.set_flush_denormal(True)
    try:
        assert not flush_holds()
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(1)


@needs_flush
@needs_two
def test_compute_threads_flushes_every_thread_and_restores():
    with compute_threads(2) as flushed:
        assert flushed and flush_holds() and torch.get_num_threads() == 2
    assert torch.get_num_threads() == 1 and not flush_holds() and not flushing()


def test_given_or_environment_threads_are_kept_without_measuring(monkeypatch):
    def step():
        raise AssertionError("nothing is measured")

    assert choose_threads(step, threads=3).threads == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    choice = choose_threads(step)
    assert choice.threads == 1 and choice.reason == "OMP_NUM_THREADS"
    assert "threads: 1 of" in choice.describe() and "OMP_NUM_THREADS=1" in choice.describe()


@needs_two
def test_more_threads_are_kept_only_when_clearly_faster(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS")
    calls: dict[int, int] = {}

    def step():  # takes as long on every thread count: one thread it is
        calls[torch.get_num_threads()] = calls.get(torch.get_num_threads(), 0) + 1
        torch.ones(64, 64) @ torch.ones(64, 64)

    choice = choose_threads(step)
    assert choice.reason == "measured"
    if 2 in choice.busy:  # the cores were taken: nothing was timed on the step
        assert choice.threads == 1 and not calls and not choice.timings
    else:
        assert set(choice.timings) >= {1, 2} and set(calls) >= {1, 2}
        faster = choice.timings[2] * 1.15 <= choice.timings[1]
        assert choice.threads == (2 if faster else 1)
    assert torch.get_num_threads() == 1  # restored


@needs_two
def test_thread_counts_slowed_by_busy_cores_are_not_timed_on_the_step(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(threads, "_slowdown", lambda n: 40.0)  # as measured with both cores taken
    calls: list[int] = []
    choice = choose_threads(lambda: calls.append(torch.get_num_threads()))
    assert choice.threads == 1 and choice.busy[2] == 40.0 and not calls
    assert "2 threads skipped, cores busy (40x slower" in choice.describe()
