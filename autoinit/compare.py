"""Full trainings of a chosen scheme against the baselines, several seeds each (``autoinit
compare``): the evidence that the probe's choice holds over a real run.

Every method sees the same batches in the same order for a given seed (paired); a study with
its own ``train_step`` and ``score`` is trained and scored by them. The table shows the median
final held-out loss or score (and accuracy for class targets) with its spread, then the paired
difference between the chosen scheme and the best baseline.

Example:
    >>> runs = [CompareRun("chosen", s, 0.2 + s / 100, None, [(10, 0.2)], 1.0, None) for s in (1, 2)]
    >>> runs += [CompareRun("xavier_normal", s, 0.3, None, [(10, 0.3)], 1.0, None) for s in (1, 2)]
    >>> table = compare_table(runs, steps=10, split="val")
    >>> "difference in val loss -0.0850" in table, "chosen lower in 2 of 2 seeds" in table
    (True, True)
"""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from autoinit.apply import apply_scheme, check_model
from autoinit.batches import fetch_batches, make_loss, move_batch, split_batch
from autoinit.calibrate import lsuv_scheme
from autoinit.config import StudyConfig
from autoinit.device import resolve_device
from autoinit.errors import AutoinitError, StudyFileError
from autoinit.loop import make_loop
from autoinit.plan import ModelPlan
from autoinit.probe import ProbeConfig, ProbeData, bare_step, run_probe
from autoinit.scheme import InitScheme
from autoinit.table import text_table
from autoinit.threads import choose_threads, compute_threads
from autoinit.user_code import build_data, resolve_loss, seeded_model

__all__ = ["CompareRun", "compare_runs", "compare_table"]


@dataclass(frozen=True)
class CompareRun:
    """One full training in ``autoinit compare``."""

    method: str
    seed: int
    loss: float  # final held-out loss (inf when the run diverged)
    accuracy: float | None
    curve: list[tuple[int, float]]
    seconds: float
    diverged: str | None

    @property
    def best(self) -> float:
        """The lowest held-out loss along the run (inf when it diverged)."""
        return min((v for _, v in self.curve), default=math.inf) if not self.diverged else math.inf


def compare_runs(config: StudyConfig, methods: Mapping[str, InitScheme | None],
                 split: str = "val", echo: Callable[[str], None] | None = None) -> list[CompareRun]:
    """Train every method (a scheme, or ``None`` for the baseline of that name) for
    ``config.compare.steps`` steps with each of ``config.compare.seeds`` seeds; ``echo`` gets one
    line per finished run."""
    base = seeded_model(config)
    for scheme in methods.values():
        if scheme is not None:
            check_model(base, scheme)
    train_loader, held = build_data(config, "test" if split == "test" else None)
    if held is None:
        raise StudyFileError(f"data.factory must return (train_loader, {split}_loader) for "
                             "autoinit compare: it returned only a training loader")
    device = resolve_device(config.search.device)
    loss = make_loss(resolve_loss(config.train.loss, config.base_dir))
    opts = config.fit_options()  # the study's own training loop, if it has one
    loop = make_loop(opts.get("train_step"), opts.get("score"), opts.get("make_state"), loss)
    held_batches = fetch_batches(held, 64, device, f"{split} loader")
    plan = ModelPlan.of(base)
    # the thread count is measured on one step of the study's loop, on a held-out batch (the
    # training loader's order is left alone) and a copy of the model
    timing = ProbeConfig(steps=config.compare.steps, lr=config.train.lr,
                         optimizer=config.train.optimizer, device=str(device))
    step = bare_step(copy.deepcopy(base).to(device), ProbeData(held_batches[:1], held_batches, loss,
                                                               loop), timing)
    choice = choose_threads(step, str(device))
    if echo is not None:
        echo(choice.describe())
    with compute_threads(choice.threads):
        return _train_all(config, base, methods, train_loader, held_batches, loss, loop, plan,
                          device, split, echo)



def _train_all(config, base, methods, train_loader, held_batches, loss, loop, plan, device,
               split, echo) -> list[CompareRun]:
    steps, runs = config.compare.steps, []
    for seed in range(1, config.compare.seeds + 1):
        data = ProbeData(_stream(train_loader, steps, device), held_batches, loss, loop)
        probe = ProbeConfig(steps=steps, lr=config.train.lr, optimizer=config.train.optimizer,
                            eval_every=max(1, steps // 20), seed=seed, device=str(device))
        for method, scheme in methods.items():
            model = copy.deepcopy(base).to(device)
            if scheme is not None:
                scheme = scheme.with_seed(seed)
            elif method == "lsuv":
                scheme = lsuv_scheme(model, data.train[0], loss, seed=seed)
            else:
                scheme = plan.uniform(method, seed=seed)
            apply_scheme(model, scheme)
            r = run_probe(model, data, probe)
            final = r.curve[-1][1] if r.curve and not r.diverged else math.inf
            acc = None if r.diverged else _accuracy(model, held_batches)
            runs.append(CompareRun(method, seed, final, acc, r.curve, r.seconds, r.diverged))
            if echo is None:
                continue
            shown = f"acc {100 * acc:5.1f} %" if acc is not None else ""
            echo(f"seed {seed}/{config.compare.seeds}  {method:<26} {split} loss {final:.4f}  "
                 f"{shown}  ({r.seconds:.1f} s){'  diverged: ' + r.diverged if r.diverged else ''}")
    return runs


def _stream(loader: Any, steps: int, device: torch.device) -> list[Any]:
    """``steps`` training batches, epoch after epoch (the loader reshuffles each epoch)."""
    out: list[Any] = []
    while len(out) < steps:
        before = len(out)
        for batch in loader:
            out.append(move_batch(batch, device))
            if len(out) >= steps:
                break
        if len(out) == before:
            raise StudyFileError("data.factory: the training loader yielded no batch")
    return out


def _accuracy(model: torch.nn.Module, batches: Sequence[Any]) -> float | None:
    """Top-1 accuracy for class-index targets; ``None`` for anything else."""
    correct = total = 0
    model.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                inputs, target = split_batch(batch)
                if not isinstance(target, torch.Tensor) or target.is_floating_point():
                    return None
                out = model(**inputs) if isinstance(inputs, Mapping) else model(inputs)
                out = out[0] if isinstance(out, tuple | list) else out
                if not isinstance(out, torch.Tensor) or out.shape[:-1] != target.shape:
                    return None
                correct += int((out.argmax(-1) == target).sum())
                total += target.numel()
    except (AutoinitError, RuntimeError, TypeError):
        return None
    finally:
        model.train()
    return correct / total if total else None


def compare_table(runs: Sequence[CompareRun], steps: int, split: str) -> str:
    """Medians and spread per method, the chosen scheme first, then the paired verdict."""
    by: dict[str, list[CompareRun]] = {}
    for r in runs:
        by.setdefault(r.method, []).append(r)
    chosen = next(iter(by))
    order = [chosen] + sorted((m for m in by if m != chosen),
                              key=lambda m: statistics.median(r.loss for r in by[m]))
    seeds = len(by[chosen])
    rows = [("method", f"{split} loss median", "[min, max]", "best-so-far median", "acc median",
             "diverged", "s/run")]
    for m in order:
        losses = [r.loss for r in by[m]]
        accs = [r.accuracy for r in by[m] if r.accuracy is not None]
        rows.append((m, f"{statistics.median(losses):.4f}", f"[{min(losses):.4f}, {max(losses):.4f}]",
                     f"{statistics.median(r.best for r in by[m]):.4f}",
                     f"{100 * statistics.median(accs):.1f} %" if accs else "-",
                     f"{sum(r.diverged is not None for r in by[m])}/{len(by[m])}",
                     f"{statistics.median(r.seconds for r in by[m]):.1f}"))
    lines = [f"full trainings: {steps} steps x {seeds} seeds, final {split} loss (lower is better); "
             f"best-so-far: the lowest {split} loss along the run", "", *text_table(rows)]
    baselines = order[1:]
    if baselines:
        best = baselines[0]
        diffs = [a.loss - b.loss for a, b in zip(by[chosen], by[best], strict=True)]
        wins = sum(d < 0 for d in diffs)
        finite = [d for d in diffs if math.isfinite(d)]
        median = f"{statistics.median(finite):+.4f}" if finite else "n/a"
        lines += ["", f"chosen vs the best baseline ({best}): median paired difference in {split} "
                  f"loss {median}; chosen lower in {wins} of {len(diffs)} seeds"]
    return "\n".join(lines)
