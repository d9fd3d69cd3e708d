"""The selection round's incumbent: the better of the two best baselines in the re-runs."""

from __future__ import annotations

from dataclasses import dataclass, replace

import optuna
from optuna.trial import create_trial

from autoinit.probe import ProbeConfig
from autoinit.selection import Selection, select


@dataclass(frozen=True)
class _Named:
    name: str
    seed: int = 0

    def with_seed(self, seed: int) -> _Named:
        return replace(self, seed=seed)


class _Rerun:
    """Re-run scores by candidate name, a little different per seed; records what it re-ran."""

    def __init__(self, rerun: dict[str, float]) -> None:
        self.rerun = rerun
        self.reran: list[str] = []

    def scheme_of(self, trial):
        return _Named(trial.user_attrs.get("baseline") or f"search #{trial.number}"), 1e-3

    def probe(self, scheme, lr, config):
        self.reran.append(scheme.name)
        return type("Result", (), {"score": self.rerun[scheme.name] + 0.001 * scheme.seed})()


def _study(probes: dict[str, float], search: float | None = None) -> optuna.Study:
    study = optuna.create_study()
    for name, value in probes.items():
        study.add_trial(create_trial(value=value, user_attrs={"baseline": name}))
    if search is not None:
        study.add_trial(create_trial(value=search))
    return study


def test_near_tied_baselines_are_told_apart_by_the_reruns_not_by_one_probe():
    # xavier led by its probe (0.500 against 0.505); the longer re-runs reverse the order
    study = _study({"xavier_normal": 0.500, "orthogonal": 0.505, "kaiming_normal": 0.9},
                   search=0.52)
    obj = _Rerun({"xavier_normal": 0.60, "orthogonal": 0.40, "search #3": 0.55})
    cands, chosen, reason = select(study, obj, Selection(), ProbeConfig(steps=10))
    assert obj.reran == ["xavier_normal"] * 2 + ["orthogonal"] * 2 + ["search #3"] * 2
    assert [c.name for c in cands] == ["orthogonal", "xavier_normal", "search #3"]
    assert chosen.name == "orthogonal"
    assert reason.startswith("orthogonal (baseline) kept")
    assert reason.endswith("; the re-runs put orthogonal (0.4015) ahead of xavier_normal "
                           "(0.6015), the best baseline by its probe")


def test_the_probes_order_stands_when_the_reruns_agree():
    study = _study({"xavier_normal": 0.500, "orthogonal": 0.505}, search=0.52)
    obj = _Rerun({"xavier_normal": 0.40, "orthogonal": 0.45, "search #2": 0.10})
    cands, chosen, reason = select(study, obj, Selection(), ProbeConfig(steps=10))
    assert [c.name for c in cands] == ["xavier_normal", "orthogonal", "search #2"]
    assert chosen.name == "search #2" and "vs best baseline xavier_normal" in reason
    assert "re-runs put" not in reason


def test_the_models_own_init_stays_the_incumbent_against_a_better_rerun_baseline():
    # the best other baseline must beat the model's own init beyond the noise, as any challenger
    study = _study({"model_default": 0.50, "orthogonal": 0.49})
    obj = _Rerun({"model_default": 0.400, "orthogonal": 0.399})
    cands, chosen, reason = select(study, obj, Selection(), ProbeConfig(steps=10))
    assert [c.name for c in cands] == ["model_default", "orthogonal"]
    assert chosen.name == "model_default" and "within the noise" in reason
    assert "re-runs put" not in reason
