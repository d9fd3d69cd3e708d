"""The probe: a short training of a candidate initialization on cached batches.

Batches are fetched once, kept on the device and replayed in the same order for every candidate,
with the same dropout seed (common random numbers), so candidates differ only by their weights.
The score is the held-out loss at the end (``objective="final"``) or the mean held-out loss over
the evaluation points (``objective="mean"``, which rewards fast convergence). With
``cooldown > 0`` the probe's last steps decay the learning rate linearly towards 0 (see
:mod:`autoinit.cooldown`), so the score is an annealed loss. With ``rungs`` (successive-halving
rung ends, the last one ``steps``) each earlier rung ``r`` is scored as a probe of ``r`` steps
would be: without a cooldown (the default), by the held-out loss at step ``r``; with one, a copy
of the model and the loop's state is branched off before step ``r``, cooled down on the steps up
to ``r`` and evaluated, while the run itself goes on at the full rate (each branch costs its
cooldown steps and one copy). With a
:class:`~autoinit.loop.TrainLoop` in :attr:`ProbeData.loop` the user's own step and score
replace the single optimizer and the held-out loss; everything else is the same.

Example:
    >>> import torch, torch.nn as nn
    >>> g = torch.Generator().manual_seed(0)
    >>> batches = [(torch.randn(16, 4, generator=g), torch.randint(0, 2, (16,), generator=g))]
    >>> data = ProbeData(batches * 4, batches)
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> r = run_probe(net, data, ProbeConfig(steps=8, eval_every=4))
    >>> [step for step, _ in r.curve], r.diverged
    ([4, 8], None)
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from autoinit.batches import LossFn, make_loss
from autoinit.cooldown import (
    cooldown_factor,
    cooldown_length,
    find_optimizers,
    scaled_lr,
)
from autoinit.errors import AutoinitError, ConfigError, first_line
from autoinit.interrupt import check_interrupt
from autoinit.settings import DEFAULTS, check_option
from autoinit.threads import flushing

__all__ = ["OPTIMIZERS", "LossLoop", "ProbeLoop", "ProbeConfig", "ProbeData", "ProbeResult", "flush_denormal",
           "autocast_of", "bare_step", "check_first_step", "check_half_precision", "divergence",
           "make_optimizer", "probe_loop", "probe_score", "rng_devices", "run_probe"]

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9),
    "rmsprop": torch.optim.RMSprop,
}
OBJECTIVES = ("final", "mean")
EXPLODE_WINDOW = 10  # divergence: the median of this many last losses beyond explode_factor x the first
# a factory of the context that runs the forward passes (bf16 autocast on CUDA, else nothing)
Autocast = Callable[[], contextlib.AbstractContextManager[Any]]


def make_optimizer(optimizer: str | Callable, params: Iterable[torch.Tensor],
                   lr: float) -> torch.optim.Optimizer:
    """An optimizer from a name in :data:`OPTIMIZERS` or a callable ``(params, lr) -> Optimizer``.

    A callable that takes only ``params`` is called without the learning rate.
    """
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {sorted(OPTIMIZERS)} or a callable, "
                              f"got {optimizer!r}")
        return OPTIMIZERS[optimizer](params, lr=lr)
    try:
        return optimizer(params, lr=lr)
    except TypeError:
        return optimizer(params)


class ProbeLoop(Protocol):
    """What a probe trains with: :class:`~autoinit.loop.TrainLoop` (the user's step and score)
    or :class:`LossLoop` (one optimizer on the loss)."""

    def start(self, model: nn.Module, optimizer: str | Callable, lr: float) -> Any: ...

    def step(self, model: nn.Module, batch: Any, state: Any) -> dict[str, Any]: ...

    def evaluate(self, model: nn.Module, val: list[Any], seed: int) -> float: ...


@dataclass(frozen=True)
class ProbeConfig:
    """How a candidate is trained and scored.

    Attributes:
        steps: optimizer steps per probe.
        lr: learning rate.
        optimizer: a name in :data:`OPTIMIZERS` or ``(params, lr) -> Optimizer``.
        eval_every: steps between held-out evaluations (reported to the pruner).
        objective: ``"final"`` or ``"mean"`` held-out loss.
        explode_factor: a training loss whose median magnitude over the last
            :data:`EXPLODE_WINDOW` steps is above ``explode_factor`` times the first one is
            divergence (:func:`divergence`).
        seed: the dropout / RNG seed every candidate shares.
        device: where the probe runs.
        bf16: bf16 autocast (CUDA only).
        cooldown: the fraction of each rung's steps (0 to 0.5) that ends it with a linear
            learning-rate decay towards 0; 0: a constant rate throughout.
        rungs: the steps at which the probe is scored and reported (ascending, the last one
            ``steps``); empty: one rung, ``steps``, and reports at every evaluation.
    """

    steps: int = DEFAULTS.probe_steps
    lr: float = DEFAULTS.lr
    optimizer: str | Callable = DEFAULTS.optimizer
    eval_every: int = DEFAULTS.eval_every
    objective: str = DEFAULTS.objective
    explode_factor: float = 10.0
    seed: int = DEFAULTS.seed
    device: str = "cpu"
    bf16: bool = False
    cooldown: float = 0.0
    rungs: tuple[int, ...] = ()

    @property
    def rung_ends(self) -> tuple[int, ...]:
        """The steps at which the probe is scored: ``rungs``, or ``(steps,)``."""
        return self.rungs or (self.steps,)

    def __post_init__(self) -> None:
        for name in ("steps", "eval_every", "lr"):
            check_option(name, getattr(self, name))
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective must be one of {list(OBJECTIVES)}, got {self.objective!r}")
        if not self.explode_factor > 1:
            raise ConfigError(f"explode_factor must be > 1, got {self.explode_factor!r}")
        check_option("cooldown", self.cooldown)
        rungs = tuple(self.rungs)
        if rungs and (any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in rungs)
                      or list(rungs) != sorted(set(rungs)) or rungs[-1] != self.steps):
            raise ConfigError(f"rungs must be ascending positive step counts ending at steps "
                              f"({self.steps}), got {self.rungs!r}")


@dataclass
class ProbeData:
    """Training and held-out batches, already on the probe's device, the loss, and the user's
    own training loop (``None``: autoinit's, one optimizer on the loss)."""

    train: list[Any]
    val: list[Any]
    # None: the user's loop brings its own score and no loss (no screening pass, no LSUV)
    loss: LossFn | None = field(default_factory=lambda: make_loss(None))
    loop: ProbeLoop | None = None

    def __post_init__(self) -> None:
        if self.loss is None and self.loop is None:
            raise ConfigError("a probe needs a loss or a training loop, got neither")
        if not self.train:
            raise ConfigError("the training dataloader yielded no batch")
        if not self.val:
            raise ConfigError("the validation dataloader yielded no batch")


@dataclass(frozen=True)
class ProbeResult:
    """What one probe measured."""

    score: float
    curve: list[tuple[int, float]]  # (step, held-out loss or the user's score)
    train_loss: list[float]  # the step's "loss" value (autoinit's own loop returns only that)
    steps: int
    diverged: str | None = None
    stopped_at: int | None = None  # a pruner stopped it after this step
    seconds: float = 0.0
    train_values: dict[str, list[float]] = field(default_factory=dict)  # the step's other values
    rung_scores: tuple[tuple[int, float], ...] = ()  # (rung end, annealed score) reached
    branch_steps: int = 0  # steps trained in the rungs' cooldown branches
    cooldown_note: str | None = None  # why the cooldown was not applied


def evaluate(model: nn.Module, data: ProbeData, autocast: Autocast) -> float:
    """Mean loss over the held-out batches, in eval mode."""
    model.eval()
    with torch.no_grad(), autocast():
        total = sum(float(data.loss(model, b)) for b in data.val)
    model.train()
    return total / len(data.val)


@dataclass(frozen=True)
class LossLoop:
    """autoinit's own training loop: one optimizer on ``loss(model, batch)``, scored by the mean
    held-out loss (the interface of :class:`~autoinit.loop.TrainLoop`)."""

    data: ProbeData
    autocast: Autocast = contextlib.nullcontext

    def start(self, model: nn.Module, optimizer: str | Callable, lr: float) -> torch.optim.Optimizer:
        return make_optimizer(optimizer, [p for p in model.parameters() if p.requires_grad], lr)

    def step(self, model: nn.Module, batch: Any, optimizer: torch.optim.Optimizer
             ) -> dict[str, torch.Tensor]:
        optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            loss = self.data.loss(model, batch)
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach().float()}

    def evaluate(self, model: nn.Module, val: list[Any], seed: int) -> float:
        return evaluate(model, self.data, self.autocast)


def probe_loop(data: ProbeData, config: ProbeConfig) -> ProbeLoop:
    """The loop a probe runs: the user's :class:`~autoinit.loop.TrainLoop`, or autoinit's own."""
    return data.loop or LossLoop(data, autocast_of(config))


def run_probe(
    model: nn.Module,
    data: ProbeData,
    config: ProbeConfig,
    report: Callable[[int, float], bool] | None = None,
) -> ProbeResult:
    """Train ``model`` (already initialized, on ``config.device``) and score it.

    ``report(step, score)`` is called at each evaluation (with ``rungs``: at each rung end but
    the last, with the rung's annealed score); returning ``True`` stops the probe there (a
    pruner's decision). The global RNG is restored afterwards.
    """
    start = time.perf_counter()
    loop = probe_loop(data, config)
    curve: list[tuple[int, float]] = []
    rungs: list[tuple[int, float]] = []
    values: dict[str, torch.Tensor] = {}
    n = len(data.train)
    diverged = stopped = None
    branch_steps = 0
    devices = rng_devices(config)
    with torch.random.fork_rng(devices=devices), flush_denormal():
        torch.manual_seed(config.seed)
        model.train()
        state = loop.start(model, config.optimizer, config.lr)
        optimizers = find_optimizers(state) if config.cooldown else []
        note = _cooldown_note(config, optimizers, state)
        length = cooldown_length(config.steps, config.cooldown) if optimizers else 0
        branch_at = _branch_points(config) if optimizers else {}
        plain = set(config.rung_ends[:-1]) - set(branch_at.values())
        for step in range(1, config.steps + 1):
            check_interrupt()  # a pending Ctrl-C stops the probe here, between steps
            with scaled_lr(optimizers, cooldown_factor(step, config.steps, length)):
                out = loop.step(model, data.train[(step - 1) % n], state)
            for key, value in out.items():
                if key not in values:  # allocated once per value, not at every step
                    values[key] = torch.full((config.steps,), math.nan)
                values[key][step - 1] = value
            evaluated = not step % config.eval_every or step == config.steps
            if not (evaluated or step in plain or step in branch_at):
                continue
            diverged = next((d for key, v in values.items()
                             if (d := divergence(v[:step], config.explode_factor, key))), None)
            if diverged:
                break
            if step in branch_at:
                rung = branch_at[step]
                try:
                    rungs.append((rung, _branch(model, state, loop, data, config, step, rung)))
                    branch_steps += rung - step
                except _NoCopy as exc:
                    note, branch_at, plain = str(exc), {}, set(config.rung_ends[:-1])
                else:
                    if not math.isfinite(rungs[-1][1]):
                        diverged = f"non-finite held-out score in the cooldown before step {rung}"
                        break
                    if report is not None and report(rung, rungs[-1][1]):
                        stopped = rung
                        break
            if not (evaluated or step in plain):
                continue
            held_out = loop.evaluate(model, data.val, config.seed)
            if not math.isfinite(held_out):
                diverged = f"non-finite held-out {'score' if data.loop else 'loss'} at step {step}"
                break
            if evaluated:
                curve.append((step, held_out))
            if step in plain:
                rungs.append((step, held_out))
            reports = step in plain if config.rungs[:-1] else evaluated
            if report is not None and step != config.steps and reports and report(step, held_out):
                stopped = step
                break
    recorded = {key: v[:step].tolist() for key, v in values.items()}
    train_loss = recorded.pop("loss", [])
    score = probe_score(curve, config.objective, diverged)
    if not diverged and stopped is None:
        rungs.append((config.steps, curve[-1][1]))
    return ProbeResult(score, curve, train_loss, step, diverged, stopped,
                       time.perf_counter() - start, recorded, tuple(rungs), branch_steps, note)


def probe_score(curve: list[tuple[int, float]], objective: str, diverged: str | None) -> float:
    """A probe's score from its held-out ``curve``: the last point (``objective="final"``) or
    the mean (``"mean"``); infinity where it ``diverged``.

    Example:
        >>> probe_score([(4, 0.9), (8, 0.5)], "final", None), probe_score([(4, 0.9), (8, 0.5)], "mean", None)
        (0.5, 0.7)
    """
    if diverged:
        return math.inf
    if objective == "final":
        return curve[-1][1]
    return sum(v for _, v in curve) / len(curve)


class _NoCopy(Exception):
    """The model and the loop's state could not be copied for a rung's cooldown branch."""


def rng_devices(config: ProbeConfig) -> list[torch.device]:
    """The devices whose RNG a probe forks besides the CPU's: its CUDA device, if any."""
    return [torch.device(config.device)] if torch.device(config.device).type == "cuda" else []


def _branch_points(config: ProbeConfig) -> dict[int, int]:
    """``{step after which a rung's cooldown branch starts: the rung's end}`` for every rung but
    the last (that one cools down in the run itself) whose cooldown is at least one step."""
    out = {}
    for rung in config.rung_ends[:-1]:
        length = cooldown_length(rung, config.cooldown)
        if length:
            out[rung - length] = rung
    return out


def _branch(model: nn.Module, state: Any, loop: ProbeLoop, data: ProbeData, config: ProbeConfig,
            after: int, rung: int) -> float:
    """The score of a probe of ``rung`` steps: a copy of the model and state after step
    ``after``, trained to step ``rung`` with the rate cooling down, then evaluated. The run's
    RNG stream is left as it was."""
    try:
        twin, twin_state = copy.deepcopy((model, state))
    except Exception as exc:  # noqa: BLE001 - any failure to copy means: no branch
        raise _NoCopy(f"rungs before the last scored without a cooldown: the model and the "
                      f"training state could not be copied ({type(exc).__name__}: {exc})"
                      ) from exc
    optimizers = find_optimizers(twin_state)
    with torch.random.fork_rng(devices=rng_devices(config)):
        for step in range(after + 1, rung + 1):
            with scaled_lr(optimizers, cooldown_factor(step, rung, rung - after)):
                out = loop.step(twin, data.train[(step - 1) % len(data.train)], twin_state)
            if not all(math.isfinite(float(v)) for v in out.values()):
                return math.inf
        return loop.evaluate(twin, data.val, config.seed)


def _cooldown_note(config: ProbeConfig, optimizers: list, state: Any) -> str | None:
    if not config.cooldown or optimizers:
        return None
    return (f"no cooldown: the training state ({type(state).__name__}) holds no "
            "torch.optim.Optimizer to scale; return the optimizers from make_state (itself, or "
            "in a dict, list or attribute) for annealed probe scores")


@contextlib.contextmanager
def flush_denormal() -> Iterator[None]:
    """Treat subnormal floats as zero on CPU while training (torch's default is off), on the
    calling thread; left on afterwards where it was on before (see :mod:`autoinit.threads` for
    torch's worker threads).

    A net whose signal shrinks layer by layer (PyTorch's default init on a deep residual MLP,
    say) fills Adam's second moments with subnormal numbers, which x86 CPUs compute 10-100x
    slower; flushing them changes no result that matters and keeps every probe step fast.
    """
    was = flushing()
    supported = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if supported and not was:
            torch.set_flush_denormal(False)


def divergence(values: torch.Tensor, factor: float, key: str = "loss") -> str | None:
    """Why a training curve ``values`` diverged, or ``None``: a non-finite value, or a loss still
    beyond ``factor`` times its first value over the last :data:`EXPLODE_WINDOW` steps (the
    median of their magnitudes). A spike the training comes back from within those steps is not
    divergence: Adam's first steps at a high rate without warmup can multiply the loss for a
    step or two, and the full training recovers (docs/probe_ranking.md, "Session 17").

    Example:
        >>> divergence(torch.tensor([2.3, 80.0] + [1.0] * 10), 10.0) is None  # a spike
        True
        >>> divergence(torch.tensor([2.3] + [50.0] * 10), 10.0)
        'training loss exploded from 2.3 to 50 (median of the last 10 steps)'
    """
    what = "training loss" if key == "loss" else f"training value {key!r}"
    finite = torch.isfinite(values)
    if not bool(finite.all()):
        return f"non-finite {what} at step {int((~finite).nonzero()[0]) + 1}"
    if len(values) < EXPLODE_WINDOW:
        return None
    first = float(values[0])
    recent = float(values[-EXPLODE_WINDOW:].abs().median())
    if recent > factor * max(abs(first), 1e-8):
        return (f"{what} exploded from {first:.4g} to {recent:.4g} (median of the last "
                f"{EXPLODE_WINDOW} steps)")
    return None


def autocast_of(config: ProbeConfig) -> Autocast:
    """The probe's autocast context factory: bf16 on CUDA with ``config.bf16``, else a no-op."""
    if config.bf16 and torch.device(config.device).type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext


def bare_step(model: nn.Module, data: ProbeData, config: ProbeConfig) -> Callable[[], None]:
    """One step of the training loop on ``model`` (the cost unit's step): one optimizer step on
    the loss, or the user's own ``train_step``."""
    loop = probe_loop(data, config)
    count, state = [0], [None]

    def step() -> None:
        with torch.random.fork_rng(devices=[]), flush_denormal():  # as in the probe
            if count[0] % config.steps == 0:  # a fresh state per probe's worth of steps, as a probe
                state[0] = loop.start(model, config.optimizer, config.lr)
            loop.step(model, data.train[count[0] % len(data.train)], state[0])
            if config.device.startswith("cuda"):
                torch.cuda.synchronize()
        count[0] += 1

    return step


def check_first_step(step: Callable[[], object], optimizer: str | Callable, lr: float) -> None:
    """Run ``step`` (a :func:`bare_step`) once, so that an optimizer that cannot train the model
    (Adam on a sparse embedding's gradients) fails in one line before any work."""
    try:
        step()
    except AutoinitError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported as bad input, with the cause
        raise ConfigError(f"the first training step failed with optimizer={optimizer!r}, "
                          f"lr={lr}: {type(exc).__name__}: {first_line(exc)}") from exc


_EPS_DIVIDED = ("adam", "adamw", "rmsprop")  # they divide by sqrt(v) + eps, eps = 1e-8


def check_half_precision(model: nn.Module, optimizer: str | Callable) -> None:
    """Refuse float16 parameters under a named optimizer that divides by ``sqrt(v) + eps``:
    ``eps`` (1e-8) is 0 in float16, so a zero gradient gives 0/0 on the first step and every
    probe ends in NaN. bfloat16 keeps float32's range and trains."""
    half = [n for n, p in model.named_parameters() if p.requires_grad and p.dtype == torch.float16]
    if half and optimizer in _EPS_DIVIDED:
        raise ConfigError(
            f"optimizer={optimizer!r} cannot train float16 parameters ({', '.join(map(repr, half[:3]))}"
            f"{', ...' if len(half) > 3 else ''}): its eps (1e-8) is 0 in float16 and the first "
            "step gives NaN; keep the model in float32 (bf16=True autocasts on CUDA) or "
            "bfloat16, or pass optimizer=callable(params, lr) with a larger eps")
