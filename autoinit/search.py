"""``run_search``: search an initialization for a model on its own data (no tracking here).

Flow: validate → plan groups (and, with ``train_steps``, the budget) → cache batches → time the
bare loop (threads, populations) → the study's rounds (:mod:`autoinit.search_rounds`; stage 1:
the named candidates, baselines and presets, enqueued first; stage 2: the best one refined, see
:mod:`autoinit.refine`; per trial: scheme, screening pass, probe, pruning) → selection round (the
incumbent, the best preset and the top search candidates re-run with fresh seeds and a longer
probe; :mod:`autoinit.selection`) → the chosen scheme is applied to the model in place →
:class:`FitResult`.
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
from autoinit.batches import LossFn, loss_fn_for, make_loss, own_loss
from autoinit.budget import MAX_LENGTHENING, BudgetPlan, budget_of, eval_every_of, plan_budget
from autoinit.clock import StepClock
from autoinit.device import resolve_device
from autoinit.errors import ConfigError
from autoinit.evidence import prior_loss
from autoinit.groups import GroupSpec
from autoinit.interrupt import interrupted
from autoinit.layers import eager
from autoinit.loop import MakeState, ScoreFn, TrainStep, make_loop, preflight
from autoinit.objective import Objective
from autoinit.plan import ModelPlan
from autoinit.population_choice import PopulationChoice, choose_population
from autoinit.presets import get_preset, list_presets
from autoinit.probe import (
    ProbeConfig,
    ProbeData,
    bare_step,
    check_first_step,
    check_half_precision,
    make_optimizer,
)
from autoinit.progress import SearchProgress, progress_wanted
from autoinit.result import BudgetReport, FitResult, SearchContext, SearchCost
from autoinit.rungs import rung_steps, study_agreement
from autoinit.search_input import (
    check_loss,
    check_state_kept,
    materialize,
    probe_batches,
    unlabelled_by,
)
from autoinit.search_rounds import Rounds, trains_nothing
from autoinit.selection import Selection, baseline_scores, rerun_steps
from autoinit.settings import DEFAULTS, check_option
from autoinit.space import SearchSpace
from autoinit.stored_cost import record_run, store_cost, stored_cost
from autoinit.study import named_candidates
from autoinit.threads import ThreadChoice, choose_threads, compute_threads

__all__ = ["DEFAULT_PROBE_STEPS", "Selection", "probe_loss", "run_search", "search_budget"]


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
    families: Sequence[str] | str | None = None,
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
        model: the model to initialize; it is initialized in place with the chosen scheme. A
            ``torch.compile``'d model, or one in ``nn.DataParallel`` or
            ``DistributedDataParallel``, is searched through the module it wraps (eager probes;
            the scheme's names are the plain model's). Lazy modules get their shapes from one
            pass of the loss on the first batch.
        dataloader: the training batches; the probes train on the first ``probe_steps``.
        val_dataloader: held-out batches (``val_batches`` of them); default: split off the front
            of ``dataloader``'s batches.
        loss_fn: ``"cross_entropy"`` or ``"mse"``, a criterion, or
            ``loss(model, batch)``; default: cross-entropy for integer targets and soft or
            one-hot float labels, mean squared error for other float targets.
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
            Without it, the probes are lengthened only where no probe learned anything
            (:mod:`autoinit.evidence`; the default ``probe_steps``, no ``budget_steps`` or
            ``timeout``, one rung; on a ``storage`` each length is a study of its own,
            ``<study_name>@<steps>-steps``, which a rerun resumes).
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
        families: candidate family names, or one name (default: every registered family that
            fits a group).
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
    model = eager(model)  # a compiled model: searched, named and initialized through its module
    _validate(model, n_trials, timeout, budget_steps, probe_steps, n_jobs, seed, val_batches,
              threads, train_steps, population)
    _validate_parts(eval_every, selection, callbacks)
    dev = resolve_device(device)
    space = _space(families, search_lr)
    loss = probe_loss(loss_fn, train_step, score)
    dataloader = materialize(model, dataloader, loss)  # lazy modules get their shapes
    plan = ModelPlan.of(model, groups, only=only, exclude=exclude, include_frozen=include_frozen)
    layer_plan = ModelPlan.of(model, "layer", only=only, exclude=exclude,
                              include_frozen=include_frozen)
    budget = _budget(plan, space, lr, train_steps, budget_steps, probe_steps, n_trials,
                     selection)
    if budget is not None:
        budget_steps, probe_steps, n_trials = budget.budget_steps, budget.probe_steps, \
            budget.n_trials
        selection = budget.selection
    selection = selection or Selection()
    loop = make_loop(train_step, score, make_state, loss, search_lr)
    ends = rung_steps(probe_steps, rungs)
    # a search may lengthen its probes (one rung): two doublings. A budgeted one (in one
    # process, in memory) caches the batches for them; one without a budget (nor a probe
    # length, a step budget or a timeout of yours) cycles through its own, and stores each
    # length as a study of its own (study.lengthened_name)
    lengthen = rungs == 1 and (
        budget.noise and storage is None and n_jobs == 1 if budget is not None
        else (probe_steps is DEFAULT_PROBE_STEPS and budget_steps is None and timeout is None))
    longest = ends[-1] * (MAX_LENGTHENING if lengthen else 1)
    # batches of ignored labels only are left out of autoinit's own cross-entropy steps; a
    # train_step of yours gets every batch (its negative integers may be labels: hinge's -1)
    train, val, places = probe_batches(
        dataloader, val_dataloader, ends[-1] if budget is None else longest, val_batches, dev,
        unlabelled_by(loss_fn, train_step))
    if loop is None and loss_fn is None:  # soft, one-hot or 0/1 float labels: decided on all
        loss_fn = loss_fn_for(None, model, train + val)  # the batches
        if loss_fn is not None:
            loss = probe_loss(loss_fn, train_step, score)
    # the prior loss of the default losses only (not your loop's, nor a model's own)
    prior = None if train_step is not None or score is not None or own_loss(model, train[0]) \
        else prior_loss(train, val, loss_fn)
    data = ProbeData(train, val, loss, loop)
    config = ProbeConfig(steps=ends[-1], lr=lr, optimizer=optimizer,
                         eval_every=eval_every or eval_every_of(probe_steps, budget),
                         objective=objective, seed=seed, device=str(dev), bf16=bf16,
                         cooldown=cooldown, rungs=ends if rungs > 1 else ())
    context = SearchContext(config, plan, train[0], loss, layer_plan)
    work, initial, step, choice = _prepare_work(model, dev, data, config, optimizer, lr, threads,
                                                places)
    show = _progress(progress, n_trials, timeout)
    with compute_threads(choice.threads), show or contextlib.nullcontext():
        if show is not None:
            show.note(choice.describe())
        clock = StepClock(step)
        # a budgeted search times fewer bare steps: they are part of its cost
        clock.sample(8 if budget is None else 3)
        work.load_state_dict(initial)
        idle = trains_nothing(storage, study_name, n_trials, selection, config)
        stacked = _population(work, data, config, population, selection, plan, budget, step,
                              idle)
        if show is not None and not stacked.notable:  # else the summary states it
            show.note(stacked.describe())
        work.load_state_dict(initial)
        obj = Objective(work, initial, plan, layer_plan, data, config, space, lr, seed, screening)
        timing = clock if budget is None else lambda study, trial: clock.sample(1)
        watch = [timing, show] if show is not None else [timing]  # in this process only
        if budget is not None and show is not None:
            show.note(budget.describe(train_steps))
            if budget.note:
                show.note(f"note: {budget.note}")
        named = budget.named if budget is not None else tuple(named_candidates(plan, space, lr))
        rounds = Rounds(obj, plan, space, lr, named, selection, context, storage=storage,
                        study_name=study_name, seed=seed, n_jobs=n_jobs, n_trials=n_trials,
                        timeout=timeout, rungs=rungs, first_rung=probe_steps,
                        callbacks=callbacks, watch=watch if n_jobs == 1 else [], clock=clock,
                        show=show, population=stacked.size, budget=budget,
                        budget_steps=budget_steps, eval_every=eval_every, lengthen=lengthen,
                        longest=longest, prior=prior).run()
    chosen = replace(rounds.chosen, scheme=replace(rounds.chosen.scheme,
                                                   origin=_origin(rounds.chosen.name)))
    apply_scheme(model, chosen.scheme)
    study = rounds.study
    trials = study.get_trials(deepcopy=False)
    cost = _search_cost(rounds, time.perf_counter() - start, choice, stacked)
    if rounds.ran == 0 and not rounds.interrupted and (rounds.reused or not selection.seeds):
        cost = stored_cost(study, cost.wall_seconds, cost)  # this run re-ran nothing
    else:  # with the study's other runs (a fleet's workers, a resumed search's earlier runs)
        ran = replace(cost, selection_steps=0) if rounds.reused else cost  # another run's round
        cost = record_run(study, ran)
        if not rounds.interrupted:
            store_cost(study, cost)
    return FitResult(chosen.scheme, chosen.mean, baseline_scores(study), chosen.name,
                     rounds.reason, rounds.candidates, cost, study,
                     interrupted=rounds.interrupted, selection_reused=rounds.reused,
                     threads=choice, population=stacked,
                     context=replace(context, config=rounds.config),
                     budget=_budget_report(rounds, cost, train_steps),
                     rank_agreement=study_agreement(trials) if rungs > 1 else (),
                     probe_note=next((t.user_attrs["cooldown_note"] for t in trials
                                      if "cooldown_note" in t.user_attrs), None))


def search_budget(model: nn.Module, *, train_steps: int | None = None,
                  budget_steps: int | None = None, probe_steps: int = DEFAULT_PROBE_STEPS,
                  n_trials: int | None = DEFAULTS.n_trials, selection: Selection | None = None,
                  lr: float = DEFAULTS.lr, groups: GroupSpec = DEFAULTS.groups,
                  families: Sequence[str] | str | None = None, search_lr: bool = False,
                  only: Iterable[str] | str | None = None,
                  exclude: Iterable[str] | str | None = None, include_frozen: bool = False,
                  **_: object) -> BudgetPlan | None:
    """The plan :func:`run_search` follows with these options (``None`` without
    ``train_steps``): its probe length, trials and selection round. Other options of
    ``run_search`` are accepted and ignored.

    Example:
        >>> import torch.nn as nn
        >>> net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
        >>> search_budget(net, train_steps=1000).shape, search_budget(net) is None
        ('halving', True)
    """
    plan = ModelPlan.of(model, groups, only=only, exclude=exclude, include_frozen=include_frozen)
    return _budget(plan, _space(families, search_lr), lr, train_steps, budget_steps,
                   probe_steps, n_trials, selection)


def probe_loss(loss_fn: str | nn.Module | Callable | None, train_step: TrainStep | None,
               score: ScoreFn | None) -> LossFn | None:
    """The probes' loss (:func:`autoinit.batches.make_loss`); ``None`` with your own
    ``train_step`` and ``score`` and no ``loss_fn`` (the loss is then only used when given)."""
    own_loop = train_step is not None and score is not None
    return None if own_loop and loss_fn is None else make_loss(loss_fn)


def _space(families: Sequence[str] | str | None, search_lr: bool) -> SearchSpace:
    """The search space; ``families`` may name one family as a plain string."""
    names = (families,) if isinstance(families, str) else families
    return SearchSpace(families=tuple(names) if names is not None else None, search_lr=search_lr)


def _budget(plan: ModelPlan, space: SearchSpace, lr: float, train_steps: int | None,
            budget_steps: int | None, probe_steps: int, n_trials: int | None,
            selection: Selection | None) -> BudgetPlan | None:
    if train_steps is None:
        return None
    given = None if probe_steps is DEFAULT_PROBE_STEPS else probe_steps
    return plan_budget(budget_steps or budget_of(train_steps),
                       list(named_candidates(plan, space, lr)), plan.model_init,
                       probe_steps=given, n_trials=n_trials, selection=selection)


def _prepare_work(model: nn.Module, dev: torch.device, data: ProbeData, config: ProbeConfig,
                  optimizer: str | Callable, lr: float, threads: int | None,
                  places: Sequence[int] | None = None
                  ) -> tuple[nn.Module, dict[str, torch.Tensor], Callable[[], object], ThreadChoice]:
    """The working copy of the model and its initial state, after the checks that fail before
    any work (optimizer name, loss on every training batch, named by its ``places`` in the loader,
    your own loop), and one bare training step, timed to choose the thread count:
    ``(work, initial, step, threads)``."""
    work = copy.deepcopy(model).to(dev)
    initial = {k: v.detach().clone() for k, v in work.state_dict().items()}
    make_optimizer(optimizer, [nn.Parameter(torch.zeros(1))], lr)  # bad names fail before work
    step = bare_step(work, data, config)
    with compute_threads(1):  # no thread count is chosen yet: none that can oversubscribe
        if data.loss is not None:
            check_loss(work, data, places)
        if data.loop is not None:
            preflight(data.loop, work, data, config)
        else:
            check_half_precision(work, optimizer)
            check_first_step(step, optimizer, lr)
    choice = choose_threads(step, config.device, threads)
    check_state_kept(work, initial)
    work.load_state_dict(initial)
    return work, initial, step, choice


def _population(work: nn.Module, data: ProbeData, config: ProbeConfig, population: int | None,
                selection: Selection, plan: ModelPlan, budget: BudgetPlan | None,
                step: Callable[[], object], idle: bool = False) -> PopulationChoice:
    """How many candidates train at once (:mod:`autoinit.population_choice`); not measured
    where this run trains nothing (``idle``)."""
    if idle:
        return PopulationChoice(1, reason="not measured: this run trains nothing, the finished "
                                "study is reused", requested=population)
    if population is None and budget is not None and not budget.searched:
        # a few short probes: timing a population would cost more than it could save
        return PopulationChoice(1, reason=f"the {budget.shape} budget has no search trial")
    members = selection.members(plan.model_init)  # the selection round's, per seed
    return choose_population(work, data, replace(config, rungs=()), population,
                             members * selection.seeds, members, step)


def _search_cost(rounds: Rounds, wall_seconds: float, threads: ThreadChoice,
                 stacked: PopulationChoice) -> SearchCost:
    trials = rounds.study.get_trials(deepcopy=False)
    attrs = [t.user_attrs for t in trials]
    clock, selection = rounds.clock, rounds.selection
    q1, q3 = clock.quartiles
    # the shorter rounds, when the probes were lengthened, and the noise probes
    extra = rounds.spent + (rounds.guard.noise_steps if rounds.guard is not None else 0)
    # a reused round: its stored steps, for a rerun of a study that stored no cost
    rerun = not (rounds.interrupted or not selection.seeds)
    return SearchCost(
        probe_steps=sum(a.get("probe_steps", 0) for a in attrs) + extra,
        screening_passes=sum(a.get("screening_passes", 0) for a in attrs),
        selection_steps=sum(len(c.scores) for c in rounds.candidates)
        * rerun_steps(rounds.config, selection) if rerun else 0,
        wall_seconds=wall_seconds,
        step_seconds=clock.median,
        trials_complete=sum(t.state == TrialState.COMPLETE for t in trials),
        trials_pruned=sum(t.state == TrialState.PRUNED for t in trials),
        trials_failed=sum(t.state == TrialState.FAIL and not interrupted(t.user_attrs)
                          for t in trials),
        trials_interrupted=sum(t.state == TrialState.FAIL and interrupted(t.user_attrs)
                               for t in trials),
        step_seconds_q1=q1,
        step_seconds_q3=q3,
        step_timings=len(clock.times),
        threads=threads.threads,
        population=stacked.size,
        population_ratio=stacked.ratio,
    )


def _budget_report(rounds: Rounds, cost: SearchCost, train_steps: int | None
                   ) -> BudgetReport | None:
    budget = rounds.budget
    if budget is None:
        return None
    guard = rounds.guard
    notes = [*rounds.notes, *(guard.lines if guard is not None else ())]
    used = cost.probe_steps + cost.screening_passes + cost.selection_steps
    return BudgetReport(train_steps, budget.budget_steps, budget.describe(train_steps),
                        rounds.config.steps, budget.probe_steps,
                        guard.ended if guard else None, max(0, budget.budget_steps - used),
                        tuple(notes), budget.note)


def _progress(progress: bool | SearchProgress | None, n_trials: int | None,
              timeout: float | None) -> SearchProgress | None:
    if isinstance(progress, SearchProgress):
        return progress
    return SearchProgress(n_trials, timeout) if progress_wanted(progress) else None


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
              probe_steps: int, n_jobs: int, seed: int, val_batches: int, threads: int | None,
              train_steps: int | None, population: int | None) -> None:
    if train_steps is not None:
        check_option("train_steps", train_steps)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"model {type(model).__name__} has no trainable parameter")
    scripted = next((n for n, m in model.named_modules() if isinstance(m, torch.jit.ScriptModule)),
                    None)
    if scripted is not None:  # torch's copies of it hold non-leaf parameters: none trains
        raise ConfigError(f"{f'module {scripted!r}' if scripted else 'model'} is a "
                          "torch.jit.ScriptModule, whose copies torch cannot train; search the "
                          "module as it was before torch.jit.script or torch.jit.trace")
    for name, value in (("n_trials", n_trials), ("probe_steps", probe_steps), ("n_jobs", n_jobs),
                        ("budget_steps", budget_steps), ("val_batches", val_batches),
                        ("timeout", timeout), ("seed", seed), ("threads", threads)):
        if value is not None or name in ("probe_steps", "n_jobs", "val_batches", "seed"):
            check_option(name, value)
    if n_trials is None and timeout is None and budget_steps is None:
        raise ConfigError("give at least one of n_trials, timeout or budget_steps")
    if population is not None:
        check_option("population", population)


def _validate_parts(eval_every: int | None, selection: Selection | None,
                    callbacks: Sequence[Callable]) -> None:
    if eval_every is not None:
        check_option("eval_every", eval_every)
    if selection is not None and not isinstance(selection, Selection):
        raise ConfigError(f"selection must be an autoinit.Selection(top=..., seeds=...), got "
                          f"{selection!r}")
    for i, callback in enumerate(callbacks):
        if not callable(callback):
            raise ConfigError(f"callbacks[{i}] must be callable as callback(study, trial), got "
                              f"{callback!r}")
