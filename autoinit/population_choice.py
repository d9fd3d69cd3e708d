"""How many candidates a search trains at once: off, given, or measured on the model.

A population pays where one model leaves the hardware idle (small models, a GPU), and costs where
``vmap`` falls back to per-member loops (attention's fused kernels on CPU, say). So a search
times a few steps of a population of the size it would use against sequential probe steps on
this model and device, and stacks only where that is at least ``GAIN`` (1.3) times the
candidate-steps per second. The margin is wider than the threads' 1.15: on the benchmark tasks,
under load, the few timed steps ran 0.1-0.4 above the speed-up the probes then realized
(docs/population.md), and a population that only ties costs its copies and its memory.

Example:
    >>> import torch, torch.nn as nn
    >>> from autoinit.probe import ProbeConfig, ProbeData
    >>> batch = (torch.randn(16, 4, generator=torch.Generator().manual_seed(0)), torch.ones(16).long())
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> data, config = ProbeData([batch], [batch]), ProbeConfig(steps=4)
    >>> choose_population(net, data, config, 1, 8, 8, lambda: None).describe()
    'population probes: off, one candidate at a time (population=1)'
    >>> choose_population(nn.LSTM(4, 2), data, config, None, 8, 8, lambda: None).reason
    "LSTM '' has no vmap batching rule: probes run one at a time"
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import nn

from autoinit.population import (
    MemberStack,
    NoVmap,
    max_members,
    population_unsupported,
    uses_randomness,
)
from autoinit.probe import LossLoop, ProbeConfig, ProbeData, autocast_of, flush_denormal, rng_devices

__all__ = ["GAIN", "PopulationChoice", "choose_population"]

GAIN = 1.3  # a population is stacked automatically only when measured at least this much faster
SAMPLE_SECONDS = 0.02  # the least a timed sample lasts (steps in a row)


@dataclass(frozen=True)
class PopulationChoice:
    """How many candidates a search trains at once, and why.

    Attributes:
        size: members per population (1: sequential probes).
        ratio: measured candidate-steps/s of a population of ``size`` (or of the size measured)
            over sequential probes on this model and device; ``nan`` where not measured.
        reason: ``"measured"``, ``"given"`` or a sentence saying why probes run one at a time.
        requested: the ``population`` the caller gave (``None``: automatic).
    """

    size: int
    ratio: float = math.nan
    reason: str = "measured"
    requested: int | None = None

    @property
    def notable(self) -> bool:
        """Populations ran, or one asked for could not: a search's summary states it."""
        return self.size > 1 or self.refused

    @property
    def refused(self) -> bool:
        """A population of more than one was asked for and probes run one at a time."""
        return self.size == 1 and (self.requested or 1) > 1

    def describe(self) -> str:
        """One line for a search's header."""
        measured = (f"{self.ratio:.2f}x the candidate-steps/s of one at a time"
                    if math.isfinite(self.ratio) else "")
        if self.size > 1:
            why = measured if self.reason == "measured" else \
                f"{self.reason}{'; ' + measured if measured else ''}"
            return f"population probes: up to {self.size} candidates at once ({why})"
        if self.reason == "measured":
            return (f"population probes: off, one candidate at a time (measured: {measured}, "
                    f"below the {GAIN}x it must gain)")
        return f"population probes: off, one candidate at a time ({self.reason})"



def choose_population(model: nn.Module, data: ProbeData, config: ProbeConfig,
                      requested: int | None, members: int, per_seed: int,
                      bare: Callable[[], None], rounds: int = 5) -> PopulationChoice:
    """How many candidates to train at once (see :class:`PopulationChoice`).

    ``requested`` 1 is off, ``None`` automatic, ``K`` at most K at a time. The size is the
    ``members`` a population will hold (``per_seed`` for a model that draws random numbers,
    whose populations share one seed), at most what the free memory holds. A population of that
    size is timed against ``bare()``, one step of a sequential probe, for ``rounds`` rounds of
    samples lasting ``SAMPLE_SECONDS`` or one step, each timed single-model sample after an
    untimed step (2 rounds where the ratio is already far from the threshold; the medians
    decide), and one held-out evaluation against one of a
    single model, counted once per ``config.eval_every`` steps; automatically, populations are
    used only where they train at least ``GAIN`` times the candidate-steps per second.
    ``model`` is left as it was.
    """
    choice = _choose(model, data, config, requested, members, per_seed, bare, rounds)
    return replace(choice, requested=requested)


def _choose(model: nn.Module, data: ProbeData, config: ProbeConfig, requested: int | None,
            members: int, per_seed: int, bare: Callable[[], None], rounds: int) -> PopulationChoice:
    if requested == 1:
        return PopulationChoice(1, reason="population=1")
    reason = population_unsupported(model, data, config)
    if reason is not None:
        return PopulationChoice(1, reason=reason)
    try:
        random = uses_randomness(model, data, config)
    except NoVmap as exc:
        return PopulationChoice(1, reason=str(exc))
    wanted = requested or (per_seed if random else members)
    size = min(wanted, max_members(model, data, config.device))
    if size < 2:
        why = "one member is all" if wanted < 2 else "the free memory holds one member"
        return PopulationChoice(1, reason=f"{why}: probes run one at a time")
    ratio = _measure(model, data, config, size, bare, rounds)
    if requested is not None:
        return PopulationChoice(size, ratio, "given")
    return PopulationChoice(size if ratio >= GAIN else 1, ratio)


def _measure(model: nn.Module, data: ProbeData, config: ProbeConfig, size: int,
             bare: Callable[[], None], rounds: int) -> float:
    """Candidate-steps/s of a population of ``size`` over sequential probes: training steps
    timed alternately (medians), and one held-out evaluation of each, weighed by the probe's
    evaluations per step (not timed where the steps alone are well below ``GAIN``)."""
    stack = MemberStack([copy.deepcopy(model) for _ in range(size)], data, config)
    single = copy.deepcopy(model)
    loop = LossLoop(data, autocast_of(config))
    batch = data.train[0]
    together, alone = [], []
    with torch.random.fork_rng(devices=rng_devices(config)), flush_denormal():
        torch.manual_seed(config.seed)
        # one sample runs enough steps to last SAMPLE_SECONDS: a single step of a small model
        # (a millisecond) is timer and scheduler noise on a busy machine
        n_together = _repeats(_timed(lambda: stack.step(batch), config))
        n_alone = _repeats(_timed(bare, config))
        for done in range(1, rounds + 1):
            # the timed single steps follow an untimed one: a population step evicts the cache
            # that a single model's next step finds warm in a sequential probe (single steps
            # timed right after population steps took 1.6x as long, here)
            together.append(_timed(lambda: stack.step(batch), config, n=n_together))
            alone.append(_timed(bare, config, warm=True, n=n_alone))
            ratio = size * statistics.median(alone) / statistics.median(together)
            if done >= 2 and not 0.8 * GAIN <= ratio <= 1.25 * GAIN:
                break  # clear enough: the rounds left would not change the decision
        if ratio < 0.8 * GAIN:  # off already: a population evaluates no faster than it steps
            return ratio
        eval_together = _timed(lambda: stack.evaluate(data.val), config)
        eval_alone = _timed(lambda: loop.evaluate(single, data.val, config.seed), config,
                            warm=True)
    every = config.eval_every
    return (size * (statistics.median(alone) + eval_alone / every)
            / (statistics.median(together) + eval_together / every))


def _repeats(seconds: float) -> int:
    """Steps per timed sample, for a step of ``seconds``."""
    return max(1, min(64, math.ceil(SAMPLE_SECONDS / max(seconds, 1e-6))))


def _timed(fn: Callable[[], object], config: ProbeConfig, warm: bool = False, n: int = 1) -> float:
    """Seconds per call of ``fn``, over ``n`` calls in a row (after an untimed one with
    ``warm``)."""
    cuda = torch.device(config.device).type == "cuda"
    if warm:
        fn()
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    if cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / n
