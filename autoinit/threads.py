"""Threads and subnormals for CPU trainings: a thread count measured on the model, and the flush
of subnormal floats on every thread that computes.

``torch.set_flush_denormal`` sets the calling thread's floating-point control register only;
torch's OpenMP worker threads keep computing subnormal numbers, which x86 CPUs handle 10-100x
slower (one step of a 32-layer ReLU MLP under PyTorch's default init: 45 ms on one thread,
2,122 ms on two without the flush). :func:`compute_threads` runs one OpenMP parallel region that
sets the flush on each worker too, and checks that it holds; where it cannot be made to hold,
the trainings run on one thread. :func:`choose_threads` times a training step on one thread and
on more, and keeps more only where they are clearly faster: on a busy machine extra threads
oversubscribe the cores and run slower. ``OMP_NUM_THREADS`` in the environment is the user's
choice and is kept.

Example:
    >>> import torch
    >>> with compute_threads(1) as flushed:
    ...     torch.get_num_threads(), flushed == flush_supported()
    (1, True)
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

__all__ = ["ThreadChoice", "choose_threads", "compute_threads", "cpu_cores", "flush_holds",
           "flush_supported", "flushing"]

GAIN = 1.15  # more threads are kept only when at least this much faster than fewer
BUSY = 3.0  # a parallel operation this many times slower than on one thread: the cores are taken


@dataclass(frozen=True)
class ThreadChoice:
    """The torch thread count trainings run with, and why.

    Attributes:
        threads: torch threads.
        cores: CPU cores this process may use.
        timings: median seconds per training step by thread count, where measured.
        reason: ``"measured"``, ``"OMP_NUM_THREADS"``, ``"given"``, ``"cuda"`` or a sentence.
        flushed: subnormals are flushed on every computing thread.
        busy: thread counts not timed on the step because one parallel operation already ran
            many times slower on them than on one thread (the cores are taken), by that factor.
    """

    threads: int
    cores: int
    timings: dict[int, float]
    reason: str
    flushed: bool
    busy: dict[int, float] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for a search's header."""
        s = "s" if self.threads > 1 else ""
        if self.reason == "measured":
            why = "measured: " + ", ".join(
                [f"{n} thread{'s' if n > 1 else ''} {1000 * t:.1f} ms/step"
                 for n, t in self.timings.items()]
                + [f"{n} threads skipped, cores busy ({f:.0f}x slower on a parallel operation)"
                   for n, f in self.busy.items()])
        elif self.reason == "OMP_NUM_THREADS":
            why = f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
        else:
            why = self.reason
        flush = "subnormals flushed on every thread" if self.flushed else "subnormals not flushed"
        return f"threads: {self.threads}{s} of {self.cores} cores ({why}); {flush}"


def cpu_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def flush_supported() -> bool:
    """Whether this CPU can flush subnormals (x86 with SSE3); leaves the flush as it was."""
    was = flushing()
    ok = torch.set_flush_denormal(True)
    if ok and not was:
        torch.set_flush_denormal(False)
    return ok


def flush_holds() -> bool:
    """Whether an operation split over torch's threads flushes subnormals in every chunk."""
    return not _subnormal_bits(1 << 18)  # large enough for every thread to get a chunk


def flushing() -> bool:
    """Whether the calling thread flushes subnormals now."""
    return not _subnormal_bits(1)


def _subnormal_bits(n: int) -> int:
    """How many of ``n`` smallest subnormals survive ``x * 1``: built and counted from their
    bits, since a flushing thread also reads a subnormal float as zero."""
    x = torch.ones(n, dtype=torch.int32).view(torch.float32)  # bit pattern 1: 1.4e-45
    return int(torch.count_nonzero((x * 1.0).view(torch.int32)))


@contextlib.contextmanager
def compute_threads(threads: int) -> Iterator[bool]:
    """Run the block on ``threads`` torch threads with subnormals flushed on each of them; yields
    whether the flush holds on all of them (where the CPU has no flush: ``False``). The thread
    count and the flush are restored afterwards."""
    before, was = torch.get_num_threads(), flushing()
    torch.set_num_threads(threads)
    try:
        yield _flush_everywhere(True, threads)
    finally:
        if not was:
            _flush_everywhere(False, threads)
        torch.set_num_threads(before)


def choose_threads(step: Callable[[], object], device: str = "cpu", threads: int | None = None,
                   rounds: int = 3, steps: int = 2) -> ThreadChoice:
    """The thread count for trainings whose one step is ``step()``.

    ``threads`` given, or ``OMP_NUM_THREADS`` set, is kept; on CUDA the current count is kept.
    Otherwise ``step`` is timed on 1, 2, 4, ... threads up to the cores (``rounds`` rounds of
    ``steps`` steps, alternating) and more threads are kept only where their median step is at
    least ``GAIN`` times faster. A thread count on which one parallel elementwise operation runs
    ``BUSY`` times slower than on one thread is not timed on the step at all: on busy cores a
    single oversubscribed step can take seconds. Without a flush that holds on every thread, one
    thread.
    """
    cores = cpu_cores()
    if threads is not None:
        return ThreadChoice(threads, cores, {}, "given", _holds(threads))
    if os.environ.get("OMP_NUM_THREADS"):
        n = torch.get_num_threads()
        return ThreadChoice(n, cores, {}, "OMP_NUM_THREADS", _holds(n))
    if device.startswith("cuda"):
        n = torch.get_num_threads()
        return ThreadChoice(n, cores, {}, "cuda: the step runs on the GPU", _holds(n))
    counts = [1]
    while counts[-1] * 2 <= cores:
        counts.append(counts[-1] * 2)
    if cores > counts[-1]:
        counts.append(cores)
    if len(counts) > 1 and not _holds(counts[-1]):
        return ThreadChoice(1, cores, {}, "the subnormal flush does not reach torch's worker "
                            "threads here", _holds(1))
    slow = {n: f for n in counts[1:] if (f := _slowdown(n)) >= BUSY}
    counts = [n for n in counts if n not in slow]
    if counts == [1]:  # nothing left to time one thread against
        return ThreadChoice(1, cores, {}, "measured", _holds(1), slow)
    samples: dict[int, list[float]] = {n: [] for n in counts}
    for _ in range(rounds):
        for n in counts:
            with compute_threads(n):
                warm = _timed(step)  # warms the thread pool and the caches
                if n > 1 and warm > 3 * statistics.median(samples[1]):
                    samples[n].append(warm)  # hopeless already: not worth more steps
                    continue
                samples[n] += [_timed(step) for _ in range(steps)]
        fastest = min(statistics.median(v) for v in samples.values())
        counts = [n for n in counts if statistics.median(samples[n]) < 2 * fastest]
    timings = {n: statistics.median(v) for n, v in samples.items()}
    best = 1
    for n in counts[1:]:
        if timings[n] * GAIN <= timings[best]:
            best = n
    return ThreadChoice(best, cores, timings, "measured", _holds(best), slow)


def _slowdown(threads: int, repeats: int = 15) -> float:
    """How many times slower one elementwise operation split over ``threads`` runs than on one
    thread (means of ``repeats``: a thread that waits for a taken core shows in a few of them;
    well above 1 when other work holds the cores)."""
    x = torch.ones(1 << 20)  # about 0.5 ms on one thread: a worker's wake-up is small beside it
    means = []
    for n in (1, threads):
        with compute_threads(n):
            x.mul(1.0)  # warms the thread team
            times = []
            for _ in range(repeats):
                time.sleep(0.002)  # long enough for idle workers to stop spinning, as between
                times.append(_timed(lambda: x.mul(1.0)))  # the small operations of a step
            means.append(statistics.fmean(times))
    return means[1] / max(means[0], 1e-9)


def _timed(step: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    step()
    return time.perf_counter() - t0


def _holds(threads: int) -> bool:
    with compute_threads(threads) as flushed:
        return flushed


def _flush_everywhere(on: bool, threads: int) -> bool:
    if not torch.set_flush_denormal(on):
        return False
    if threads > 1:
        _in_every_worker(lambda: torch.set_flush_denormal(on), threads)
    return flush_holds() if on else False


def _in_every_worker(fn: Callable[[], object], threads: int) -> None:
    """Call ``fn`` once in each thread of an OpenMP team of ``threads`` (torch's thread pool:
    the same OpenMP runtime, entered from this thread)."""
    gomp = _openmp()
    if gomp is None:
        return
    callback = _CALLBACK(lambda _: fn())
    gomp.GOMP_parallel(callback, None, threads, 0)


_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_RUNTIME: list[ctypes.CDLL | None] = []


def _openmp() -> ctypes.CDLL | None:
    """torch's OpenMP runtime (GNU libgomp, or LLVM/Intel's, which export the same entry)."""
    if not _RUNTIME:
        lib = Path(torch.__file__).parent / "lib"
        found = None
        for path in [*sorted(lib.glob("libgomp*")), *sorted(lib.glob("libiomp*")),
                     *sorted(lib.glob("libomp*")), "libgomp.so.1"]:
            with contextlib.suppress(OSError, AttributeError):
                runtime = ctypes.CDLL(str(path))
                runtime.GOMP_parallel.argtypes = [_CALLBACK, ctypes.c_void_p, ctypes.c_uint,
                                                  ctypes.c_uint]
                runtime.GOMP_parallel.restype = None
                found = runtime
                break
        _RUNTIME.append(found)
    return _RUNTIME[0]
