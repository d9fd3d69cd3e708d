"""Full trainings of a chosen scheme against the baselines, several seeds each (``autoinit
compare``): the evidence that the probe's choice holds over a real run.

Every method sees the same batches in the same order for a given seed (paired); given the user's
own ``train_step`` and ``score``, runs are trained and scored by them. :func:`compare_runs` takes
plain values (a model, loaders, loss, lr, steps, seeds); the command line unpacks a study file
into them (:func:`autoinit.cli_helpers.prepare_compare`). The table shows the median
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from autoinit.apply import apply_scheme, check_model
from autoinit.batches import (
    LossFn,
    check_batched,
    fetch_batches,
    loss_fn_for,
    make_loss,
    move_batch,
    predict,
    split_batch,
)
from autoinit.calibrate import lsuv_scheme
from autoinit.device import resolve_device
from autoinit.errors import AutoinitError, DataError, first_line
from autoinit.loop import MakeState, ScoreFn, TrainLoop, TrainStep, make_loop
from autoinit.plan import ModelPlan
from autoinit.probe import ProbeConfig, ProbeData, bare_step, check_first_step, run_probe
from autoinit.scheme import InitScheme
from autoinit.search_input import (
    Unlabelled,
    check_finite,
    check_loss,
    checked_batches,
    unlabelled_by,
)
from autoinit.settings import DEFAULTS, check_option
from autoinit.table import text_table
from autoinit.threads import ThreadChoice, choose_threads, compute_threads

__all__ = ["CompareRun", "Comparison", "ComparisonStopped", "compare_runs", "compare_table",
           "prepare_comparison", "train_comparison"]


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


class ComparisonStopped(AutoinitError):
    """The training loader failed before a later seed; ``runs`` holds the seeds that finished."""

    def __init__(self, seed: int, cause: BaseException, runs: list[CompareRun]) -> None:
        self.seed, self.runs = seed, runs
        super().__init__(
            f"the comparison stopped before seed {seed}: train_loader failed on a new pass: "
            f"{type(cause).__name__}: {first_line(cause)}; the {len(runs)} runs of seeds 1-"
            f"{seed - 1} are kept (this error's .runs; the command line prints their table)")


def compare_runs(model: nn.Module, train_loader: Iterable[Any], held_loader: Iterable[Any],
                 methods: Mapping[str, InitScheme | None], *,
                 loss_fn: str | Callable[..., Any] | None = None,
                 optimizer: str | Callable[..., Any] = DEFAULTS.optimizer, lr: float = DEFAULTS.lr,
                 steps: int = DEFAULTS.compare_steps, seeds: int = DEFAULTS.compare_seeds,
                 device: str | torch.device | None = None, train_step: TrainStep | None = None,
                 score: ScoreFn | None = None, make_state: MakeState | None = None,
                 split: str = "val", echo: Callable[[str], None] | None = None) -> list[CompareRun]:
    """Train a copy of ``model`` under every method (a scheme, or ``None`` for the baseline of
    that name) for ``steps`` steps with each of the seeds ``1..seeds``, scored on the batches of
    ``held_loader`` (named ``split`` in the lines); ``echo`` gets one line per finished run.

    ``loss_fn``, ``optimizer``, ``lr`` and the user's own loop (``train_step``, ``score``,
    ``make_state``) are those of :func:`autoinit.search.run_search`; ``model`` is left as it is.
    :func:`prepare_comparison` then :func:`train_comparison`.
    """
    return train_comparison(prepare_comparison(
        model, train_loader, held_loader, methods, loss_fn=loss_fn, optimizer=optimizer, lr=lr,
        steps=steps, seeds=seeds, device=device, train_step=train_step, score=score,
        make_state=make_state, split=split), echo)


def prepare_comparison(model: nn.Module, train_loader: Iterable[Any], held_loader: Iterable[Any],
                       methods: Mapping[str, InitScheme | None], *,
                       loss_fn: str | Callable[..., Any] | None = None,
                       optimizer: str | Callable[..., Any] = DEFAULTS.optimizer,
                       lr: float = DEFAULTS.lr, steps: int = DEFAULTS.compare_steps,
                       seeds: int = DEFAULTS.compare_seeds,
                       device: str | torch.device | None = None,
                       train_step: TrainStep | None = None, score: ScoreFn | None = None,
                       make_state: MakeState | None = None, split: str = "val") -> Comparison:
    """Everything :func:`compare_runs` checks before it trains (the counts, the schemes against
    the model, the device, the loaders, a first step of the optimizer) and the thread count it
    trains on: bad input fails here, before any line is printed or any run trained."""
    check_option("steps", steps)
    check_option("seeds", seeds)
    plan = ModelPlan.of(model)
    for method, scheme in methods.items():
        if scheme is not None:
            check_model(model, scheme)
        elif method != "lsuv":
            plan.uniform(method)  # a baseline of that name fits the model
    device = resolve_device(device)
    # as in a search: NaN refused, batches of ignored labels only left out of your loss's steps
    unlabelled = unlabelled_by(loss_fn, train_step)
    held_batches = [b for _, b in checked_batches(
        fetch_batches(held_loader, 64, device, f"{split} loader"), f"{split} loader", unlabelled)]
    if train_step is None and score is None:  # autoinit's own loop, on the search's loss
        loss_fn = loss_fn_for(loss_fn, model, held_batches)
    loss = make_loss(loss_fn)
    loop = make_loop(train_step, score, make_state, loss)
    first = _stream(train_loader, steps, device, unlabelled)  # the first seed's batches
    # the thread count is measured on one step of the study's loop, on a held-out batch (the
    # training loader's order is left alone) and a copy of the model
    timing = ProbeConfig(steps=steps, lr=lr, optimizer=optimizer, device=str(device))
    work = copy.deepcopy(model).to(device)
    step = bare_step(work, ProbeData(held_batches[:1], held_batches, loss, loop), timing)
    if loop is None:  # your own loop's first step is your loop's to check
        with compute_threads(1):
            check_loss(work, ProbeData(first, held_batches, loss), what="train_loader")
            check_first_step(step, optimizer, lr)
    return Comparison(model, train_loader, held_batches, loss, loop, plan, device, optimizer, lr,
                      steps, seeds, split, dict(methods), choose_threads(step, str(device)), first,
                      unlabelled)


def train_comparison(comparison: Comparison, echo: Callable[[str], None] | None = None
                     ) -> list[CompareRun]:
    """The trainings of a prepared comparison; ``echo`` gets the thread line, then one line per
    finished run."""
    if echo is not None:
        echo(comparison.threads.describe())
    with compute_threads(comparison.threads.threads):
        return _train_all(comparison, echo)


@dataclass(frozen=True)
class Comparison:
    """A comparison checked and ready to train (:func:`prepare_comparison`)."""

    model: nn.Module
    train_loader: Iterable[Any]
    held_batches: list[Any]
    loss: LossFn
    loop: TrainLoop | None
    plan: ModelPlan
    device: torch.device
    optimizer: str | Callable[..., Any]
    lr: float
    steps: int
    seeds: int
    split: str
    methods: dict[str, InitScheme | None]
    threads: ThreadChoice
    first_batches: list[Any]  # the first seed's training batches, fetched while checking
    unlabelled: Unlabelled | None = None  # the targets the loss ignores (left out batches)


def _train_all(setup: Comparison, echo: Callable[[str], None] | None) -> list[CompareRun]:
    s, runs = setup, []
    for seed in range(1, s.seeds + 1):
        try:
            batches = s.first_batches if seed == 1 else \
                _stream(s.train_loader, s.steps, s.device, s.unlabelled)
        except Exception as exc:  # the loader's own failure or a bad batch: keep what finished
            raise ComparisonStopped(seed, exc, runs) from exc
        data = ProbeData(batches, s.held_batches, s.loss, s.loop)
        probe = ProbeConfig(steps=s.steps, lr=s.lr, optimizer=s.optimizer,
                            eval_every=max(1, s.steps // 20), seed=seed, device=str(s.device))
        for method, scheme in s.methods.items():
            model = copy.deepcopy(s.model).to(s.device)
            if scheme is not None:
                scheme = scheme.with_seed(seed)
            elif method == "lsuv":
                scheme = lsuv_scheme(model, data.train[0], s.loss, seed=seed)
            else:
                scheme = s.plan.uniform(method, seed=seed)
            apply_scheme(model, scheme)
            r = run_probe(model, data, probe)
            final = r.curve[-1][1] if r.curve and not r.diverged else math.inf
            acc = None if r.diverged else _accuracy(model, s.held_batches)
            runs.append(CompareRun(method, seed, final, acc, r.curve, r.seconds, r.diverged))
            if echo is None:
                continue
            shown = f"acc {100 * acc:5.1f} %" if acc is not None else ""
            echo(f"seed {seed}/{s.seeds}  {method:<26} {s.split} loss {final:.4f}  "
                 f"{shown}  ({r.seconds:.1f} s){'  diverged: ' + r.diverged if r.diverged else ''}")
    return runs


def _stream(loader: Iterable[Any], steps: int, device: torch.device,
            unlabelled: Unlabelled | None = None) -> list[Any]:
    """``steps`` training batches, epoch after epoch (the loader reshuffles each epoch), checked
    as a search checks its own (:func:`~autoinit.batches.check_batched`,
    :func:`~autoinit.search_input.check_finite`); those whose targets are all ``unlabelled``
    left out, as a search leaves them out."""
    out: list[Any] = []
    read = 0
    while len(out) < steps:
        before, place = len(out), -1
        for place, batch in enumerate(loader):
            if not read:
                check_batched(loader, batch, "train_loader")
            read += 1
            batch = move_batch(batch, device)
            check_finite([batch], "train_loader", place)
            if unlabelled is None or not unlabelled.ignores(batch):
                out.append(batch)
            if len(out) >= steps:
                break
        if place < 0:
            raise DataError(f"train_loader yielded no batch{_again(read)}")
        if len(out) == before and unlabelled is not None:
            raise unlabelled.none_left(place + 1, "train_loader")
    return out


def _again(read: int) -> str:
    """Why a loader that yielded ``read`` batches yields none on a new pass."""
    return f" on a new pass, after {read} batches: a one-shot iterator (a generator) is read " \
        "only once; pass a DataLoader or a list" if read else ""


def _accuracy(model: torch.nn.Module, batches: Sequence[Any]) -> float | None:
    """Top-1 accuracy for class-index targets (a single logit: its sign), ignored (negative)
    labels left out; ``None`` for anything else."""
    correct = total = 0
    model.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                inputs, target = split_batch(batch)
                if not isinstance(target, torch.Tensor) or target.is_floating_point():
                    return None
                out = predict(model, inputs)  # as the loss reads it: a namedtuple's logits, ...
                if not isinstance(out, torch.Tensor) or out.shape[:-1] != target.shape:
                    return None
                kept = target >= 0  # negative labels are ignored (-100, padding): no class
                # one logit: a binary classifier's, class 1 where it is positive
                guess = (out[..., 0] > 0).long() if out.shape[-1] == 1 else out.argmax(-1)
                correct += int((guess == target)[kept].sum())
                total += int(kept.sum())
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
