"""The probe's learning-rate cooldown: the rate it trains at, what it leaves behind, and the
rungs' cooldown branches."""

from __future__ import annotations

import threading

import pytest
import torch
from conftest import tiny_mlp
from torch import nn

from autoinit.cooldown import find_optimizers, scaled_lr
from autoinit.errors import ConfigError
from autoinit.loop import TrainLoop
from autoinit.probe import ProbeConfig, ProbeData, run_probe


@pytest.fixture
def data(tiny_loader):
    batches = list(tiny_loader)
    return ProbeData(batches[2:], batches[:2])


def _recording_loop(rates: list[float], scheduler: bool = False) -> TrainLoop:
    """SGD (optionally halved by a StepLR after every step) that records the rate each step
    trained at."""

    def make_state(model):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5) if scheduler else None
        return {"opt": opt, "sched": sched}

    def train_step(model, batch, state):
        x, y = batch
        state["opt"].zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        rates.append(state["opt"].param_groups[0]["lr"])
        state["opt"].step()
        if state["sched"] is not None:
            state["sched"].step()
        return {"loss": loss.detach()}

    return TrainLoop(train_step, lambda model, val: 0.0, make_state)


def test_the_last_steps_decay_the_rate_linearly_towards_zero(data):
    rates: list[float] = []
    run_probe(tiny_mlp(), ProbeData(data.train, data.val, loop=_recording_loop(rates)),
              ProbeConfig(steps=10, eval_every=5, cooldown=0.3))
    assert rates == pytest.approx([0.1] * 7 + [0.075, 0.05, 0.025])


def test_a_scheduler_in_the_step_keeps_its_own_schedule_under_the_cooldown(data):
    plain: list[float] = []
    cooled: list[float] = []
    run_probe(tiny_mlp(), ProbeData(data.train, data.val, loop=_recording_loop(plain, True)),
              ProbeConfig(steps=6, eval_every=3))
    run_probe(tiny_mlp(), ProbeData(data.train, data.val, loop=_recording_loop(cooled, True)),
              ProbeConfig(steps=6, eval_every=3, cooldown=0.5))
    assert plain == pytest.approx([0.1 * 0.5**i for i in range(6)])
    assert cooled == pytest.approx([p * f for p, f in zip(plain, [1, 1, 1, 0.75, 0.5, 0.25],
                                                          strict=True)])


def test_scaled_lr_restores_every_group():
    a, b = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([{"params": [a], "lr": 0.01}, {"params": [b], "lr": 0.5}])
    with scaled_lr([opt], 0.2):
        assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.002, 0.1])
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.5]


def test_optimizers_are_found_wherever_the_state_keeps_them():
    p = [nn.Parameter(torch.zeros(1))]
    g, d = torch.optim.Adam(p), torch.optim.SGD(p, lr=0.1)

    class State:
        def __init__(self):
            self.opts = [g, d]
            self.step = 0

    assert find_optimizers(g) == [g]
    assert find_optimizers({"g": g, "d": d, "again": g}) == [g, d]
    assert find_optimizers(State()) == [g, d]
    assert find_optimizers({"n": 3}) == []


def test_a_state_without_optimizer_trains_without_cooldown_and_says_why(data):
    net = tiny_mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)

    def step(model, batch, state):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(batch[0]), batch[1])
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}

    loop = TrainLoop(step, lambda model, val: 0.0, lambda model: None)
    result = run_probe(net, ProbeData(data.train, data.val, loop=loop),
                       ProbeConfig(steps=4, eval_every=2, cooldown=0.25))
    assert "no cooldown" in result.cooldown_note and "NoneType" in result.cooldown_note
    assert opt.param_groups[0]["lr"] == 0.1


def test_a_rung_scores_what_a_probe_of_its_length_would_and_leaves_the_run_alone(data):
    rungs = run_probe(tiny_mlp(), data, ProbeConfig(steps=24, eval_every=4, cooldown=0.25,
                                                    rungs=(8, 24)))
    short = run_probe(tiny_mlp(), data, ProbeConfig(steps=8, eval_every=4, cooldown=0.25))
    plain = run_probe(tiny_mlp(), data, ProbeConfig(steps=24, eval_every=4))
    assert rungs.rung_scores[0] == (8, short.score)
    assert rungs.rung_scores[1] == (24, rungs.score)
    assert rungs.branch_steps == 2  # the 8-step rung's cooldown: round(0.25 * 8) steps
    # the run itself trains at the full rate until its own cooldown (steps 19-24)
    assert rungs.curve[:4] == plain.curve[:4] and rungs.curve[-1] != plain.curve[-1]


def test_rungs_report_their_annealed_scores_and_a_stop_counts_the_rung(data):
    seen = []
    result = run_probe(tiny_mlp(), data, ProbeConfig(steps=24, eval_every=4, cooldown=0.25,
                                                     rungs=(8, 24)),
                       lambda step, value: seen.append((step, value)) or True)
    assert seen == [result.rung_scores[0]] and result.stopped_at == 8
    assert result.steps + result.branch_steps == 8


@pytest.mark.parametrize(("field", "value"), [("cooldown", 0.6), ("cooldown", -0.1),
                                              ("rungs", (8, 4)), ("rungs", (4, 8))])
def test_bad_cooldown_or_rungs_fail_in_one_line(field, value):
    with pytest.raises(ConfigError, match=field):
        ProbeConfig(steps=12, **{field: value})


def test_a_state_that_cannot_be_copied_scores_earlier_rungs_without_cooldown(data):
    def make_state(model):
        return {"opt": torch.optim.Adam(model.parameters()), "lock": threading.Lock()}

    def train_step(model, batch, state):
        state["opt"].zero_grad()
        loss = nn.functional.cross_entropy(model(batch[0]), batch[1])
        loss.backward()
        state["opt"].step()
        return {"loss": loss.detach()}

    loop = TrainLoop(train_step, lambda model, val: float(model[0].weight.sum()), make_state)
    config = ProbeConfig(steps=24, eval_every=24, cooldown=0.25, rungs=(8, 24))
    result = run_probe(tiny_mlp(), ProbeData(data.train, data.val, loop=loop), config)
    plain = run_probe(tiny_mlp(), ProbeData(data.train, data.val, loop=loop),
                      ProbeConfig(steps=24, eval_every=8))
    assert "could not be copied" in result.cooldown_note and result.branch_steps == 0
    assert result.rung_scores[0] == plain.curve[0]  # the run's own evaluation at step 8
