"""Custom training loops: fit with the user's train_step / score / make_state, and bad input."""

from __future__ import annotations

import math

import optuna
import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_mlp
from optuna.trial import TrialState
from torch import nn

import autoinit
from autoinit.errors import AutoinitError, ConfigError
from autoinit.search import Selection, run_search
from autoinit.tasks.gan import GAN_GROUPS, dcgan, gan_data, gan_loss, gan_score, gan_state, gan_train_step

QUICK = {"n_trials": 7, "probe_steps": 6, "seed": 0, "selection": Selection(top=1, seeds=1)}


def baselines_of(result) -> dict[str, TrialState]:
    return {t.user_attrs["baseline"]: t.state for t in result.study.trials
            if t.user_attrs.get("baseline")}


# --------------------------------------------------------------------------- a tiny GAN


@pytest.fixture(scope="module")
def gan_loaders():
    train, val = gan_data(batch_size=32)
    return train, val


def test_fit_runs_a_tiny_gan_with_its_own_loop_and_score(gan_loaders):
    train, val = gan_loaders
    calls = {"make_state": 0}

    def make_state(model):
        calls["make_state"] += 1
        return gan_state(model)

    model = dcgan(z_dim=4, channels=4)
    result = autoinit.fit(model, train, val_dataloader=val, train_step=gan_train_step,
                          score=gan_score, make_state=make_state, loss_fn=gan_loss,
                          groups=GAN_GROUPS, mlflow=False, **{**QUICK, "n_trials": 9})
    states = baselines_of(result)
    # the DCGAN rule is queued beside the classical inits; with loss_fn, LSUV runs too; the
    # generator's and discriminator's last layers make a head: zero_readout
    assert set(states) == {"pytorch_default", "xavier_normal", "kaiming_normal", "lecun_normal",
                           "orthogonal", "dcgan", "lsuv", "zero_readout"}
    assert all(s == TrialState.COMPLETE for s in states.values())
    for t in result.study.trials:
        if t.state == TrialState.COMPLETE:
            assert sorted(t.user_attrs["train_values"]) == ["d_loss", "g_loss"]
            assert t.user_attrs["train_loss"] == []  # no "loss" key: the values are d and g
            assert all(v > 0 for _, v in t.user_attrs["curve"])  # Fréchet distances
    # every probe starts from fresh optimizers: one state per probe (trials, selection), one for
    # the preflight step, and at least one for the bare-step timing (a fresh one per probe's
    # worth of timed steps)
    probes = sum(t.user_attrs.get("probe_steps", 0) > 0 for t in result.study.trials)
    assert calls["make_state"] >= probes + sum(len(c.scores) for c in result.candidates) + 2
    assert result.cost.screening_passes > 0  # gan_loss runs the screening pass
    # the model is the one initialized with the chosen scheme
    again = autoinit.apply_scheme(dcgan(z_dim=4, channels=4), result.scheme)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters(),
                                                 strict=True))


def test_a_loop_without_loss_fn_skips_screening_and_lsuv_and_is_reproducible():
    kw = {"train_step": gan_train_step, "score": gan_score, "make_state": gan_state,
          "groups": GAN_GROUPS, **QUICK}
    a, b = (run_search(dcgan(z_dim=4, channels=4), train, val_dataloader=val, **kw)
            for train, val in (gan_data(batch_size=32), gan_data(batch_size=32)))
    lsuv = next(t for t in a.study.trials if t.user_attrs.get("baseline") == "lsuv")
    assert lsuv.state == TrialState.PRUNED and "lsuv needs loss_fn" in lsuv.user_attrs["failure"]
    assert a.cost.screening_passes == 0
    # common random numbers: the same seed gives the same scores, to the last bit
    assert [t.value for t in a.study.trials] == [t.value for t in b.study.trials]


# --------------------------------------------------------------- clipping and a scheduler


def clipped_state(model):
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    warmup = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / 4))
    return {"opt": opt, "sched": warmup}


def clipped_step(model, batch, state):
    x, y = batch
    state["opt"].zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
    lr = state["sched"].get_last_lr()[0]
    state["opt"].step()
    state["sched"].step()
    return {"loss": loss.item(), "grad_norm": float(norm), "lr": lr}


def test_fit_runs_a_loop_with_gradient_clipping_and_a_scheduler(tiny_loader):
    result = autoinit.fit(tiny_mlp(), tiny_loader, train_step=clipped_step,
                          make_state=clipped_state, mlflow=False, **QUICK)
    complete = [t for t in result.study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) >= 6
    for t in complete:
        # a fresh scheduler per probe: every one starts its warmup at lr/4
        assert t.user_attrs["train_values"]["lr"][:5] == pytest.approx([2.5e-3, 5e-3, 7.5e-3,
                                                                        1e-2, 1e-2])
        assert len(t.user_attrs["train_loss"]) == QUICK["probe_steps"]
        # no score given: the held-out loss (cross-entropy of two classes) scores the probe
        assert 0 < t.value < 2
    assert result.chosen in result.summary()


def test_a_step_equal_to_autoinits_own_gives_the_same_scores(tiny_loader):
    """Everything else holds: the same cached batches, seeds and scoring as the built-in loop."""

    def adam_step(model, batch, opt):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(batch[0]), batch[1])
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    own = run_search(tiny_mlp(), tiny_loader, **QUICK)
    custom = run_search(tiny_mlp(), tiny_loader, train_step=adam_step, **QUICK)
    assert [t.value for t in custom.study.trials] == pytest.approx(
        [t.value for t in own.study.trials], rel=1e-6)


def test_search_lr_reaches_a_make_state_that_takes_it(tiny_loader):
    seen = []

    def make_state(model, lr):
        seen.append(lr)
        return torch.optim.SGD(model.parameters(), lr=lr)

    def step(model, batch, opt):
        opt.zero_grad()
        loss = F.cross_entropy(model(batch[0]), batch[1])
        loss.backward()
        opt.step()
        return {"loss": loss}  # a 0-dim tensor is a number too

    run_search(tiny_mlp(), tiny_loader, train_step=step, make_state=make_state, search_lr=True,
               lr=0.05, **{**QUICK, "n_trials": 10})
    assert len(set(seen)) > 2 and all(0.005 <= v <= 0.5 for v in seen)
    with pytest.raises(ConfigError, match=r"search_lr=True needs make_state\(model, lr\)"):
        run_search(tiny_mlp(), tiny_loader, train_step=step, make_state=clipped_state,
                   search_lr=True, **QUICK)


# ------------------------------------------------------------------------------ bad input


def raises(model, batch, state):
    raise RuntimeError("shapes do not match\nsecond line")


def returns_nan(model, batch, state):
    return {"loss": math.nan}


def returns_nothing(model, batch, state):
    return None


def returns_text(model, batch, state):
    return {"loss": "low"}


def adds_a_parameter(model, batch, state):
    model.extra = nn.Parameter(torch.zeros(1))
    return {"loss": 1.0}


def replaces_a_parameter(model, batch, state):
    model[0].weight = nn.Parameter(model[0].weight.detach().clone())
    return {"loss": 1.0}


@pytest.mark.parametrize("step, message", [
    (raises, r"^train_step 'raises' raised RuntimeError: shapes do not match$"),
    (returns_nan, r"^train_step 'returns_nan' returned no finite value for \['loss'\]"),
    (returns_nothing, r"^train_step 'returns_nothing' must return a non-empty dict of names to "
                      r"numbers, got None$"),
    (returns_text, r"^train_step 'returns_text' must return .* got 'loss': 'low'$"),
    (adds_a_parameter, r"^train_step 'adds_a_parameter' changed the model's parameters \(added "
                       r"\['extra'\]\)"),
    (replaces_a_parameter, r"^train_step 'replaces_a_parameter' changed the model's parameters "
                           r"\(replaced \['0.weight'\]\)"),
])
def test_a_bad_train_step_is_one_line_naming_it_and_the_study_keeps_its_trials(
        tiny_loader, tmp_path, step, message):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first = run_search(tiny_mlp(), tiny_loader, storage=storage, study_name="s",
                       **{**QUICK, "n_trials": 2})
    with pytest.raises(ConfigError, match=message) as err:
        run_search(tiny_mlp(), tiny_loader, storage=storage, study_name="s", train_step=step,
                   **{**QUICK, "n_trials": 12})
    assert "\n" not in str(err.value)
    kept = optuna.load_study(study_name="s", storage=storage).trials
    assert [(t.number, t.state, t.value) for t in kept] == [
        (t.number, t.state, t.value) for t in first.study.trials]


def test_a_step_that_fails_later_fails_its_trials_with_the_reason(tiny_loader):
    def breaks_at_step_10(model, batch, state):  # after the preflight and the 8 timed steps
        state["n"] = state.get("n", 0) + 1
        if state["n"] == 10:
            raise ValueError("the scheduler ran out")
        return {"loss": 1.0}

    with pytest.raises(AutoinitError, match="no trial completed; first reason: ConfigError: "
                                            "train_step 'breaks_at_step_10' raised ValueError"), \
            pytest.warns(UserWarning, match="stopping the search after 5 failed trials"):
        run_search(tiny_mlp(), tiny_loader, train_step=breaks_at_step_10,
                   make_state=lambda m: {}, score=lambda m, val: 0.0,
                   **{**QUICK, "probe_steps": 12})


@pytest.mark.parametrize("kwargs, message", [
    ({"score": lambda m, val: 1 / 0}, r"^score '<lambda>' raised ZeroDivisionError"),
    ({"score": lambda m, val: "good"}, r"^score '<lambda>' must return a number, got 'good'$"),
    ({"score": lambda m, val: math.inf}, r"^score '<lambda>' returned inf for the model's own"),
    ({"make_state": lambda m: 1 / 0}, r"^make_state '<lambda>' raised ZeroDivisionError"),
    ({"train_step": None, "make_state": clipped_state},
     r"^make_state builds the state of a train_step; pass train_step too"),
    ({"train_step": "clipped_step"}, r"^train_step must be a function\(model, batch, state\), "
                                     r"got 'clipped_step'$"),
    ({"train_step": clipped_step, "score": gan_score, "loss_fn": None, "make_state": 3},
     r"^make_state must be a function\(model\) or function\(model, lr\), got 3$"),
])
def test_bad_score_or_state_is_one_line_naming_the_function(tiny_loader, kwargs, message):
    options = {"train_step": clipped_step, "make_state": clipped_state, **kwargs}
    with pytest.raises(ConfigError, match=message):
        run_search(tiny_mlp(), tiny_loader, **options, **QUICK)
