"""The selection round: re-run the incumbent (the model's own init, else the best baseline), the
best preset and the top search candidates with fresh seeds, then choose (:class:`Selection`)."""

from __future__ import annotations

import json
import math
import statistics
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace

import optuna
from optuna.trial import TrialState

from autoinit.errors import FAILURE, AutoinitError, first_line
from autoinit.evidence import best_loss, learned
from autoinit.model_init import MODEL_DEFAULT
from autoinit.objective import Objective
from autoinit.population import probe_schemes
from autoinit.presets import list_presets
from autoinit.probe import ProbeConfig, ProbeResult
from autoinit.result import Candidate
from autoinit.scheme import InitScheme
from autoinit.study import DONE
from autoinit.twins import is_twin

__all__ = ["Selection", "baseline_scores", "choose", "is_stored", "rerun_steps", "reuse_selection",
           "select", "selection_steps"]

SELECTION_ATTR = "autoinit.selection"  # the study's stored selection round
ProbeReport = Callable[[int, int, str, "float | None"], None]  # (done, total, name, score)


@dataclass(frozen=True)
class Selection:
    """The selection round: the incumbent, the best preset and the ``top`` search candidates
    are re-run with ``seeds`` fresh seeds for ``steps_factor`` times the probe length (with
    rungs: for the longest rung's length); a challenger replaces the incumbent only when its
    mean paired improvement exceeds ``max(2·s.e., rel_margin·|incumbent|)``.

    The incumbent is the model's own init where it has one (what its authors chose, and what
    the user has without autoinit; the best other baseline then joins the challengers), else the
    best baseline by probe (the five families, LSUV). A preset is a hypothesis from the
    literature, so it must earn its place like a search trial.

    With ``seeds=1`` there is no noise estimate: the s.e. is taken as the improvement itself, so
    a search candidate never replaces the best baseline and the round only confirms it. With
    ``seeds=0`` nothing is re-run: the candidate with the best probe score among the incumbent,
    the best preset and the ``top`` search trials is chosen (what a budgeted search does when
    its budget holds no round, :mod:`autoinit.budget`).

    With ``among_best=True`` the round is a halving step instead: the ``top`` candidates with
    the best probe scores, whatever they are (baselines, presets, search trials), are re-run
    ``steps_factor`` times longer, and the best re-run score is chosen. A short probe can only
    screen (it ranks inits by their first descent, docs/search_cost.md); the longer one decides
    among the few it kept. What a small budget does (:mod:`autoinit.budget`).

    A challenger whose probe learned nothing (:func:`autoinit.evidence.learned`) where the
    incumbent's learned is not re-run, as long as another challenger is: the round's steps go
    where they can change the answer.

    Example:
        >>> Selection().members(own_init=True), Selection(top=2, among_best=True).members(True)
        (5, 2)
    """

    top: int = 2
    seeds: int = 2
    steps_factor: float = 2.0
    rel_margin: float = 0.005
    among_best: bool = False

    def members(self, own_init: bool = False) -> int:
        """How many candidates the round re-runs at most (each with ``seeds`` seeds)."""
        return self.top if self.among_best else self.top + 2 + own_init


def baseline_scores(study: optuna.Study) -> dict[str, float]:
    out: dict[str, float] = {}
    for t in study.get_trials(deepcopy=False, states=DONE):
        name = t.user_attrs.get("baseline")
        if name and name not in out:
            out[name] = t.value if t.state == TrialState.COMPLETE else math.inf
    return out


def rerun_steps(config: ProbeConfig, selection: Selection) -> int:
    """The steps of a selection probe: the longest rung with rungs, else ``steps_factor`` times
    the probe."""
    if len(config.rung_ends) > 1:
        return config.steps
    return max(1, round(config.steps * selection.steps_factor))


def selection_steps(config: ProbeConfig, selection: Selection, own_init: bool = False) -> int:
    """The most training steps the selection round can take (all its candidates re-run: the
    incumbent, the best preset, ``top`` search trials, and for a model with its own init the
    best other baseline)."""
    return selection.members(own_init) * selection.seeds * rerun_steps(config, selection)


def select(study: optuna.Study, obj: Objective, selection: Selection, config: ProbeConfig,
           rerun: bool = True, on_probe: ProbeReport | None = None, population: int = 1,
           prior: float | None = None) -> tuple[list[Candidate], Candidate, str]:
    """Re-run the best candidates and choose; with ``rerun=False`` (an interrupted search)
    choose by the probe scores alone. ``on_probe(done, total, name, score)`` hears of every
    re-run probe (``done=0`` before the first). With ``population`` > 1 the re-runs train up to
    that many at once (:mod:`autoinit.population`; each is heard of once all are done).
    ``prior`` (the loss of a constant prediction, :mod:`autoinit.evidence`) leaves out the
    challengers whose probe learned nothing. A completed round is stored in the study, and
    :func:`reuse_selection` hands it back while the study holds no new trial."""
    complete = sorted((t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                       if not is_twin(t)), key=lambda t: t.value)  # a twin's first stands for it
    base_trials, search_trials = _contenders(complete, selection)
    if not base_trials and not search_trials:
        failures = [t.user_attrs.get(FAILURE)
                    for t in study.get_trials(deepcopy=False)]
        raise AutoinitError("no trial completed; first reason: "
                            f"{next((f for f in failures if f), 'unknown')}")
    if not rerun or not selection.seeds:
        cands = [Candidate(_name(t), t.number, t.value, [t.value], obj.scheme_of(t)[0])
                 for t in base_trials[:1] + search_trials]
        best = min(cands, key=lambda c: c.mean)
        why = "the search was interrupted before the selection round" if not rerun else \
            "the budget holds no selection round (seeds=0)"
        return cands, best, f"{best.name} chosen by its probe score alone: {why}"
    left_out = _learned_nothing(base_trials[0] if base_trials else None, search_trials, prior)
    dropped = {t.number for t in left_out}
    rerun_trials = base_trials[:1] + [t for t in search_trials if t.number not in dropped]
    longer = replace(config, steps=rerun_steps(config, selection), rungs=(),
                     eval_every=max(1, rerun_steps(config, selection) // 4))
    report = on_probe or (lambda *_: None)
    seeds = range(1, selection.seeds + 1)
    schemes = [obj.scheme_of(t) for t in rerun_trials]
    jobs = [(scheme.with_seed(scheme.seed + k), lr, replace(longer, seed=config.seed + k))
            for scheme, lr in schemes for k in seeds]
    report(0, len(jobs), "", None)
    names = [_name(t) for t in rerun_trials]
    results = _rerun(obj, jobs, population, [n for n in names for _ in seeds])
    scores: list[float] = []
    for done, result in enumerate(results, 1):
        scores.append(result.score)
        report(done, len(jobs), names[(done - 1) // selection.seeds], scores[-1])
    n = selection.seeds
    cands = [Candidate(name, t.number, t.value, scores[i * n:(i + 1) * n], scheme)
             for i, (name, t, (scheme, _)) in enumerate(zip(names, rerun_trials, schemes,
                                                            strict=True))]
    chosen, reason = _halving(cands, longer.steps, selection.rel_margin) \
        if selection.among_best else \
        choose(cands, bool(base_trials), selection)
    if left_out:
        reason += (f"; not re-run, their probe learned nothing where {cands[0].name}'s learned: "
                   + ", ".join(f"{_name(t)} ({t.value:.4f}, prior {prior:.4f})"
                               for t in left_out))
    _store(study, selection, config, cands, chosen, reason)
    return cands, chosen, reason


def _name(trial: optuna.trial.FrozenTrial) -> str:
    return trial.user_attrs.get("baseline") or f"search #{trial.number}"


def _learned_nothing(incumbent: optuna.trial.FrozenTrial | None,
                     challengers: list[optuna.trial.FrozenTrial], prior: float | None
                     ) -> list[optuna.trial.FrozenTrial]:
    """The challengers the round leaves out: their probe learned nothing where the incumbent's
    learned (a re-run twice as long would rank a model that has not begun to learn against one
    that has); none when that would leave no challenger."""
    if prior is None or incumbent is None or not learned(best_loss(incumbent), prior):
        return []
    out = [t for t in challengers if not learned(best_loss(t), prior)]
    return out if len(out) < len(challengers) else []


def _rerun(obj: Objective, jobs: list[tuple[InitScheme, float, ProbeConfig]], population: int,
           names: list[str]) -> Iterable[ProbeResult]:
    """The round's probes: up to ``population`` at once, else one at a time, each heard of at
    once. A probe that raises (a model's own check on a diverging run: a ``torch.distributions``
    parameter gone NaN) counts as diverged, with a warning, so the trials and the round are kept;
    a population with one such member is re-run one at a time."""
    if population > 1:
        try:
            return probe_schemes(obj, jobs, population).results
        except Exception:  # noqa: BLE001 - told apart one at a time below
            pass
    return (_probe_or_diverged(obj, job, name) for job, name in zip(jobs, names, strict=True))


def _probe_or_diverged(obj: Objective, job: tuple[InitScheme, float, ProbeConfig], name: str
                       ) -> ProbeResult:
    try:
        return obj.probe(*job)
    except AutoinitError:
        raise
    except Exception as exc:  # noqa: BLE001 - the model's own error, reported and kept
        why = f"{type(exc).__name__}: {first_line(exc)}"
        warnings.warn(f"a selection probe of {name} raised {why}; it counts as diverged",
                      stacklevel=2)
        return ProbeResult(math.nan, [], [], 0, diverged=why)


def _contenders(complete: list[optuna.trial.FrozenTrial], selection: Selection
                ) -> tuple[list[optuna.trial.FrozenTrial], list[optuna.trial.FrozenTrial]]:
    """The round's baselines (the incumbent first) and its challengers, from the complete trials
    best first; a halving step has no incumbent: the best few by probe score, whatever they are."""
    if selection.among_best:
        return [], complete[: selection.top]
    presets = set(list_presets())
    named = {t.number: t.user_attrs.get("baseline") for t in complete}
    base_trials = [t for t in complete if named[t.number] and named[t.number] not in presets]
    # the model's own init, where it has one, is the incumbent: what the user has without us;
    # the best other baseline then joins the challengers
    base_trials.sort(key=lambda t: named[t.number] != MODEL_DEFAULT)
    own = bool(base_trials) and named[base_trials[0].number] == MODEL_DEFAULT
    search_trials = (base_trials[1:2] if own else []) \
        + [t for t in complete if named[t.number] in presets][:1] \
        + [t for t in complete if not named[t.number]][: selection.top]
    return base_trials, search_trials


def _key(study: optuna.Study, selection: Selection, config: ProbeConfig) -> str:
    finished = sum(1 for _ in study.get_trials(deepcopy=False, states=DONE))
    fields = asdict(selection)
    if not selection.among_best:  # the key of a round as earlier versions stored it
        del fields["among_best"]
    key = {"selection": fields, "steps": config.rung_ends[0], "seed": config.seed,
           "lr": config.lr, "objective": config.objective, "finished": finished}
    if len(config.rung_ends) > 1:  # a single-rung key stays as earlier versions stored it
        key["rungs"] = len(config.rung_ends)
    return json.dumps(key, sort_keys=True)


def _store(study: optuna.Study, selection: Selection, config: ProbeConfig, cands: list[Candidate],
           chosen: Candidate, reason: str) -> None:
    study.set_user_attr(SELECTION_ATTR, {
        "key": _key(study, selection, config), "chosen": chosen.name, "reason": reason,
        "candidates": [[c.name, c.trial_number, c.search_score, c.scores] for c in cands]})


def is_stored(study: optuna.Study, selection: Selection, config: ProbeConfig) -> bool:
    """Whether ``study`` holds a selection round :func:`reuse_selection` would hand back."""
    stored = study.user_attrs.get(SELECTION_ATTR)
    return bool(stored) and stored.get("key") == _key(study, selection, config)


def reuse_selection(study: optuna.Study, obj: Objective, selection: Selection,
                    config: ProbeConfig) -> tuple[list[Candidate], Candidate, str] | None:
    """The selection round stored in ``study`` by an earlier run with the same settings, while
    the study holds no new finished trial: ``(candidates, chosen, reason)``, or ``None``."""
    if not is_stored(study, selection, config):
        return None
    stored = study.user_attrs[SELECTION_ATTR]
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    cands = [Candidate(name, number, value, list(scores), obj.scheme_of(trials[number])[0])
             for name, number, value, scores in stored["candidates"]]
    chosen = next(c for c in cands if c.name == stored["chosen"])
    return cands, chosen, (f"{stored['reason']} [the selection round of an earlier run of this "
                           "study, reused: nothing was re-run]")


def _halving(cands: list[Candidate], steps: int, rel_margin: float) -> tuple[Candidate, str]:
    best = min(cands, key=lambda c: c.mean if math.isfinite(c.mean) else math.inf)
    others = [c for c in cands if c is not best]
    reason = (f"{best.name} chosen: the best of the {len(cands)} best probe scores re-run for "
              f"{steps} steps ({best.mean:.4f}; "
              f"{', '.join(f'{c.name} {c.mean:.4f}' for c in others) or 'no other'})")
    margin = rel_margin * abs(best.mean)
    if any(abs(c.mean - best.mean) <= margin for c in others):
        reason += (f"; within {margin:.4f} ({rel_margin:g} of the score) of each other, so the "
                   "choice is close to a guess: a larger budget would decide")
    return best, reason


def choose(cands: list[Candidate], has_baseline: bool, selection: Selection
           ) -> tuple[Candidate, str]:
    if not has_baseline:
        best = min(cands, key=lambda c: c.mean)
        return best, f"{best.name} chosen: no baseline completed its probe"
    base, searched = cands[0], cands[1:]
    if not searched:
        return base, f"{base.name} chosen: no preset or search trial completed"
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
    if mean >= 0:
        return base, (f"{base.name} (baseline) kept: the best challenger {best.name} "
                      f"scored worse ({best.mean:.4f} vs {base.mean:.4f})")
    return base, (f"{base.name} (baseline) kept: the best challenger {best.name} "
                  f"({best.mean:.4f}) improved on it ({base.mean:.4f}) by {-mean:.4f}, within the "
                  f"noise (margin {margin:.4f})")
