"""``run_search``: search an initialization for a model on its own data (no tracking here).

Flow: validate → plan groups → cache batches → time the bare loop → Optuna study (baselines
enqueued first, then TPE) → per trial: scheme, screening pass, probe, pruning → selection round
(top candidates and the best baseline re-run with fresh seeds and a longer probe) → the chosen
scheme is applied to the model in place → :class:`FitResult`.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState
from torch import nn

from autoinit.apply import apply_scheme
from autoinit.batches import fetch_batches, make_loss
from autoinit.errors import AutoinitError, ConfigError
from autoinit.groups import GroupSpec
from autoinit.objective import Objective
from autoinit.plan import ModelPlan
from autoinit.probe import ProbeConfig, ProbeData, make_optimizer
from autoinit.result import Candidate, FitResult, SearchCost
from autoinit.space import BASELINES, SearchSpace, baseline_params, distributions
from autoinit.storage import open_storage

__all__ = ["Selection", "run_search"]

_DONE = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class Selection:
    """The selection round: ``top`` search candidates and the best baseline are re-run with
    ``seeds`` fresh seeds for ``steps_factor`` times the probe length; a candidate replaces the
    baseline only when its mean paired improvement exceeds ``max(2·s.e., rel_margin·|baseline|)``.
    """

    top: int = 2
    seeds: int = 2
    steps_factor: float = 2.0
    rel_margin: float = 0.005


def run_search(
    model: nn.Module,
    dataloader: Iterable,
    *,
    val_dataloader: Iterable | None = None,
    loss_fn: str | nn.Module | Callable | None = None,
    optimizer: str | Callable = "adam",
    lr: float = 1e-3,
    n_trials: int | None = 30,
    timeout: float | None = None,
    budget_steps: int | None = None,
    probe_steps: int = 100,
    eval_every: int | None = None,
    objective: str = "final",
    groups: GroupSpec = "role",
    families: Sequence[str] | None = None,
    search_lr: bool = False,
    storage: str | optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
    n_jobs: int = 1,
    device: str | torch.device | None = None,
    seed: int = 0,
    callbacks: Sequence[Callable] = (),
    only: Iterable[str] | str | None = None,
    exclude: Iterable[str] | str | None = None,
    include_frozen: bool = False,
    bf16: bool = False,
    val_batches: int = 4,
    screening: bool = True,
    selection: Selection = Selection(),
) -> FitResult:
    """Search an initialization for ``model`` on ``dataloader`` and apply the best one in place.

    Every candidate is trained for ``probe_steps`` steps on the same cached batches and scored by
    its held-out loss (``objective="mean"``: the mean along the curve). Baselines (PyTorch
    default, Xavier, Kaiming, LeCun, orthogonal, and a data-calibrated LSUV) are tried first; the
    result is never worse than the best of them beyond the measured noise.

    Args:
        n_trials: trials (complete or pruned, baselines included) the study should hold.
        budget_steps: stop starting trials once this many training-step equivalents are spent.
        storage: an Optuna storage URL; with it, calling ``fit`` again resumes the study.
        n_jobs: worker processes (one torch thread each) sharing the study's storage.
        groups: ``"role"``, ``"layer"``, ``"global"`` or ``{name: regex}``.

    Example:
        >>> import torch, torch.nn as nn
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(256, 8, generator=g); y = (x[:, 0] > 0).long()
        >>> loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y),
        ...                                      batch_size=32)
        >>> net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
        >>> result = run_search(net, loader, n_trials=8, probe_steps=10)  # doctest: +SKIP
        >>> sorted(result.baselines)[:2]  # doctest: +SKIP
        ['kaiming_normal', 'lecun_normal']
    """
    start = time.perf_counter()
    _validate(model, n_trials, timeout, budget_steps, probe_steps, n_jobs, seed, val_batches)
    dev = _device(device)
    space = SearchSpace(families=tuple(families) if families is not None else None,
                        search_lr=search_lr)
    plan = ModelPlan.of(model, groups, only=only, exclude=exclude, include_frozen=include_frozen)
    layer_plan = ModelPlan.of(model, "layer", only=only, exclude=exclude,
                              include_frozen=include_frozen)
    loss = make_loss(loss_fn)
    train, val = _batches(dataloader, val_dataloader, probe_steps, val_batches, dev)
    _check_finite(train, "dataloader")
    _check_finite(val, "the held-out batches")
    data = ProbeData(train, val, loss)
    every = eval_every or max(1, probe_steps // 4)
    config = ProbeConfig(steps=probe_steps, lr=lr, optimizer=optimizer, eval_every=every,
                         objective=objective, seed=seed, device=str(dev), bf16=bf16)
    work = copy.deepcopy(model).to(dev)
    initial = {k: v.detach().clone() for k, v in work.state_dict().items()}
    make_optimizer(optimizer, [nn.Parameter(torch.zeros(1))], lr)  # bad names fail before work
    _check_loss(work, data)
    step_seconds = _bare_step_seconds(work, data, config)
    work.load_state_dict(initial)
    obj = Objective(work, initial, plan, layer_plan, data, config, space, lr, seed, screening)
    with quiet_optuna():
        study, created = _study(storage, study_name, seed, n_jobs, every)
        _check_space(study, distributions(plan, space, lr))
        _enqueue_pending(study, plan, space, lr, created)
        interrupted = _optimize(study, obj, n_trials, timeout, budget_steps,
                                list(callbacks), n_jobs)
    baselines = _baseline_scores(study)
    candidates, chosen, reason = _select(study, obj, selection, config)
    apply_scheme(model, chosen.scheme)
    trials = study.get_trials(deepcopy=False)
    attrs = [t.user_attrs for t in trials]
    cost = SearchCost(
        probe_steps=sum(a.get("probe_steps", 0) for a in attrs),
        screening_passes=sum(a.get("screening_passes", 0) for a in attrs),
        selection_steps=sum(len(c.scores) for c in candidates) * _rerun_steps(config, selection),
        wall_seconds=time.perf_counter() - start,
        step_seconds=step_seconds,
        trials_complete=sum(t.state == TrialState.COMPLETE for t in trials),
        trials_pruned=sum(t.state == TrialState.PRUNED for t in trials),
        trials_failed=sum(t.state == TrialState.FAIL for t in trials),
    )
    if interrupted:
        reason += " (search interrupted; best so far)"
    extra = {"config": config, "interrupted": interrupted, "batch": data.train[0], "loss": loss,
             "plan": plan}
    return FitResult(chosen.scheme, chosen.mean, baselines, chosen.name, reason, candidates, cost,
                     study, extra)


def _validate(model, n_trials, timeout, budget_steps, probe_steps, n_jobs, seed, val_batches):
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"model {type(model).__name__} has no trainable parameter")
    for name, value, optional in (("n_trials", n_trials, True), ("probe_steps", probe_steps, False),
                                  ("n_jobs", n_jobs, False), ("budget_steps", budget_steps, True),
                                  ("val_batches", val_batches, False)):
        if value is None and optional:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if timeout is not None and not (isinstance(timeout, int | float) and timeout > 0):
        raise ConfigError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if n_trials is None and timeout is None and budget_steps is None:
        raise ConfigError("give at least one of n_trials, timeout or budget_steps")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")


def _device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device must be a torch device such as 'cpu' or 'cuda', got "
                          f"{device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {str(device)!r} was asked for but CUDA is not available here")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device must be 'cpu' or 'cuda', got {device!r}")
    return dev


def _batches(loader, val_loader, probe_steps: int, val_batches: int, dev):
    if val_loader is not None:
        return (fetch_batches(loader, probe_steps, dev, "dataloader"),
                fetch_batches(val_loader, val_batches, dev, "val_dataloader"))
    batches = fetch_batches(loader, probe_steps + val_batches, dev, "dataloader")
    if len(batches) < 2:
        raise ConfigError("dataloader yielded only 1 batch: held-out batches cannot be split off; "
                          "pass val_dataloader or use a smaller batch size")
    n_val = min(val_batches, max(1, len(batches) // 5))
    return batches[n_val:], batches[:n_val]


def _check_finite(batches: list, what: str) -> None:
    for i, batch in enumerate(batches):
        for t in _tensors(batch):
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise ConfigError(f"batch {i} of {what} holds NaN or infinite values")


def _tensors(batch):
    if isinstance(batch, torch.Tensor):
        yield batch
    elif isinstance(batch, dict):
        for v in batch.values():
            yield from _tensors(v)
    elif isinstance(batch, tuple | list):
        for v in batch:
            yield from _tensors(v)


def _check_loss(model: nn.Module, data: ProbeData) -> None:
    """One forward pass with the user's loss on the first batch, so bad input fails early."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        try:
            data.loss(model, data.train[0])
        except AutoinitError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported as bad input, with the cause
            raise ConfigError(f"the loss could not be computed on the first batch: "
                              f"{type(exc).__name__}: {exc}") from exc


def _bare_step_seconds(model: nn.Module, data: ProbeData, config: ProbeConfig, steps: int = 6):
    """Median time of one step of a hand-written training loop (the cost unit)."""
    opt = make_optimizer(config.optimizer, [p for p in model.parameters() if p.requires_grad],
                         config.lr)
    times = []
    with torch.random.fork_rng(devices=[]):
        for i in range(steps):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            data.loss(model, data.train[i % len(data.train)]).backward()
            opt.step()
            if config.device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def _study(storage, study_name, seed: int, n_jobs: int, eval_every: int
           ) -> tuple[optuna.Study, bool]:
    """The study, and whether this call created it (only its creator queues the baselines)."""
    if storage is None and n_jobs > 1:  # worker processes need a storage they can open
        storage = f"journal://{Path(tempfile.mkdtemp(prefix='autoinit-')) / 'journal.log'}"
    opened = open_storage(storage)
    # Workers sharing a persistent study must not all propose the same points: their samplers
    # get distinct seeds. Alone (in memory) the search is reproducible from ``seed``.
    sampler_seed = seed if opened is None else seed + os.getpid()
    kwargs = {
        "storage": opened,
        "study_name": study_name,
        "sampler": _sampler(sampler_seed, n_jobs > 1 or opened is not None),
        # Nothing is pruned before half the probe (two evaluations): early losses are noisy.
        "pruner": optuna.pruners.MedianPruner(n_startup_trials=len(BASELINES) + 1,
                                              n_warmup_steps=2 * eval_every),
    }
    try:
        return optuna.create_study(direction="minimize", **kwargs), True
    except optuna.exceptions.DuplicatedStudyError:
        return optuna.load_study(**kwargs), False


def _sampler(seed: int, parallel: bool) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                          constant_liar=parallel, n_startup_trials=5)


@contextlib.contextmanager
def quiet_optuna():
    """Optuna's per-trial INFO lines off while a search runs (autoinit reports progress itself)."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def _check_space(study: optuna.Study, expected: dict) -> None:
    """Refuse to continue a study whose trials were drawn from another search space."""
    always = {n for n in expected if n.endswith(".family") or n == "lr"}
    for t in study.get_trials(deepcopy=False):
        missing = sorted(always - set(t.distributions)) if t.state == TrialState.COMPLETE else []
        if missing:
            raise ConfigError(
                f"study {study.study_name!r} was searched over another space: its trial "
                f"{t.number} has no {missing[0]!r}; use a new study_name, or the same model, "
                "groups, families and search_lr as before"
            )
        for name, dist in t.distributions.items():
            if expected.get(name) != dist:
                raise ConfigError(
                    f"study {study.study_name!r} was searched over another space: its parameter "
                    f"{name!r} is {dist} but this run's is {expected.get(name, 'absent')}; use a "
                    "new study_name, or the same model, groups, families and search_lr as before"
                )


def _enqueue_pending(study: optuna.Study, plan, space, lr: float, created: bool) -> None:
    """Queue the baselines the study does not hold yet, and one retry of each trial that was
    interrupted (Ctrl-C, a crash), so a resumed study loses and repeats nothing.

    A worker joining a study that others are running (trials waiting or running) queues
    nothing: the study's creator queued the baselines, and live workers own their trials.
    """
    trials = study.get_trials(deepcopy=False)
    if not created and any(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in trials):
        return
    held = {t.user_attrs.get("baseline") for t in trials if t.state != TrialState.FAIL}
    retried = {t.user_attrs.get("retry_of") for t in trials}
    retried |= {t.system_attrs.get("failed_trial") for t in trials}  # heartbeat retries
    for name in (*BASELINES, "lsuv"):
        if name not in held:
            family = "orthogonal" if name == "lsuv" else name
            study.enqueue_trial(baseline_params(plan, space, family, lr),
                                user_attrs={"baseline": name}, skip_if_exists=False)
    for t in trials:
        if t.state == TrialState.FAIL and not t.user_attrs.get("baseline") and t.params \
                and t.number not in retried:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number}, skip_if_exists=False)


def _optimize(study, obj, n_trials, timeout, budget_steps, callbacks, n_jobs) -> bool:
    """Run trials until the budget is met; ``True`` when interrupted by Ctrl-C."""
    done = sum(t.state in _DONE for t in study.get_trials(deepcopy=False))
    if n_trials is not None and done >= n_trials:
        return False
    stops = []
    if n_trials is not None:
        stops.append(optuna.study.MaxTrialsCallback(n_trials, states=_DONE))
    if budget_steps is not None:
        stops.append(_BudgetCallback(budget_steps))
    stops.append(_FailStreak())
    try:
        if n_jobs > 1:
            from autoinit.workers import optimize_in_processes

            optimize_in_processes(study, obj, n_jobs, n_trials, timeout, stops + callbacks)
        else:
            study.optimize(obj, timeout=timeout, callbacks=stops + callbacks,
                           catch=(Exception,), gc_after_trial=False)
    except KeyboardInterrupt:
        return True
    return False


@dataclass
class _BudgetCallback:
    """Stops the study once the trials' probe and screening steps reach ``budget`` steps."""

    budget: int

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        spent = sum(t.user_attrs.get("probe_steps", 0) + t.user_attrs.get("screening_passes", 0)
                    for t in study.get_trials(deepcopy=False))
        if spent >= self.budget:
            study.stop()


@dataclass
class _FailStreak:
    """Stops the study after ``limit`` failed trials in a row (a broken loss, a bad space)."""

    limit: int = 5

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        last = study.get_trials(deepcopy=False)[-self.limit:]
        if len(last) == self.limit and all(t.state == TrialState.FAIL for t in last):
            warnings.warn(f"stopping the search after {self.limit} failed trials in a row; last "
                          f"error: {trial.system_attrs.get('fail_reason', 'unknown')}", stacklevel=2)
            study.stop()


def _baseline_scores(study: optuna.Study) -> dict[str, float]:
    out: dict[str, float] = {}
    for t in study.get_trials(deepcopy=False, states=_DONE):
        name = t.user_attrs.get("baseline")
        if name and name not in out:
            out[name] = t.value if t.state == TrialState.COMPLETE else math.inf
    return out


def _rerun_steps(config: ProbeConfig, selection: Selection) -> int:
    return max(1, round(config.steps * selection.steps_factor))


def _select(study: optuna.Study, obj: Objective, selection: Selection, config: ProbeConfig):
    complete = sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
                      key=lambda t: t.value)
    base_trials = [t for t in complete if t.user_attrs.get("baseline")]
    search_trials = [t for t in complete if not t.user_attrs.get("baseline")][: selection.top]
    if not base_trials and not search_trials:
        failures = [t.user_attrs.get("failure") or t.system_attrs.get("fail_reason")
                    for t in study.get_trials(deepcopy=False)]
        raise AutoinitError("no trial completed; first reason: "
                            f"{next((f for f in failures if f), 'unknown')}")
    rerun = replace(config, steps=_rerun_steps(config, selection),
                    eval_every=max(1, _rerun_steps(config, selection) // 4))
    cands = []
    for t in base_trials[:1] + search_trials:
        scheme, lr = obj.scheme_of(t)
        scores = []
        for k in range(1, selection.seeds + 1):
            cfg = replace(rerun, seed=config.seed + k)
            scores.append(obj.probe(scheme.with_seed(scheme.seed + k), lr, cfg).score)
        name = t.user_attrs.get("baseline") or f"search #{t.number}"
        cands.append(Candidate(name, t.number, t.value, scores, scheme))
    return (cands, *_choose(cands, bool(base_trials), selection))


def _choose(cands: list[Candidate], has_baseline: bool, selection: Selection):
    if not has_baseline:
        best = min(cands, key=lambda c: c.mean)
        return best, f"{best.name} chosen: no baseline completed its probe"
    base, searched = cands[0], cands[1:]
    if not searched:
        return base, f"{base.name} chosen: no search trial completed"
    best = min(searched, key=lambda c: c.mean)
    if not math.isfinite(base.mean) and math.isfinite(best.mean):
        return best, f"{best.name} chosen: the best baseline diverged in the selection round"
    diffs = [s - b for s, b in zip(best.scores, base.scores, strict=True)]
    if not all(math.isfinite(d) for d in diffs):
        return base, f"{base.name} (baseline) kept: {best.name} diverged in the selection round"
    mean = statistics.fmean(diffs)
    se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else abs(mean)
    margin = max(2 * se, selection.rel_margin * abs(base.mean))
    if mean < -margin:
        return best, (f"{best.name} chosen: {best.mean:.4f} vs best baseline {base.name} "
                      f"{base.mean:.4f} (paired improvement {-mean:.4f} > margin {margin:.4f})")
    return base, (f"{base.name} (baseline) kept: the best search candidate {best.name} "
                  f"({best.mean:.4f}) did not beat it ({base.mean:.4f}) beyond the noise "
                  f"(margin {margin:.4f})")
