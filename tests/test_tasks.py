"""The offline task library: every registered task builds, trains one step, is seeded and has a
study file; plus the facts each generated task promises."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from autoinit import ConfigError, diagnose
from autoinit.batches import make_loss
from autoinit.config import load_study
from autoinit.plan import uniform_scheme
from autoinit.tasks import get_task, list_tasks
from autoinit.tasks.adding import make_adding
from autoinit.tasks.text import ALPHABET, char_data, generate_text

STUDIES = Path(__file__).resolve().parents[1] / "studies"
# small sizes keep the contract tests fast; the study files use the registered sizes
SMALL = {
    "deep_relu_mlp": {"depth": 4, "width": 16}, "deep_tanh_mlp": {"depth": 4, "width": 16},
    "residual_mlp": {"blocks": 2, "width": 16}, "vgg_cnn": {"convs_per_stage": 1, "channels": 4},
    "post_ln_transformer": {"n_layers": 1, "d_model": 16, "n_heads": 2, "ff": 16},
    "rnn_adding": {"hidden": 8}, "lstm_adding": {"hidden": 8},
    "dcgan_digits": {"z_dim": 4, "channels": 4},
    "resnet_nonorm": {"blocks": 2, "channels": 4},
    "post_ln_transformer_24": {"n_layers": 2, "d_model": 16, "n_heads": 2, "ff": 16},
    "lstm_memory": {"hidden": 8}, "tiny_gpt": {"n_layers": 2, "d_model": 16, "n_heads": 2},
    "tiny_vit": {"n_layers": 1, "d_model": 16, "n_heads": 2, "ff": 16},
    "gru_pixel_digits": {"hidden": 8}, "relu_rnn_pixel_digits": {"hidden": 8},
    "silu_autoencoder": {"depth": 2, "width": 8},
    "conv1d_signals": {"convs": 2, "channels": 4},
}
SMALL_DATA = {"post_ln_transformer": {"n_train": 64, "n_eval": 16},
              "rnn_adding": {"n_train": 256, "n_eval": 32},
              "lstm_adding": {"n_train": 256, "n_eval": 32},
              "post_ln_transformer_24": {"n_train": 64, "n_eval": 16},
              "tiny_gpt": {"n_train": 64, "n_eval": 16},
              "lstm_memory": {"n_train": 256, "n_eval": 32},
              "conv1d_signals": {"n_train": 64, "n_eval": 16}}


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Small models gain nothing from a second thread; on a busy machine it costs a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_registry_lists_every_benchmark_family():
    assert list_tasks() == sorted(SMALL)
    assert list_tasks("*_adding") == ["lstm_adding", "rnn_adding"]
    with pytest.raises(ConfigError, match="task must be one of .*got 'mnist'"):
        get_task("mnist")


@pytest.mark.parametrize("name", list_tasks())
def test_study_file_matches_the_registered_task(name):
    task, cfg = get_task(name), load_study(STUDIES / f"{name}.toml")
    assert (cfg.model.factory, cfg.data.factory) == (task.model, task.data)
    assert cfg.model.kwargs == dict(task.model_kwargs)
    assert cfg.data.kwargs == dict(task.data_kwargs)
    # a task with its own loop names the same functions and groups in its study file
    options = cfg.fit_options()
    for key, value in task.fit_options().items():
        assert options[key] == value, key


@pytest.mark.parametrize("name", list_tasks())
def test_task_trains_one_step_with_a_finite_loss(name):
    task = get_task(name)
    torch.manual_seed(0)
    model = task.build_model(**SMALL[name])
    train, val = task.loaders(**SMALL_DATA.get(name, {}))
    loss = make_loss(task.fit_options().get("loss_fn"))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    batch = next(iter(train))
    value = loss(model, batch)
    value.backward()
    opt.step()
    assert math.isfinite(float(value.detach()))
    held = next(iter(val))
    with torch.no_grad():
        assert math.isfinite(float(loss(model, held)))
    # held-out data comes as one batch, in a fixed order
    assert len(val) == 1
    assert torch.equal(next(iter(val))[0], held[0])


@pytest.mark.parametrize("name", list_tasks())
def test_loaders_are_seeded_and_leave_the_global_rng_alone(name):
    task, kw = get_task(name), SMALL_DATA.get(name, {})
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = next(iter(task.loaders(seed=1, **kw)[0]))
    b = next(iter(task.loaders(seed=1, **kw)[0]))
    c = next(iter(task.loaders(seed=2, **kw)[0]))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize("name", list_tasks())
def test_test_split_is_a_different_held_out_set(name):
    task, kw = get_task(name), SMALL_DATA.get(name, {})
    train_v, val = task.loaders(split="val", **kw)
    train_t, test = task.loaders(split="test", **kw)
    assert torch.equal(next(iter(train_v))[0], next(iter(train_t))[0])
    v, t = next(iter(val)), next(iter(test))
    assert not (v[0].shape == t[0].shape and torch.equal(v[0], t[0]))
    with pytest.raises(ConfigError, match="split must be one of"):
        task.loaders(split="train", **kw)


def test_deep_relu_mlp_default_init_vanishes_where_kaiming_does_not():
    """The premise of the benchmark: PyTorch's default init starves a deep plain ReLU net."""
    task = get_task("deep_relu_mlp")
    torch.manual_seed(0)
    model = task.build_model()
    batch = next(iter(task.loaders()[0]))
    default = diagnose(model, batch)
    assert "vanishing_gradient" in default.flags
    from autoinit import apply_scheme

    apply_scheme(model, uniform_scheme(model, "kaiming_normal"))
    assert "vanishing_gradient" not in diagnose(model, batch).flags


def test_adding_problem_targets_are_the_sum_of_the_marked_values():
    x, y = make_adding(64, 20, seed=5)
    markers = x[:, :, 1]
    assert torch.equal(markers.sum(1), torch.full((64,), 2.0))
    assert bool((markers[:, :10].sum(1) == 1).all()) and bool((markers[:, 10:].sum(1) == 1).all())
    torch.testing.assert_close(y.squeeze(1), (x[:, :, 0] * markers).sum(1))
    assert torch.equal(make_adding(64, 20, seed=5)[0], x)


def test_char_task_is_next_character_of_a_fixed_grammar():
    text = generate_text(500, seed=1)
    assert set(text) <= set(ALPHABET) and text == generate_text(500, seed=1)
    assert text != generate_text(500, seed=2)
    sentences = [s.split() for s in text.split(". ") if s.strip(" .")]
    assert all(s[0] in ("the", "a") for s in sentences)
    x, y = next(iter(char_data(seq_len=16, batch_size=4, n_train=16, n_eval=4)[0]))
    assert torch.equal(x[:, 1:], y[:, :-1])


def test_gan_task_trains_by_its_own_loop_and_its_score_sees_the_samples():
    task = get_task("dcgan_digits")
    options = task.fit_options()
    torch.manual_seed(0)
    model = task.build_model(**SMALL["dcgan_digits"])
    train, val = task.loaders()
    held = [next(iter(val))]
    before = options["score"](model, held)
    state = options["make_state"](model)
    assert sorted(state) == ["d", "g"] and state["g"].param_groups[0]["betas"] == (0.5, 0.999)
    values = options["train_step"](model, next(iter(train)), state)
    assert sorted(values) == ["d_loss", "g_loss"] and all(math.isfinite(v) for v in values.values())
    # the score reads the generator's samples: different weights, a different distance
    with torch.no_grad():
        model.generator.out.weight.mul_(3.0)
    assert options["score"](model, held) != before
    report = task.report_function()(model, held)
    assert set(report) >= {"fd", "classes_covered", "collapsed"}
    assert report["collapsed"] == (report["classes_covered"] < 8)


def test_frechet_distance_is_zero_for_equal_sets_and_grows_with_a_shift():
    from autoinit.tasks.gan import frechet_distance

    g = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 3, generator=g)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    b = torch.randn(4000, 3, generator=g) * 2 + 1  # means differ by 1, variances 1 vs 4
    assert frechet_distance(a, b) == pytest.approx(3 * 1 + 3 * (1 + 4 - 2 * 2), rel=0.1)


def test_digits_classifier_is_seeded_and_accurate():
    from autoinit.tasks.gan import digits_classifier

    digits_classifier.cache_clear()  # trained here, not taken from an earlier test's cache
    state = torch.get_rng_state()
    net = digits_classifier()
    assert torch.equal(torch.get_rng_state(), state)
    x, y = next(iter(get_task("dcgan_digits").loaders()[1]))
    assert float((net(x).argmax(1) == y).float().mean()) > 0.9


def test_a_pixel_rnn_of_an_unknown_cell_is_a_config_error_naming_it():
    from autoinit.tasks.pixel import PixelRNN

    with pytest.raises(ConfigError, match=r"cell must be one of \['gru', 'relu_rnn'\], got 'lstm'"):
        PixelRNN(8, 10, "lstm")
