"""Stage 2: the refining sampler keeps the best named candidate's choices and starts from it."""

from __future__ import annotations

import math

import optuna
import pytest

from autoinit.errors import ConfigError
from autoinit.optuna_setup import make_sampler
from autoinit.refine import RefineSampler, best_named
from autoinit.twins import TWIN_ATTR

NAMED = {  # name -> (params, the objective's value there)
    "a": {"family": "a", "scale": 1.0, "multiplier": 1.0},
    "b": {"family": "b", "scale": 2.0, "multiplier": 0.0},
    "c": {"family": "c", "scale": 0.5, "multiplier": 1.0},
}


def objective(trial: optuna.Trial) -> float:
    family = trial.suggest_categorical("family", ["a", "b", "c"])
    scale = trial.suggest_float("scale", 0.25, 4.0, log=True)
    multiplier = trial.suggest_float("multiplier", 0.0, 2.0)
    return {"a": 3.0, "b": 1.0, "c": 2.0}[family] + (math.log(scale) - math.log(1.5)) ** 2 \
        + multiplier


class Spy(optuna.samplers.RandomSampler):
    """Records which families the trials handed to ``sample_relative`` hold."""

    def __init__(self):
        super().__init__(seed=0)
        self.seen: list[set[str]] = []

    def sample_relative(self, study, trial, search_space):
        self.seen.append({t.params.get("family") for t in study.get_trials(deepcopy=False)})
        return super().sample_relative(study, trial, search_space)


def _study(sampler) -> optuna.Study:
    study = optuna.create_study(sampler=sampler)
    for name, params in NAMED.items():
        study.enqueue_trial(params, user_attrs={"baseline": name})
    return study


@pytest.mark.parametrize("stage2", ["local", "tpe", "gp", "axes"])
def test_stage_2_starts_from_the_best_named_candidate_and_keeps_its_choices(stage2):
    study = _study(make_sampler(0, parallel=False, stage2=stage2))
    study.optimize(objective, n_trials=10)
    assert best_named(study.trials).user_attrs["baseline"] == "b"
    stage2_trials = study.trials[len(NAMED):]
    assert {t.params["family"] for t in stage2_trials} == {"b"}
    first = stage2_trials[0].params  # a perturbation of b's point: within 3 sigma of it
    assert abs(math.log(first["scale"] / 2.0)) < 3 * 0.15 * math.log(16)
    assert abs(first["multiplier"] - 0.0) < 3 * 0.15 * 2


def test_a_multiplier_at_zero_often_stays_exactly_zero():
    study = _study(make_sampler(0, parallel=False, stage2="local"))
    study.optimize(objective, n_trials=12)
    assert any(t.params["multiplier"] == 0.0 for t in study.trials[len(NAMED):])


def test_the_inner_sampler_sees_only_the_trials_sharing_the_choices():
    spy = Spy()
    study = _study(RefineSampler(spy, optuna.samplers.RandomSampler(0), seed=0))
    study.optimize(objective, n_trials=8)
    later = spy.seen[len(NAMED):]
    assert later and all(seen <= {"b"} for seen in later)


def test_before_any_named_candidate_completes_the_first_sampler_samples_everything():
    study = optuna.create_study(sampler=make_sampler(3, parallel=False))
    study.optimize(objective, n_trials=12)
    assert len({t.params["family"] for t in study.trials}) > 1


def test_an_unknown_stage2_sampler_is_refused():
    with pytest.raises(ConfigError, match=r"stage2 must be one of \['local', 'tpe', 'gp', 'axes'\], got 'x'"):
        make_sampler(0, parallel=False, stage2="x")


def test_axes_moves_one_scale_at_a_time_from_the_best_trial_and_skips_what_adds_nothing():
    def two_scales(trial: optuna.Trial) -> float:
        trial.suggest_categorical("family", ["a"])
        x = trial.suggest_float("in.scale", 0.25, 4.0, log=True)
        y = trial.suggest_float("out.scale", 0.25, 4.0, log=True)
        m = trial.suggest_float("out.multiplier", 0.0, 2.0)
        return (math.log(x) - math.log(4.0)) ** 2 + (math.log(y) - math.log(0.5)) ** 2 + m

    study = optuna.create_study(sampler=make_sampler(0, parallel=False, stage2="axes"))
    study.enqueue_trial({"family": "a", "in.scale": 1.0, "out.scale": 1.0, "out.multiplier": 0.5},
                        user_attrs={"baseline": "a"})
    study.optimize(two_scales, n_trials=7)
    moves = [(t.params["in.scale"], t.params["out.scale"], t.params["out.multiplier"])
             for t in study.trials[1:]]
    # in ×2 (better: the centre moves) and ×2 again (better; a third is cut by the bound), in ×½
    # from there lands on a point tried (skipped), out ×2 (worse), out ×½ (better) and once more
    # (worse); the multiplier stays
    assert moves[:5] == [(2.0, 1.0, 0.5), (4.0, 1.0, 0.5), (4.0, 2.0, 0.5), (4.0, 0.5, 0.5),
                         (4.0, 0.25, 0.5)]
    assert [t.system_attrs["autoinit.axis"] for t in study.trials[1:6]] == [
        ["in.scale", 2.0, 0], ["in.scale", 2.0, 0], ["out.scale", 2.0, 2], ["out.scale", 0.5, 3],
        ["out.scale", 0.5, 3]]
    assert "autoinit.axis" not in study.trials[6].system_attrs
    assert moves[5][2] != 0.5  # every move made: the local steps follow, and move everything


def test_axes_does_not_move_back_a_scale_whose_move_gave_the_same_weights():
    def gated(trial: optuna.Trial) -> float:  # out.scale acts only through a multiplier, here 0
        trial.suggest_categorical("family", ["a"])
        x = trial.suggest_float("in.scale", 0.25, 4.0, log=True)
        trial.suggest_float("out.scale", 0.25, 4.0, log=True)
        m = trial.suggest_float("out.multiplier", 0.0, 2.0)
        same = [t for t in trial.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
                if t.params["in.scale"] == x and t.params["out.multiplier"] == m == 0.0]
        if same:  # what autoinit.objective records for a trial whose weights were seen
            trial.set_user_attr(TWIN_ATTR, same[0].number)
        return (math.log(x) - math.log(2.0)) ** 2 + m

    study = optuna.create_study(sampler=make_sampler(0, parallel=False, stage2="axes"))
    study.enqueue_trial({"family": "a", "in.scale": 1.0, "out.scale": 1.0, "out.multiplier": 0.0},
                        user_attrs={"baseline": "a"})
    study.optimize(gated, n_trials=5)
    axes = [t.system_attrs.get("autoinit.axis") for t in study.trials[1:]]
    # in ×2 (better), ×2 again (worse), in ×½ from 2 is the start (tried), out ×2 gives the same
    # weights: out ×½ is not made, and the local steps follow
    assert axes[:3] == [["in.scale", 2.0, 0], ["in.scale", 2.0, 0], ["out.scale", 2.0, 2]]
    assert TWIN_ATTR in study.trials[3].user_attrs and axes[3] is None
