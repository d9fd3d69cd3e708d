"""Search on a small proxy of the model, then transfer the chosen scheme to the model by group.

A proxy is the user's model built narrower and shallower (the same factory with smaller
arguments). Its role groups are the model's, and a scheme's rules are relative to fan-in,
fan-out and depth (:mod:`autoinit.transfer`), so the scheme chosen on the proxy, on the same
data, carries over to the full model at a fraction of the cost. The search's cost is then stated
in the FULL model's step time: the proxy's bare step, timed through the search, times the ratio
of the model's bare step to the proxy's, both timed alternately on the first batch right after
the search; so ``result.cost.ratio(train_steps)`` compares with a search on the model itself.

Before the search, the proxy's groups are checked against the model's (nothing is searched for a
proxy whose scheme could not transfer); layer-level groups are refused. The LSUV baseline is a
per-layer calibration, which has no group to transfer: when the proxy's search chooses it, the
best other candidate of the selection round is transferred instead (the reason says so), since
a calibration that trains the proxy need not train the deeper model (on the 12-layer post-LN
Transformer, LSUV chosen on a 6-layer proxy and calibrated afresh stalled at the unigram loss);
only when LSUV is the round's sole candidate is it calibrated afresh on the model.

Example:
    >>> import torch, torch.nn as nn
    >>> from autoinit.api import fit
    >>> def mlp(width):
    ...     return nn.Sequential(nn.Linear(8, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
    ...                          nn.Linear(width, 2))
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(256, 8, generator=g); y = (x[:, 0] > 0).long()
    >>> loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    >>> model = mlp(64)
    >>> result = fit(model, loader, proxy=mlp(16), n_trials=8, probe_steps=8, mlflow=False,
    ...              progress=False)
    >>> result.proxy.proxy_parameters, result.proxy.model_parameters
    (450, 4866)
    >>> dict(result.scheme.parameters) == {n: tuple(p.shape) for n, p in model.named_parameters()}
    True
"""

from __future__ import annotations

import copy
import statistics
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from torch import nn

from autoinit.apply import apply_scheme
from autoinit.calibrate import lsuv_scheme
from autoinit.errors import ConfigError
from autoinit.loop import make_loop
from autoinit.plan import ModelPlan
from autoinit.probe import ProbeConfig, ProbeData, bare_step
from autoinit.result import FitResult, ProxyReport
from autoinit.search import run_search
from autoinit.settings import DEFAULTS
from autoinit.threads import compute_threads
from autoinit.transfer import check_transferable, refuse_layer_groups, transfer_scheme

__all__ = ["search_on_proxy", "step_times"]

TIMED_STEPS = 8  # bare steps of each model timed for the step ratio (after one warm-up step)


def search_on_proxy(model: nn.Module, proxy: nn.Module, dataloader: Iterable, *,
                    search: Callable[..., FitResult] = run_search, **options: Any) -> FitResult:
    """Run ``search(proxy, dataloader, **options)`` and initialize ``model`` in place with the
    chosen scheme, transferred by group.

    The result is the proxy search's (its candidates, baselines and study are the proxy's) with
    the transferred ``scheme``, the cost in the model's step time (wall time includes the
    transfer and the timing) and :attr:`FitResult.proxy` set.

    Raises:
        ConfigError: ``proxy`` is not a module, or is ``model`` itself.
        SchemeError: ``groups="layer"``, or the proxy's groups differ from the model's.
    """
    start = time.perf_counter()
    if not isinstance(proxy, nn.Module) or proxy is model:
        raise ConfigError(f"proxy must be a smaller torch.nn.Module built like the model, got "
                          f"{'the model itself' if proxy is model else type(proxy).__name__}")
    groups = options.get("groups", DEFAULTS.groups)
    refuse_layer_groups(groups)
    select = {k: options.get(k) for k in ("only", "exclude")}
    select["include_frozen"] = bool(options.get("include_frozen", False))
    target = ModelPlan.of(model, groups, **select)  # warns once of parameters no group matches
    with _unmatched_said():  # the proxy's plans and the transfer's would say it three times more
        check_transferable(ModelPlan.of(proxy, groups, **select).grouping.groups, target, "proxy")
        result = _transferable(search(proxy, dataloader, **options))
        context = result.context
        if context is None:  # run_search always sets it
            raise ConfigError("the proxy's search returned no context to transfer from")
        with compute_threads(result.cost.threads):
            if result.chosen == "lsuv" and context.loss is not None:
                work = copy.deepcopy(model).to(context.config.device)
                scheme, moved = lsuv_scheme(work, context.batch, context.loss,
                                            seed=result.scheme.seed, **select), None
            else:
                moved = transfer_scheme(result.scheme, model, groups=groups, **select)
                scheme = moved.scheme
            apply_scheme(model, scheme)
            data = ProbeData([context.batch], [context.batch], context.loss,
                             make_loop(options.get("train_step"), options.get("score"),
                                       options.get("make_state"), context.loss,
                                       bool(options.get("search_lr", False))))
            full, small = step_times(model, proxy, data, context.config)
    report = ProxyReport(moved, _count(proxy), _count(model), small, full, result.scheme)
    c, ratio, wall = result.cost, report.step_ratio, time.perf_counter() - start
    # a rerun that re-ran nothing keeps the stored search's wall time beside its own
    cost = replace(c, **{"rerun_seconds" if c.reused else "wall_seconds": wall},
                   step_seconds=c.step_seconds * ratio, step_seconds_q1=c.step_seconds_q1 * ratio,
                   step_seconds_q3=c.step_seconds_q3 * ratio)
    return replace(result, scheme=scheme, cost=cost, proxy=report)


@contextmanager
def _unmatched_said() -> Iterator[None]:
    """Ignore the warning of parameters that match no group (:meth:`ModelPlan.of`'s), said
    already for the model."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"\d+ parameters match no group ")
        yield


def _transferable(result: FitResult) -> FitResult:
    """``result`` with the best candidate other than LSUV chosen, when LSUV was and another one
    was re-run in the selection round."""
    others = [c for c in result.candidates if c.name != "lsuv"]
    if result.chosen != "lsuv" or not others:
        return result
    best = min(others, key=lambda c: c.mean)
    scored = "the selection round" if result.selection_ran else "the probes"
    reason = (f"{result.reason}; the lsuv baseline, a per-layer calibration, cannot transfer by "
              f"group, so {best.name}, the best other candidate of {scored} "
              f"({best.mean:.4f}), was transferred")
    scheme = replace(best.scheme, origin=best.scheme.origin or f"{best.name} of a search")
    return replace(result, scheme=scheme, score=best.mean, chosen=best.name, reason=reason)


def step_times(model: nn.Module, proxy: nn.Module, data: ProbeData, config: ProbeConfig
               ) -> tuple[float, float]:
    """Median seconds of one bare training step of ``model`` and of ``proxy`` (copies, on the
    probe's device), timed alternately so that both see the same load."""
    steps = [bare_step(copy.deepcopy(m).to(config.device), data, config) for m in (model, proxy)]
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(TIMED_STEPS + 1):
        for step, out in zip(steps, times, strict=True):
            t0 = time.perf_counter()
            step()
            if i:  # the first step of each only warms up
                out.append(time.perf_counter() - t0)
    return statistics.median(times[0]), statistics.median(times[1])


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
