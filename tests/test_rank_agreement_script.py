"""scripts/rank_agreement.py: how a probe's pick is counted against the full trainings."""

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

from rank_agreement import agreement  # noqa: E402


def _seed(probe: dict[str, float], metric: dict[str, float]) -> dict:
    return {"full": {m: {"loss": v, "metric": v} for m, v in metric.items()},
            "probes": {m: {"old": {"100": v}, "new": {}} for m, v in probe.items()}}


def _found(probe: dict[str, float], metric: dict[str, float]) -> tuple[int, float]:
    (row,) = agreement({"task": {"0": _seed(probe, metric)}})
    return row["top1"], row["gap"]


def test_a_unique_pick_is_found_only_when_its_full_training_is_best():
    assert _found({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 0.1, "b": 0.2, "c": 0.3}) == (1, 0.0)
    top1, gap = _found({"a": 2.0, "b": 1.0, "c": 3.0}, {"a": 0.1, "b": 0.2, "c": 0.3})
    assert top1 == 0 and gap == pytest.approx(0.1)


def test_identical_inits_tied_in_probe_and_training_count_as_found():
    assert _found({"kaiming": 1.0, "lecun": 1.0, "xavier": 2.0},
                  {"kaiming": 0.1, "lecun": 0.1, "xavier": 0.3}) == (1, 0.0)


def test_a_full_training_tie_counts_whichever_of_the_tied_the_probe_picks():
    assert _found({"a": 2.0, "b": 1.0, "c": 3.0}, {"a": 0.1, "b": 0.1, "c": 0.3})[0] == 1


def test_every_probe_diverged_finds_nothing():
    top1, gap = _found({"a": math.inf, "b": math.inf, "c": math.inf},
                       {"a": 0.1, "b": 0.2, "c": 0.3})
    assert top1 == 0 and gap == pytest.approx(0.1)
