"""``run_search``: search an initialization for a model on its own data (no tracking here).

Flow: validate → plan groups → cache batches → time the bare loop → Optuna study (stage 1: the
named candidates, baselines and presets, enqueued first; stage 2: the best one refined, see
:mod:`autoinit.refine`) → per trial: scheme, screening pass, probe, pruning → selection round
(top candidates and the best baseline re-run with fresh seeds and a longer probe) → the chosen
scheme is applied to the model in place → :class:`FitResult`.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

import optuna
import torch
from optuna.trial import TrialState
from torch import nn

from autoinit.apply import apply_scheme
from autoinit.batches import make_loss
from autoinit.budget import (
    MAX_LENGTHENING,
    BudgetWatch,
    affordable,
    budget_of,
    eval_every_of,
    noise_probe,
    plan_budget,
    steps_spent,
)
from autoinit.clock import StepClock
from autoinit.device import resolve_device
from autoinit.errors import ConfigError
from autoinit.groups import GroupSpec
from autoinit.loop import MakeState, ScoreFn, TrainStep, make_loop, preflight
from autoinit.objective import Objective
from autoinit.optuna_setup import quiet_optuna
from autoinit.plan import ModelPlan
from autoinit.population import population_unsupported
from autoinit.population_choice import PopulationChoice, choose_population
from autoinit.population_stage import NamedPopulation
from autoinit.presets import get_preset, list_presets
from autoinit.probe import ProbeConfig, ProbeData, bare_step, make_optimizer
from autoinit.progress import SearchProgress, progress_wanted
from autoinit.result import BudgetReport, Candidate, FitResult, SearchContext, SearchCost
from autoinit.rungs import make_pruner, rung_steps, study_agreement
from autoinit.search_input import check_finite, check_loss, probe_batches
from autoinit.selection import (
    Selection,
    baseline_scores,
    rerun_steps,
    reuse_selection,
    select,
    selection_steps,
)
from autoinit.settings import DEFAULTS, check_option
from autoinit.space import SearchSpace, distributions
from autoinit.study import (
    check_space,
    enqueue_pending,
    in_memory,
    named_candidates,
    open_study,
    optimize,
    worker_storage,
)
from autoinit.threads import choose_threads, compute_threads

__all__ = ["DEFAULT_PROBE_STEPS", "Selection", "run_search"]


class _DefaultSteps(int):
    """An int that is ``probe_steps``'s default, told apart from the same number given by the
    caller: with ``train_steps`` the default is planned, a given length is kept."""


DEFAULT_PROBE_STEPS = _DefaultSteps(DEFAULTS.probe_steps)


def run_search(
    model: nn.Module,
    dataloader: Iterable,
    *,
    val_dataloader: Iterable | None = None,
    loss_fn: str | nn.Module | Callable | None = None,
    optimizer: str | Callable = DEFAULTS.optimizer,
    lr: float = DEFAULTS.lr,
    n_trials: int | None = DEFAULTS.n_trials,
    timeout: float | None = None,
    budget_steps: int | None = None,
    train_steps: int | None = None,
    probe_steps: int = DEFAULT_PROBE_STEPS,
    rungs: int = DEFAULTS.rungs,
    cooldown: float = DEFAULTS.cooldown,
    eval_every: int | None = None,
    objective: str = DEFAULTS.objective,
    groups: GroupSpec = DEFAULTS.groups,
    families: Sequence[str] | None = None,
    search_lr: bool = False,
    storage: str | optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
    n_jobs: int = DEFAULTS.n_jobs,
    device: str | torch.device | None = None,
    seed: int = DEFAULTS.seed,
    callbacks: Sequence[Callable] = (),
    only: Iterable[str] | str | None = None,
    exclude: Iterable[str] | str | None = None,
    include_frozen: bool = False,
    bf16: bool = False,
    val_batches: int = DEFAULTS.val_batches,
    screening: bool = True,
    selection: Selection | None = None,
    threads: int | None = None,
    population: int | None = None,
    progress: bool | SearchProgress | None = None,
    train_step: TrainStep | None = None,
    score: ScoreFn | None = None,
    make_state: MakeState | None = None,
) -> FitResult:
    """Search an initialization for ``model`` on ``dataloader`` and apply the best one in place.

    Every candidate is trained for ``probe_steps`` steps on the same cached batches and scored by
    its held-out loss (``objective="mean"``: the mean along the curve). Baselines (PyTorch
    default, Xavier, Kaiming, LeCun, orthogonal, a data-calibrated LSUV, and ``model_default``,
    the model's own init, when it has one) are tried first; the result is never worse than the
    best of them beyond the measured noise.

    Args:
        model: the model to initialize; it is initialized in place with the chosen scheme.
        dataloader: the training batches; the probes train on the first ``probe_steps``.
        val_dataloader: held-out batches (``val_batches`` of them); default: split off the front
            of ``dataloader``'s batches.
        loss_fn: ``"cross_entropy"`` or ``"mse"``, a criterion, or
            ``loss(model, batch)``; default: cross-entropy for integer targets, mean squared
            error for float targets.
        optimizer, lr: the probes' optimizer (a name in :data:`~autoinit.probe.OPTIMIZERS` or
            ``(params, lr) -> Optimizer``) and learning rate.
        n_trials: trials (complete or pruned, baselines included) the study should hold.
        timeout: seconds after which no new trial starts.
        train_steps: the training you will run after the search, in steps. The search's
            budget is then ``budget_fraction`` of it (:data:`~autoinit.settings.DEFAULTS`, 0.3:
            a measured cost of R <= 0.5 with the overhead, docs/search_cost.md) unless
            ``budget_steps`` is given, and the search is planned to fit it
            (:func:`~autoinit.budget.plan_budget`: probe length, trials and selection round
            scale down with the budget; ``probe_steps``, ``selection`` given here are kept and
            ``n_trials`` caps the trials); the named candidates' probes are lengthened when they
            do not separate beyond the noise, and the search ends early when the best candidate
            leads clearly (:class:`~autoinit.budget.BudgetWatch`; one process, in memory or on
            ``storage`` without the lengthening). The summary states the cost as R against it.
            Without it, none of this happens.
        budget_steps: the training steps the whole search may take: trials stop starting once
            their probe and screening steps reach this budget less the selection round's
            ``(top + 2) * seeds * steps_factor * probe_steps`` (1,600 with the defaults; one
            candidate more for a model with its own init; with rungs, the longest rung replaces
            ``steps_factor * probe_steps``). The last trial may overshoot by one probe.
        probe_steps: training steps per probe (default 100, or planned with ``train_steps``);
            with ``rungs``, the first rung's.
        rungs: successive-halving rungs (see :mod:`autoinit.rungs`): probes are scored at
            ``probe_steps * 3^i`` steps for ``i < rungs`` (50 → 150 → 450 for 50 and 3), and a
            search trial goes on past a rung only while its score there is in the top third;
            the rank agreement between consecutive rungs is measured
            (:attr:`FitResult.rank_agreement`) and the selection round re-runs its candidates
            at the longest rung (``selection.steps_factor`` is then unused). ``n_trials`` and
            ``budget_steps`` still bound the whole search (a trial's steps are those it ran).
            1: one rung of ``probe_steps``, pruned by the median rule.
        cooldown: the fraction of each probe's (and rung's) steps that decays the learning rate
            linearly towards 0, so that the score is an annealed loss; default 0, a constant
            rate (0.15 ranked inits worse on the benchmark tasks: docs/probe_ranking.md).
        eval_every: probe steps between held-out evaluations (reported to the pruner); default:
            a quarter of ``probe_steps``.
        objective: ``"final"`` (the held-out loss at the end) or ``"mean"`` (along the curve).
        families: candidate family names (default: every registered family that fits a group).
        search_lr: search the learning rate jointly with the initialization.
        storage: an Optuna storage URL; with it, calling ``fit`` again resumes the study.
        study_name: the Optuna study's name (default: Optuna's; :func:`autoinit.fit` with
            tracking names it after the model's class and the time).
        n_jobs: worker processes (one torch thread each) sharing the study's storage.
        device: ``"cpu"`` or ``"cuda[:n]"``; default: CUDA when available.
        seed: seeds the sampler, the probes and the scheme's parameter generators.
        groups: ``"role"``, ``"layer"``, ``"global"`` or ``{name: regex}``.
        only, exclude: regular expressions (``re.search`` on full parameter names) selecting the
            parameters to initialize; the others keep their values.
        include_frozen: also initialize parameters with ``requires_grad=False``.
        bf16: bf16 autocast in the probes (CUDA only).
        val_batches: held-out batches the probes are scored on.
        screening: reject, before any training, candidates whose first forward and backward
            pass shows non-finite or exploding signals (needs ``loss_fn``).
        selection: the selection round (:class:`~autoinit.selection.Selection`); default
            ``Selection()``.
        callbacks: Optuna callbacks ``callback(study, frozen_trial)``; one with a
            ``bind_search(context)`` method is first handed the search's
            :class:`~autoinit.result.SearchContext` (its plans, probe settings, batch and loss).
        threads: torch threads for the trainings; default: ``OMP_NUM_THREADS`` when set, else
            measured on the model (one thread unless more are clearly faster). Subnormals are
            flushed on every thread that computes.
        population: candidates trained at once as one stacked population
            (:mod:`autoinit.population`): the selection round's re-runs and, in one process,
            the named candidates (:mod:`autoinit.population_stage`); ``None`` measures a few
            steps of a population against sequential probes on this model and device and
            stacks only where it is at least 1.3x faster; 1: one at a time; ``K``: up to K at
            once. Memory caps K.
        progress: a live bar (terminal, notebook) or plain lines; default: on in a terminal
            or a notebook. A :class:`~autoinit.progress.SearchProgress` is used as it is.
        train_step, score, make_state: your own training loop instead of one optimizer on
            ``loss_fn`` (see :mod:`autoinit.loop`): ``train_step(model, batch, state)`` returns
            ``{name: float}``, ``score(model, val_batches)`` (lower is better) replaces the
            held-out loss, ``make_state(model)`` builds the optimizers and schedulers afresh for
            every probe. Without ``loss_fn`` the screening pass and the LSUV baseline are off.

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
    if train_steps is not None:
        check_option("train_steps", train_steps)
    probe_given = None if probe_steps is DEFAULT_PROBE_STEPS else probe_steps
    _validate(model, n_trials, timeout, budget_steps, probe_steps, n_jobs, seed, val_batches,
              threads)
    if population is not None:
        check_option("population", population)
    dev = resolve_device(device)
    space = SearchSpace(families=tuple(families) if families is not None else None,
                        search_lr=search_lr)
    plan = ModelPlan.of(model, groups, only=only, exclude=exclude, include_frozen=include_frozen)
    budget = None
    if train_steps is not None:
        budget = plan_budget(budget_steps or budget_of(train_steps),
                             list(named_candidates(plan, space, lr)), plan.model_init,
                             probe_steps=probe_given, n_trials=n_trials, selection=selection)
        budget_steps, probe_steps, n_trials = budget.budget_steps, budget.probe_steps, \
            budget.n_trials
        selection = budget.selection
    selection = selection or Selection()
    layer_plan = ModelPlan.of(model, "layer", only=only, exclude=exclude,
                              include_frozen=include_frozen)
    # with your own train_step and score, the loss is only used when you pass one
    own_loop = train_step is not None and score is not None
    loss = None if own_loop and loss_fn is None else make_loss(loss_fn)
    loop = make_loop(train_step, score, make_state, loss, search_lr)
    ends = rung_steps(probe_steps, rungs)
    # a budgeted search may lengthen its probes (one process, in memory, one rung): two doublings
    lengthen = budget is not None and budget.noise and storage is None and n_jobs == 1 \
        and rungs == 1
    longest = ends[-1] * (MAX_LENGTHENING if lengthen else 1)
    train, val = probe_batches(dataloader, val_dataloader, longest, val_batches, dev)
    check_finite(train, "dataloader")
    check_finite(val, "the held-out batches")
    data = ProbeData(train, val, loss, loop)
    every = eval_every or eval_every_of(probe_steps, budget)
    config = ProbeConfig(steps=ends[-1], lr=lr, optimizer=optimizer, eval_every=every,
                         objective=objective, seed=seed, device=str(dev), bf16=bf16,
                         cooldown=cooldown, rungs=ends if rungs > 1 else ())
    context = SearchContext(config, plan, train[0], loss, layer_plan)
    # a budgeted search keeps one probe for its noise probe (autoinit.budget.BudgetWatch)
    trial_budget = _trial_budget(budget_steps, config, selection, plan.model_init,
                                 config.steps if budget is not None and budget.noise else 0)
    work = copy.deepcopy(model).to(dev)
    initial = {k: v.detach().clone() for k, v in work.state_dict().items()}
    make_optimizer(optimizer, [nn.Parameter(torch.zeros(1))], lr)  # bad names fail before work
    with compute_threads(1):  # no thread count is chosen yet: none that can oversubscribe
        if loss is not None:
            check_loss(work, data)
        if loop is not None:
            preflight(loop, work, data, config)
    step = bare_step(work, data, config)
    choice = choose_threads(step, config.device, threads)
    work.load_state_dict(initial)
    show = _progress(progress, n_trials, timeout)
    with compute_threads(choice.threads), show or contextlib.nullcontext():
        if show is not None:
            show.note(choice.describe())
        clock = StepClock(step)
        # a budgeted search times fewer bare steps: they are part of its cost
        clock.sample(8 if budget is None else 3)
        work.load_state_dict(initial)
        members = selection.members(plan.model_init)  # the selection round's, per seed
        if population is None and budget is not None and not budget.searched:
            # a few short probes: timing a population would cost more than it could save
            stacked = PopulationChoice(1, reason=f"the {budget.shape} budget has no search trial")
        else:
            stacked = choose_population(work, data, replace(config, rungs=()), population,
                                        members * selection.seeds, members, step)
        if show is not None:
            show.note(stacked.describe())
        work.load_state_dict(initial)
        obj = Objective(work, initial, plan, layer_plan, data, config, space, lr, seed, screening)
        timing = clock if budget is None else lambda study, trial: clock.sample(1)
        watch = [timing, show] if show is not None else [timing]  # in this process only
        watch = watch if n_jobs == 1 else []
        named = budget.named if budget is not None else tuple(named_candidates(plan, space, lr))
        watched = budget is not None and budget.noise and n_jobs == 1
        guard = BudgetWatch(noise_probe(obj), named, lengthen) if watched else None
        if budget is not None and show is not None:
            show.note(budget.describe(train_steps))
            if budget.note:
                show.note(f"note: {budget.note}")
        spent = 0  # the steps of shorter rounds, when the probes were lengthened
        notes: list[str] = []
        while True:
            with quiet_optuna(), worker_storage(storage, n_jobs) as where:
                study, created = open_study(where, study_name, seed, n_jobs, obj.config.eval_every,
                                            len(named))
                if rungs > 1:  # successive halving replaces the median rule
                    study.pruner = make_pruner(probe_steps)
                check_space(study, distributions(plan, space, lr))
                if show is not None:
                    show.resume(study.get_trials(deepcopy=False))
                enqueue_pending(study, plan, space, lr, created, keep=named)
                for callback in callbacks:  # e.g. tracking: the plans that rebuild a scheme
                    getattr(callback, "bind_search", lambda context: None)(context)
                if guard is not None:
                    guard.affordable = affordable(guard, study, obj.config, budget, selection,
                                                   plan.model_init, spent, longest)
                with show.polling(study, n_jobs > 1) if show else contextlib.nullcontext():
                    interrupted = optimize(study, _stage_one(obj, stacked.size, n_trials, n_jobs),
                                           n_trials, timeout, trial_budget and
                                           trial_budget - spent,
                                           [*callbacks, *watch, *([guard] if guard else [])],
                                           n_jobs)
                if where is not storage:  # a temporary journal: keep the study, remove the file
                    study = in_memory(study)
                if guard is not None and guard.longer and not interrupted:
                    spent += steps_spent(study) + guard.noise_steps
                    steps = 2 * obj.config.steps
                    config = obj.config = replace(obj.config, steps=steps,
                                                  eval_every=eval_every or eval_every_of(steps, budget))
                    line = (f"probes lengthened to {steps} steps: the named candidates' scores "
                            f"are all within the noise margin ({guard.margin_text()})")
                    notes.extend([*guard.lines, line])
                    if show is not None:
                        show.note(line)
                        show.restart()
                    guard = BudgetWatch(noise_probe(obj), named, lengthen)
                    trial_budget = _trial_budget(budget_steps, config, selection,
                                                 plan.model_init, config.steps)
                    continue
                if guard is not None and guard.ended is not None and show is not None:
                    show.note(f"search ended early: {guard.ended}")
                candidates, chosen, reason, reused = _choose(study, obj, selection, config,
                                                             interrupted, clock, show,
                                                             stacked.size)
            break
    baselines = baseline_scores(study)
    chosen = replace(chosen, scheme=replace(chosen.scheme, origin=_origin(chosen.name)))
    apply_scheme(model, chosen.scheme)
    trials = study.get_trials(deepcopy=False)
    attrs = [t.user_attrs for t in trials]
    q1, q3 = clock.quartiles
    extra = spent + (guard.noise_steps if guard is not None else 0)  # shorter rounds, noise probes
    cost = SearchCost(
        probe_steps=sum(a.get("probe_steps", 0) for a in attrs) + extra,
        screening_passes=sum(a.get("screening_passes", 0) for a in attrs),
        selection_steps=0 if interrupted or reused or not selection.seeds else sum(
            len(c.scores) for c in candidates) * rerun_steps(config, selection),
        wall_seconds=time.perf_counter() - start,
        step_seconds=clock.median,
        trials_complete=sum(t.state == TrialState.COMPLETE for t in trials),
        trials_pruned=sum(t.state == TrialState.PRUNED for t in trials),
        trials_failed=sum(t.state == TrialState.FAIL for t in trials),
        step_seconds_q1=q1,
        step_seconds_q3=q3,
        step_timings=len(clock.times),
        threads=choice.threads,
        population=stacked.size,
        population_ratio=stacked.ratio,
    )
    report = None
    if budget is not None:
        if guard is not None:
            notes.extend(guard.lines)
        used = cost.probe_steps + cost.screening_passes + cost.selection_steps
        report = BudgetReport(train_steps, budget.budget_steps, budget.describe(train_steps),
                              config.steps, budget.probe_steps, guard.ended if guard else None,
                              max(0, budget.budget_steps - used), tuple(notes), budget.note)
    return FitResult(chosen.scheme, chosen.mean, baselines, chosen.name, reason, candidates, cost,
                     study, interrupted=interrupted, selection_reused=reused, threads=choice,
                     population=stacked,
                     context=replace(context, config=config), budget=report,
                     rank_agreement=study_agreement(trials) if rungs > 1 else (),
                     probe_note=next((a["cooldown_note"] for a in attrs if "cooldown_note" in a),
                                     None))


def _stage_one(obj: Objective, population: int, n_trials: int | None, n_jobs: int
               ) -> Objective | NamedPopulation:
    """The trials' objective: with populations in one process, the named candidates are probed
    together (:mod:`autoinit.population_stage`)."""
    if population < 2 or n_jobs > 1 or population_unsupported(obj.work, obj.data, obj.config):
        return obj
    return NamedPopulation(obj, population, n_trials)


def _progress(progress: bool | SearchProgress | None, n_trials: int | None,
              timeout: float | None) -> SearchProgress | None:
    if isinstance(progress, SearchProgress):
        return progress
    return SearchProgress(n_trials, timeout) if progress_wanted(progress) else None


def _choose(study: optuna.Study, obj: Objective, selection: Selection, config: ProbeConfig,
            interrupted: bool, clock: StepClock, show: SearchProgress | None, population: int
            ) -> tuple[list[Candidate], Candidate, str, bool]:
    """The selection round (or the study's stored one, or, interrupted, the probe scores):
    ``(candidates, chosen, reason, reused)``."""
    if interrupted and not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise KeyboardInterrupt("before any trial completed; the study keeps its trials and the "
                                "next run resumes it")
    reused = None if interrupted else reuse_selection(study, obj, selection, config)
    if reused is not None:
        return (*reused, True)

    def on_probe(done: int, total: int, name: str, score: float | None) -> None:
        if done:
            clock.sample()  # the cost unit, re-timed between the round's probes
        if show is not None:
            show.selection(done, total, name, score)

    return (*select(study, obj, selection, config, rerun=not interrupted, on_probe=on_probe,
                    population=population), False)


def _origin(name: str) -> str:
    """What a chosen candidate is, in words, for the scheme file."""
    if name == "lsuv":
        return ("the lsuv baseline: orthogonal, each layer rescaled to unit output variance on "
                "the search's first training batch")
    if name.startswith("search #"):
        return f"search trial {name.removeprefix('search #')}"
    if name in list_presets():
        return f"the {name} preset: {get_preset(name).summary}"
    return f"the {name} baseline"


def _validate(model: nn.Module, n_trials: int | None, timeout: float | None, budget_steps: int | None,
              probe_steps: int, n_jobs: int, seed: int, val_batches: int, threads: int | None) -> None:
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"model {type(model).__name__} has no trainable parameter")
    for name, value in (("n_trials", n_trials), ("probe_steps", probe_steps), ("n_jobs", n_jobs),
                        ("budget_steps", budget_steps), ("val_batches", val_batches),
                        ("timeout", timeout), ("seed", seed), ("threads", threads)):
        if value is not None or name in ("probe_steps", "n_jobs", "val_batches", "seed"):
            check_option(name, value)
    if n_trials is None and timeout is None and budget_steps is None:
        raise ConfigError("give at least one of n_trials, timeout or budget_steps")


def _trial_budget(budget_steps: int | None, config: ProbeConfig, selection: Selection,
                  own_init: bool, noise_steps: int = 0) -> int | None:
    """What ``budget_steps`` leaves the trials once the selection round (and a budgeted search's
    noise probe, ``noise_steps``) is reserved."""
    if budget_steps is None:
        return None
    reserved = selection_steps(config, selection, own_init) + noise_steps
    if budget_steps < reserved + config.steps:
        raise ConfigError(
            f"budget_steps must cover one probe ({config.steps} steps) and the selection round "
            f"({reserved} steps), so at least {reserved + config.steps}, got {budget_steps}; or "
            "pass a smaller selection=Selection(top=..., seeds=...)")
    return budget_steps - reserved
