"""The tasks of issue 11 (where the initialization is known to matter): seeded models and the
facts each task promises. The registry-wide contract (one training step, seeded loaders, study
files) is in test_tasks.py."""

from __future__ import annotations

import math

import pytest
import torch

from autoinit.tasks import get_task
from autoinit.tasks.gpt import GPT2_STD, tiny_gpt
from autoinit.tasks.memory import make_memory, memory_data
from autoinit.tasks.resnet import resnet_nonorm

SMALL = {"resnet_nonorm": {"blocks": 2, "channels": 4},
         "post_ln_transformer_24": {"n_layers": 2, "d_model": 16, "n_heads": 2, "ff": 16},
         "lstm_memory": {"hidden": 8}, "tiny_gpt": {"n_layers": 2, "d_model": 16, "n_heads": 2},
         "tiny_vit": {"n_layers": 1, "d_model": 16, "n_heads": 2, "ff": 16}}
SMALL_DATA = {"post_ln_transformer_24": {"n_train": 64, "n_eval": 16},
              "tiny_gpt": {"n_train": 64, "n_eval": 16}, "lstm_memory": {"n_train": 64, "n_eval": 16}}


@pytest.fixture(autouse=True)
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _build(name: str, seed: int):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return get_task(name).build_model(**SMALL[name])


@pytest.mark.parametrize("name", sorted(SMALL))
def test_model_is_deterministic_under_its_seed(name):
    a, b, c = _build(name, 0), _build(name, 0), _build(name, 1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)
    # and so is one training step on the same batch
    batch = next(iter(get_task(name).loaders(seed=0, **SMALL_DATA.get(name, {}))[0]))
    losses = []
    for model in (a, b):
        out = model(batch[0])
        loss = torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), batch[1].reshape(-1))
        loss.backward()
        losses.append(loss.item())
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert losses[0] == losses[1]


def test_registered_sizes_are_the_issue_11_settings():
    assert len(get_task("resnet_nonorm").build_model().blocks) == 20
    transformer = get_task("post_ln_transformer_24").build_model()
    assert len(transformer.layers) == 24 and not transformer.layers[0].norm_first
    assert get_task("lstm_memory").data_kwargs["seq_len"] >= 100
    vit = get_task("tiny_vit").build_model()
    assert not any(layer.norm_first for layer in vit.layers)


def test_tiny_gpt_ties_embeddings_and_starts_at_gpt2s_init():
    torch.manual_seed(0)
    net = tiny_gpt(n_layers=4, d_model=64, n_heads=4)
    assert net.head.weight is net.wte.weight
    assert len({id(p) for p in net.parameters()}) == len(list(net.parameters()))  # counted once
    with torch.no_grad():
        proj = torch.cat([p.flatten() for n, p in net.named_parameters() if n.endswith("c_proj.weight")])
        fc = torch.cat([b.mlp.c_fc.weight.flatten() for b in net.blocks])
        assert float(proj.std()) == pytest.approx(GPT2_STD / math.sqrt(2 * 4), rel=0.05)
        assert float(fc.std()) == pytest.approx(GPT2_STD, rel=0.05)
        assert float(net.wte.weight.std()) == pytest.approx(GPT2_STD, rel=0.05)
        assert not any(b.attn.c_attn.bias.any() for b in net.blocks)
    # causal: a later token never changes an earlier prediction
    x = torch.randint(0, 28, (2, 16))
    y = x.clone()
    y[:, 10] = (y[:, 10] + 1) % 28
    with torch.no_grad():
        torch.testing.assert_close(net(x)[:, :10], net(y)[:, :10])
        assert not torch.allclose(net(x)[:, 10], net(y)[:, 10])


def test_memory_task_target_is_the_first_symbol_behind_distractors():
    x, y = make_memory(256, 100, classes=4, distractors=8, seed=3)
    assert x.shape == (256, 100) and torch.equal(x[:, 0], y)
    assert bool((x[:, 1:] >= 4).all()) and bool((x[:, 1:] < 12).all())
    assert sorted(y.unique().tolist()) == [0, 1, 2, 3]
    assert torch.equal(make_memory(256, 100, 4, 8, seed=3)[0], x)
    _, val = memory_data(n_train=64, n_eval=32)
    _, test = memory_data(n_train=64, n_eval=32, split="test")
    assert not torch.equal(next(iter(val))[0], next(iter(test))[0])


def test_resnet_signal_doubles_per_block_under_kaiming_and_not_under_the_default():
    """The premise of resnet_nonorm: a variance-preserving init on every layer makes the residual
    stream grow with depth; PyTorch's default (Kaiming-uniform with a = sqrt(5)) barely does."""
    x = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))

    def head_input_std(blocks: int, kaiming: bool) -> float:
        torch.manual_seed(0)
        net = resnet_nonorm(blocks=blocks, channels=16)
        if kaiming:
            for m in net.modules():
                if isinstance(m, torch.nn.Conv2d):
                    torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        h = net.stem(x).relu()
        with torch.no_grad():
            for block in net.blocks:
                h = block(h)
        return float(h.std())

    assert head_input_std(20, True) > 100 * head_input_std(2, True)
    assert head_input_std(20, False) < 10 * head_input_std(2, False)
