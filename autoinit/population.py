"""Population probes: many candidate initializations of one model trained at once.

A small model leaves the hardware idle; training K copies of it as one stacked population
(``torch.func.stack_module_state``, the forward of all K under ``vmap`` with
``functional_call``, the sum of the K losses in one backward) fills it. The optimizer is one
``torch.optim`` optimizer on the stacked tensors: Adam, AdamW, RMSprop and SGD with momentum are
elementwise, so it is exactly K independent optimizers. Each member keeps the probe's contract
(:func:`autoinit.probe.run_probe`): the same batches in the same order, the same evaluation
points, the same divergence rules and score, the cooldown; a member's curve equals its
sequential probe's within float rounding. A member that diverges or is stopped by its
``report`` leaves the population (the rest go on without it; no member's values reach
another's, since every stacked operation is per member).

Random operations (dropout): members that share a seed share the random draws, as sequential
probes with one seed do (common random numbers); members with different seeds run in separate
populations (a model without random operations is one population whatever the seeds). Buffers
(BatchNorm's running statistics) are stacked and updated per member.

What cannot be stacked runs as sequential probes, with the reason in
:attr:`PopulationRun.fallback`: the user's own ``train_step``, a callable optimizer, recurrent
modules (``nn.LSTM``/``GRU``/``RNN``: no vmap batching rule), rungs with a cooldown (their
branch copies), and any model ``vmap`` refuses (data-dependent control flow, in-place writes
into a fresh tensor).

How many members a search stacks, if any, is :mod:`autoinit.population_choice`'s to say.

Example:
    >>> import torch, torch.nn as nn
    >>> from autoinit.probe import ProbeConfig, ProbeData
    >>> g = torch.Generator().manual_seed(0)
    >>> batches = [(torch.randn(16, 4, generator=g), torch.randint(0, 2, (16,), generator=g))]
    >>> data = ProbeData(batches * 4, batches)
    >>> nets = [nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)) for _ in range(3)]
    >>> run = run_population(nets, data, ProbeConfig(steps=8, eval_every=4))
    >>> [[step for step, _ in r.curve] for r in run.results], run.fallback
    ([[4, 8], [4, 8], [4, 8]], None)
"""

from __future__ import annotations

import copy
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from autoinit.apply import apply_scheme
from autoinit.cooldown import cooldown_factor, cooldown_length, scaled_lr
from autoinit.errors import ConfigError, first_line
from autoinit.interrupt import check_interrupt
from autoinit.probe import (
    ProbeConfig,
    ProbeData,
    ProbeResult,
    autocast_of,
    divergence,
    flush_denormal,
    make_optimizer,
    probe_score,
    rng_devices,
    run_probe,
)

if TYPE_CHECKING:
    from autoinit.objective import Objective
    from autoinit.scheme import InitScheme

__all__ = ["MemberStack", "NoVmap", "PopulationRun", "max_members", "population_unsupported",
           "probe_schemes", "run_population", "uses_randomness"]

Report = Callable[[int, float], bool]
# bytes a member needs besides its activations: parameters, gradients and two optimizer moments
_STATE_COPIES = 4
_ACTIVATION_COPIES = 3  # outputs kept for the backward, their gradients, slack
_MEMORY_SHARE = 0.5  # of the free memory a population may take


@dataclass(frozen=True)
class PopulationRun:
    """The probes of a population run: one :class:`~autoinit.probe.ProbeResult` per member, in
    order; ``fallback`` says why members ran as sequential probes, where they did."""

    results: list[ProbeResult]
    fallback: str | None = None


class NoVmap(Exception):
    """The model's loss cannot be run under ``vmap``."""


class _LossOf(nn.Module):
    """``loss(model, batch)`` as a module, so that ``functional_call`` swaps the model's
    parameters for whatever the loss calls on it (its forward or any other method)."""

    def __init__(self, model: nn.Module, loss: Callable[[nn.Module, Any], torch.Tensor]) -> None:
        super().__init__()
        self.model = model
        self.loss = loss

    def forward(self, batch: Any) -> torch.Tensor:
        return self.loss(self.model, batch)


def population_unsupported(model: nn.Module, data: ProbeData, config: ProbeConfig) -> str | None:
    """Why ``model`` cannot be probed as a population with ``data`` and ``config``, in one
    line, or ``None`` (``vmap`` itself is tried by :func:`run_population`)."""
    if data.loop is not None or data.loss is None:
        return "your own train_step steps one model: probes run one at a time"
    if not isinstance(config.optimizer, str):
        return "a callable optimizer cannot be stacked: probes run one at a time"
    if config.cooldown and len(config.rung_ends) > 1:
        return "rungs with a cooldown branch a copy per member: probes run one at a time"
    shared = _shared_module(model)
    if shared is not None:
        return (f"{shared[0]!r} and {shared[1]!r} are one module, which torch.func's "
                "functional_call leaves without its parameters: probes run one at a time")
    for name, module in model.named_modules():
        if isinstance(module, nn.RNNBase):
            return (f"{type(module).__name__} {name!r} has no vmap batching rule: probes run "
                    "one at a time")
        if isinstance(module, nn.Embedding | nn.EmbeddingBag) and module.sparse:
            return (f"{type(module).__name__} {name!r} has sparse gradients, which cannot be "
                    "stacked: probes run one at a time")
    return None


def _shared_module(model: nn.Module) -> tuple[str, str] | None:
    """Two names of one module holding parameters (an embedding shared by encoder and decoder),
    if any: ``functional_call`` restores such a module with plain tensors in place of its
    parameters (torch 2.13)."""
    seen: dict[int, str] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        if next(module.parameters(recurse=False), None) is None:
            continue
        if id(module) in seen and seen[id(module)] != name:
            return seen[id(module)], name
        seen.setdefault(id(module), name)
    return None


def max_members(model: nn.Module, data: ProbeData, device: str | torch.device = "cpu") -> int:
    """How many members of ``model`` fit in half the free memory of ``device`` (CPU RAM from
    ``/proc/meminfo``, GPU memory from ``torch.cuda.mem_get_info``): parameters, gradients and
    optimizer moments, and the activations of a forward pass on the first batch, kept for the
    backward."""
    state = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    outputs = [0]

    def count(_module: nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            outputs[0] += output.numel() * output.element_size()

    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    was = model.training
    try:
        model.eval()  # no running statistic moves
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            data.loss(model, data.train[0])
    finally:
        model.train(was)
        for hook in hooks:
            hook.remove()
    need = _STATE_COPIES * state + _ACTIVATION_COPIES * outputs[0]
    return max(1, int(_MEMORY_SHARE * _free_bytes(torch.device(device)) // max(need, 1)))


def _free_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


class MemberStack:
    """Members of one model as stacked leaf tensors with one optimizer over them."""

    def __init__(self, models: Sequence[nn.Module], data: ProbeData, config: ProbeConfig,
                 randomness: str = "same") -> None:
        self.config = config
        self.wrap = _LossOf(models[0], data.loss)
        params, buffers = stack_module_state(list(models))
        self.params = {f"model.{k}": v for k, v in params.items()}
        self.buffers = {f"model.{k}": v for k, v in buffers.items()}
        self.optimizer = make_optimizer(config.optimizer, self._trainable(), config.lr)
        self.autocast = autocast_of(config)
        self.forward = vmap(self._loss, in_dims=(0, 0, None), randomness=randomness)

    def _loss(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
              batch: Any) -> torch.Tensor:
        with warnings.catch_warnings():  # an op without a batching rule runs member by member:
            warnings.filterwarnings("ignore", "There is a performance drop")  # slow, not wrong
            return functional_call(self.wrap, (params, buffers), (batch,))

    def _trainable(self) -> list[torch.Tensor]:
        return [p for p in self.params.values() if p.requires_grad]

    def step(self, batch: Any) -> torch.Tensor:
        """One optimizer step of every member: their training losses."""
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            losses = self.forward(self.params, self.buffers, batch)
        losses.sum().backward()
        self.optimizer.step()
        return losses.detach().float()

    def evaluate(self, val: list[Any]) -> list[float]:
        """Every member's mean held-out loss, in eval mode, summed as the sequential probe does."""
        self.wrap.eval()
        with torch.no_grad(), self.autocast():
            per_batch = torch.stack([self.forward(self.params, self.buffers, b).double()
                                     for b in val])
        self.wrap.train()
        return [sum(column) / len(val) for column in per_batch.T.tolist()]

    def keep(self, rows: list[int]) -> None:
        """Only the members in ``rows`` go on, with their optimizer state."""
        index = torch.tensor(rows, device=next(iter(self.params.values())).device)
        old = self._trainable()
        self.params = {k: v.detach()[index].clone().requires_grad_(v.requires_grad)
                       for k, v in self.params.items()}
        self.buffers = {k: v[index].clone() for k, v in self.buffers.items()}
        before, self.optimizer = self.optimizer, make_optimizer(
            self.config.optimizer, self._trainable(), self.config.lr)
        for was, now in zip(old, self._trainable(), strict=True):
            self.optimizer.state[now] = {
                k: v[index].clone() if isinstance(v, torch.Tensor) and v.shape == was.shape else v
                for k, v in before.state.get(was, {}).items()}

    def write_back(self, models: Sequence[nn.Module], rows: dict[int, int]) -> None:
        """Copy the members at ``{row: member}`` into their modules (trained in place, as a
        sequential probe trains its model)."""
        with torch.no_grad():
            for row, member in rows.items():
                for key, value in self.params.items():
                    models[member].get_parameter(key[6:]).copy_(value[row])
                for key, value in self.buffers.items():
                    models[member].get_buffer(key[6:]).copy_(value[row])


def uses_randomness(model: nn.Module, data: ProbeData, config: ProbeConfig) -> bool:
    """Whether the loss draws random numbers; :class:`NoVmap` when it cannot be vmapped. Passes
    of a copy, forward and backward (its weights are not stepped)."""
    try:
        _forward_once(model, data, config, "error")
        random = False
    except Exception as exc:  # noqa: BLE001 - any refusal of vmap means: one at a time
        if "random" not in first_line(exc):
            raise NoVmap(_refusal(exc)) from exc
        random = True
    try:
        _forward_once(model, data, config, "same")
    except Exception as exc:  # noqa: BLE001
        raise NoVmap(_refusal(exc)) from exc
    return random


def _forward_once(model: nn.Module, data: ProbeData, config: ProbeConfig, randomness: str) -> None:
    """A training pass of a copy under ``vmap``, forward and backward (some ops refuse only
    gradients there: CPU attention a mask computed from parameters, as Swin's); with
    ``randomness="same"`` an evaluation pass too (eval mode may take other kernels)."""
    stack = MemberStack([copy.deepcopy(model)], data, config, randomness)
    with torch.random.fork_rng(devices=rng_devices(config)):
        stack.forward(stack.params, stack.buffers, data.train[0]).sum().backward()
        if randomness == "same":
            stack.evaluate(data.val[:1])


def _refusal(exc: BaseException) -> str:
    return (f"vmap refused the model ({type(exc).__name__}: {first_line(exc)[:160]}): probes "
            "run one at a time")


def run_population(models: Sequence[nn.Module], data: ProbeData,
                   configs: ProbeConfig | Sequence[ProbeConfig],
                   reports: Sequence[Report | None] | None = None,
                   size: int | None = None) -> PopulationRun:
    """Train ``models`` (already initialized copies of one model, on ``config.device``) as
    stacked populations and score each as :func:`~autoinit.probe.run_probe` would.

    Args:
        models: the members, trained in place.
        data: the probe's batches and loss.
        configs: one config for all, or one per member; they may differ only in ``seed`` and
            ``lr`` (members are grouped by learning rate, and by seed for a model that draws
            random numbers).
        reports: per member, ``report(step, score)`` as in ``run_probe`` (``True`` stops it).
        size: the most members per population (default: what the free memory holds).

    Returns:
        one result per member, in order, and why members ran one at a time, where they did.
    """
    configs = [configs] * len(models) if isinstance(configs, ProbeConfig) else list(configs)
    reports = list(reports) if reports is not None else [None] * len(models)
    if not len(models) == len(configs) == len(reports):
        raise ConfigError(f"run_population needs one config and report per model, got "
                          f"{len(models)} models, {len(configs)} configs, {len(reports)} reports")
    shared = {replace(c, seed=0, lr=1.0) for c in configs}
    if len(shared) > 1:
        raise ConfigError("the configs of a population may differ only in seed and lr, got "
                          f"{len(shared)} different settings")
    if not models:
        return PopulationRun([])
    results: list[ProbeResult | None] = [None] * len(models)
    reason = population_unsupported(models[0], data, configs[0])
    random = False
    if reason is None:
        try:
            random = uses_randomness(models[0], data, configs[0])
        except NoVmap as exc:
            reason = str(exc)
    if reason is not None:
        return PopulationRun([run_probe(m, data, c, r) for m, c, r in
                              zip(models, configs, reports, strict=True)], reason)
    groups: dict[tuple[float, int | None], list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault((c.lr, c.seed if random else None), []).append(i)
    size = size or max_members(models[0], data, configs[0].device)
    for members in groups.values():
        for at in range(0, len(members), max(size, 1)):
            chunk = members[at:at + size]
            if len(chunk) == 1:
                i = chunk[0]
                results[i] = run_probe(models[i], data, configs[i], reports[i])
                continue
            trained = _train([models[i] for i in chunk], data, configs[chunk[0]],
                             [reports[i] for i in chunk])
            for i, result in zip(chunk, trained, strict=True):
                results[i] = result
    return PopulationRun([r for r in results if r is not None])


def _train(models: Sequence[nn.Module], data: ProbeData, config: ProbeConfig,
           reports: Sequence[Report | None]) -> list[ProbeResult]:
    """One population: the loop of :func:`~autoinit.probe.run_probe`, per member."""
    start = time.perf_counter()
    k, n = len(models), len(data.train)
    values = torch.full((k, config.steps), math.nan)
    members = [_Member(config.steps, report) for report in reports]
    alive = list(range(k))  # the member at each row of the stack
    plain = set(config.rung_ends[:-1])
    with torch.random.fork_rng(devices=rng_devices(config)), flush_denormal():
        torch.manual_seed(config.seed)
        for model in models:
            model.train()
        stack = MemberStack(models, data, config)
        optimizers = [stack.optimizer] if config.cooldown else []
        length = cooldown_length(config.steps, config.cooldown) if config.cooldown else 0
        for step in range(1, config.steps + 1):
            check_interrupt()
            with scaled_lr(optimizers, cooldown_factor(step, config.steps, length)):
                values[alive, step - 1] = stack.step(data.train[(step - 1) % n])
            evaluated = not step % config.eval_every or step == config.steps
            if not (evaluated or step in plain):
                continue
            held_out = stack.evaluate(data.val)
            leaving = [row for row, i in enumerate(alive)
                       if members[i].leaves_after(step, values[i, :step], held_out[row], config,
                                                  evaluated, step in plain)]
            if leaving:
                stack.write_back(models, {row: alive[row] for row in leaving})
                rows = [row for row in range(len(alive)) if row not in leaving]
                if not rows:
                    break
                stack.keep(rows)
                optimizers = [stack.optimizer] if config.cooldown else []
                alive = [alive[row] for row in rows]
        else:
            stack.write_back(models, dict(enumerate(alive)))
    seconds = time.perf_counter() - start
    total = sum(m.end for m in members)
    return [m.result(values[i, :m.end].tolist(), config, seconds * m.end / total)
            for i, m in enumerate(members)]


@dataclass
class _Member:
    """One member's record while its population trains: its held-out curve and rung scores,
    and where and why it left (``end``, ``diverged``, ``stopped``)."""

    end: int
    report: Report | None
    curve: list[tuple[int, float]] = field(default_factory=list)
    rungs: list[tuple[int, float]] = field(default_factory=list)
    diverged: str | None = None
    stopped: int | None = None

    def leaves_after(self, step: int, train: torch.Tensor, held_out: float, config: ProbeConfig,
                     on_curve: bool, rung: bool) -> bool:
        """Record a held-out evaluation after ``step``; whether the member leaves the
        population here (diverged, or stopped by its ``report``)."""
        self.diverged = divergence(train, config.explode_factor) or (
            None if math.isfinite(held_out) else f"non-finite held-out loss at step {step}")
        if not self.diverged:
            if on_curve:
                self.curve.append((step, held_out))
            if rung:
                self.rungs.append((step, held_out))
            reported = rung if config.rungs[:-1] else on_curve
            if self.report is not None and step != config.steps and reported \
                    and self.report(step, held_out):
                self.stopped = step
        if self.diverged or self.stopped is not None:
            self.end = step
            return True
        return False

    def result(self, train_loss: list[float], config: ProbeConfig, seconds: float) -> ProbeResult:
        """The member's :class:`~autoinit.probe.ProbeResult`, as ``run_probe`` would give it."""
        if not self.diverged and self.stopped is None:
            self.rungs.append((config.steps, self.curve[-1][1]))
        return ProbeResult(probe_score(self.curve, config.objective, self.diverged), self.curve,
                           train_loss, self.end, self.diverged, self.stopped, seconds, {},
                           tuple(self.rungs))


def probe_schemes(obj: Objective, jobs: Sequence[tuple[InitScheme, float, ProbeConfig]],
                  size: int) -> PopulationRun:
    """Probe each ``(scheme, lr, config)`` on a copy of the objective's model, ``size`` members
    at a time (1: sequential probes, as :meth:`~autoinit.objective.Objective.probe`)."""
    if size <= 1:
        return PopulationRun([obj.probe(scheme, lr, config) for scheme, lr, config in jobs])
    models = []
    for scheme, _, _ in jobs:
        obj.reset()
        apply_scheme(obj.work, scheme)
        models.append(copy.deepcopy(obj.work))
    return run_population(models, obj.data, [replace(c, lr=lr) for _, lr, c in jobs], size=size)
