"""scripts/finalist_ranking.py: which finalist each choice rule picks, and how it is scored."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

pytest.importorskip("sklearn")
pytest.importorskip("lsuv")
pytest.importorskip("anyinit")

from finalist_ranking import picks, task_row  # noqa: E402


def _fin(name: str, probe: float, reruns: list[float] | None, losses: list[float]) -> dict:
    out = {"name": name, "probe": probe, "reruns": reruns,
           "full": [{"test_loss": v, "test_acc": None} for v in losses]}
    if reruns is None:
        out["in_round"] = False
    return out


def _record(chosen: str, *finalists: dict) -> dict:
    return {"chosen": chosen, "finalists": list(finalists)}


ROUND = (_fin("xavier_normal", 0.50, [0.60, 0.62], [0.30, 0.32]),   # incumbent
         _fin("search #3", 0.40, [0.58, 0.66], [0.40, 0.44]),       # best probe
         _fin("search #7", 0.45, [0.55, 0.57], [0.20, 0.22]))      # best re-run mean


def test_each_rule_picks_its_own_finalist():
    assert picks(list(ROUND), "xavier_normal") == {"today": 0, "probe": 1, "rerun_mean": 2,
                                                   "incumbent": 0}


def test_a_diverged_rerun_is_never_the_rerun_mean_pick():
    fin = [*ROUND[:2], _fin("search #7", 0.45, [math.nan, 0.1], [0.2, 0.2])]
    assert picks(fin, "search #3")["rerun_mean"] == 0


def test_regret_is_measured_against_the_rounds_best_in_the_tasks_unit():
    row = task_row("silu_autoencoder", {"0": _record("xavier_normal", *ROUND)})  # a loss task
    assert row["found"] == {"today": 0, "probe": 0, "rerun_mean": 1, "incumbent": 0}
    assert row["regret"]["today"] == [pytest.approx(0.10)]
    assert row["regret"]["probe"] == [pytest.approx(0.21)]
    assert row["rho_reruns"] == [pytest.approx(1.0)] and row["rho_probe"] == [pytest.approx(-0.5)]


def test_accuracy_tasks_count_higher_as_better():
    acc = [{**f, "full": [{"test_loss": 0.0, "test_acc": a} for a in accs]}
           for f, accs in zip(ROUND, ([90, 92], [80, 82], [95, 97]), strict=True)]
    row = task_row("deep_relu_mlp", {"0": _record("search #7", *acc)})
    assert row["found"]["today"] == 1 and row["regret"]["incumbent"] == [pytest.approx(5.0)]


def test_a_baseline_left_out_of_the_round_counts_only_when_it_ends_better():
    better = _fin("orthogonal", 0.70, None, [0.10, 0.12])
    worse = _fin("lecun_normal", 0.72, None, [0.50, 0.52])
    row = task_row("silu_autoencoder", {"0": _record("xavier_normal", *ROUND, better, worse)})
    assert row["outside"] == [pytest.approx(0.10)] and row["sizes"] == [3]
    row = task_row("silu_autoencoder", {"0": _record("xavier_normal", *ROUND, worse)})
    assert row["outside"] == []


def test_the_own_draw_is_the_first_training_the_weights_a_search_hands_back():
    fin = [_fin("xavier_normal", 0.5, [0.6, 0.6], [0.30, 0.05]),
           _fin("search #3", 0.4, [0.5, 0.5], [0.20, 0.20])]
    rec = {"0": _record("search #3", *fin)}
    assert task_row("silu_autoencoder", rec, own_draw=True)["found"]["today"] == 1
    assert task_row("silu_autoencoder", rec)["found"]["today"] == 0  # means 0.20 against 0.175


def test_a_diverged_training_counts_as_the_worst_not_as_its_chance_accuracy():
    fin = [{**f, "full": [{"test_loss": 0.0, "test_acc": a, "diverged": d} for a, d in runs]}
           for f, runs in zip(ROUND, ([(90, None)], [(95, "non-finite training loss")],
                                      [(92, None)]), strict=True)]
    row = task_row("deep_relu_mlp", {"0": _record("search #3", *fin)}, own_draw=True)
    assert row["found"]["today"] == 0 and row["regret"]["today"] == [math.inf]
