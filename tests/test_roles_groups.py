"""Roles from fx traces and heuristics; grouping modes; which families fit a group."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autoinit import ConfigError, describe_model, list_families
from autoinit.groups import fitting_families, group_layers
from autoinit.plan import ModelPlan


@pytest.fixture(autouse=True)
def _isolated_rng():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        yield


def roles(model) -> dict[str, tuple[str, str]]:
    """Weight name -> (role, nonlinearity)."""
    return {lay.name: (lay.role, lay.nonlinearity) for lay in describe_model(model)}


class ResidualMLP(nn.Module):
    # names that no name heuristic knows: the residual must come from the fx trace
    def __init__(self, d: int = 8) -> None:
        super().__init__()
        self.stem = nn.Linear(4, d)
        self.alpha = nn.Linear(d, d)
        self.beta = nn.Linear(d, d)
        self.gamma = nn.Linear(d, d)
        self.out = nn.Linear(d, 2)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        h = h + self.beta(torch.relu(self.alpha(h)))
        h = torch.relu(self.gamma(h))
        return self.out(h)


class TinyTransformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 16)
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 5)

    def forward(self, tokens):
        return self.head(self.norm(self.encoder(self.emb(tokens))))


class LSTMNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def relu_mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(),
                         nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))


# ------------------------------------------------------------------------------------ roles


def test_relu_mlp_roles():
    r = roles(relu_mlp())
    assert r["0.weight"] == ("input", "relu")
    assert r["2.weight"] == r["4.weight"] == ("hidden", "relu")
    assert r["6.weight"] == ("head", "linear")
    assert r["0.bias"] == r["0.weight"]  # a bias shares its layer's role


def test_activation_of_each_layer_is_its_own():
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Dropout(0.1), nn.Linear(8, 8),
                        nn.GELU(), nn.Linear(8, 1), nn.Sigmoid())
    r = roles(net)
    assert r["0.weight"] == ("input", "tanh")  # found through the dropout as well
    assert r["3.weight"] == ("hidden", "gelu")
    assert r["5.weight"] == ("head", "sigmoid")


class FunctionalActs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 8)
        self.d, self.out = nn.Linear(8, 8), nn.Linear(8, 1)

    def forward(self, x):
        x = torch.nn.functional.mish(self.a(x))
        x = torch.nn.functional.relu6(self.b(x))
        return self.out(self.d(self.c(x).sigmoid_()))


def test_activations_without_a_gain_take_the_nearest_known_one():
    net = nn.Sequential(nn.Linear(4, 8), nn.PReLU(), nn.Linear(8, 8), nn.Hardswish(),
                        nn.Linear(8, 8), nn.Hardtanh(), nn.Linear(8, 1))
    r = roles(net)
    assert r["0.weight"] == ("input", "leaky_relu")
    assert r["2.weight"] == ("hidden", "silu")
    assert r["4.weight"] == ("hidden", "linear")  # Hardtanh: no gain known, stated linear
    f = roles(FunctionalActs())
    assert [f[f"{n}.weight"][1] for n in "abcd"] == ["silu", "relu", "sigmoid", "linear"]


def test_residual_mlp_found_by_fx():
    r = roles(ResidualMLP())
    assert r["beta.weight"][0] == "residual_out"
    assert r["alpha.weight"] == ("hidden", "relu")
    assert r["gamma.weight"] == ("hidden", "relu")  # not inside a residual branch
    assert r["stem.weight"] == ("input", "relu")
    assert r["out.weight"][0] == "head"
    # the plain MLP has no residual branch
    assert all(role != "residual_out" for role, _ in roles(relu_mlp()).values())


def test_transformer_encoder_roles():
    r = roles(TinyTransformer())
    for i in (0, 1):
        p = f"encoder.layers.{i}."
        assert r[p + "self_attn.in_proj_weight"][0] == "attn_qkv"
        assert r[p + "self_attn.in_proj_bias"][0] == "attn_qkv"
        assert r[p + "self_attn.out_proj.weight"][0] == "attn_out"
        assert r[p + "linear1.weight"] == ("hidden", "relu")
        assert r[p + "linear2.weight"][0] == "residual_out"
        assert r[p + "norm1.weight"][0] == r[p + "norm2.bias"][0] == "norm"
    assert r["emb.weight"][0] == "embedding"
    assert r["norm.weight"][0] == "norm"
    assert r["head.weight"] == ("head", "linear")


def test_lstm_roles():
    r = roles(LSTMNet())
    assert r["lstm.weight_ih_l0"][0] == r["lstm.bias_ih_l0"][0] == "rnn_ih"
    assert r["lstm.weight_hh_l0"][0] == r["lstm.bias_hh_l0"][0] == "rnn_hh"
    assert r["head.weight"][0] == "head"


def test_plain_rnn_nonlinearity():
    assert roles(nn.RNN(4, 8, nonlinearity="relu"))["weight_hh_l0"] == ("rnn_hh", "relu")
    assert roles(nn.RNN(4, 8))["weight_ih_l0"] == ("rnn_ih", "tanh")



def test_rnn_cell_stepped_in_a_loop_gets_rnn_roles_and_leaves_the_head_its_role():
    class CellNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(8, 3)  # registered before the cell it reads
            self.cell = nn.GRUCell(5, 8)

        def forward(self, x):
            h = x.new_zeros(x.shape[0], 8)
            for t in range(x.shape[1]):  # a loop over a traced shape: fx cannot trace this
                h = self.cell(x[:, t], h)
            return self.head(h)

    r = roles(CellNet())
    assert r["cell.weight_ih"][0] == r["cell.bias_ih"][0] == "rnn_ih"
    assert r["cell.weight_hh"] == ("rnn_hh", "linear")
    assert r["head.weight"][0] == "head"
    assert roles(nn.RNNCell(4, 8, nonlinearity="relu"))["weight_hh"] == ("rnn_hh", "relu")



def test_a_parametrized_layers_weight_has_its_layers_role():
    P = nn.utils.parametrizations
    net = nn.Sequential(P.weight_norm(nn.Linear(4, 8)), nn.ReLU(), P.spectral_norm(nn.Linear(8, 8)),
                        nn.ReLU(), P.weight_norm(nn.Linear(8, 2)))
    r = roles(net)
    assert r["0.parametrizations.weight.original1"] == r["0.bias"] == ("input", "relu")
    assert r["2.parametrizations.weight.original"] == r["2.bias"] == ("hidden", "relu")
    assert r["4.parametrizations.weight.original1"] == r["4.bias"] == ("head", "linear")


def test_untraceable_model_uses_heuristics():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(4, 8)
            self.fc2 = nn.Linear(8, 4)
            self.act = nn.Tanh()
            self.head = nn.Linear(4, 1)

        def forward(self, x):
            if x.sum() > 0:  # data-dependent: fx cannot trace this
                x = x + self.fc2(self.act(self.fc1(x)))
            return self.head(x)

    r = roles(Branchy())
    assert r["fc1.weight"] == ("input", "tanh")  # the model's dominant activation
    assert r["fc2.weight"][0] == "residual_out"  # by name
    assert r["head.weight"] == ("head", "linear")


class _GatedBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner, self.outer = nn.Linear(8, 8), nn.Linear(8, 8)  # names no heuristic knows

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.outer(torch.relu(self.inner(x)))


def test_blocks_of_an_untraceable_model_are_traced_one_by_one():
    class Gated(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Linear(4, 8)
            self.blocks = nn.ModuleList(_GatedBlock() for _ in range(3))
            self.head = nn.Linear(8, 2)  # untraced: the last registered layer is the head

        def forward(self, x):
            h = self.stem(x)
            for block in self.blocks:
                if h.mean() > 0:  # data-dependent: the model as a whole does not trace
                    h = block(h)
            return self.head(h)

    plan = ModelPlan.of(Gated())
    r = {lay.name: (lay.role, lay.nonlinearity, lay.branch_layers) for lay in plan.layers}
    assert r["blocks.0.inner.weight"] == ("hidden", "relu", 0)  # F-style relu seen in the block
    assert r["blocks.2.outer.weight"] == ("residual_out", "linear", 2)
    assert r["head.weight"][0] == "head" and r["stem.weight"][0] == "input"
    assert (plan.depth, plan.branch_layers) == (3, 2)


def test_a_traced_part_whose_output_ends_a_branch_in_the_parent_keeps_its_role_by_name():
    # nanoGPT: the block does not trace (``b, t, d = x.shape``), its MLP does; the MLP's c_proj
    # is the MLP's output, and the residual add around it is in the untraced block
    from autoinit.tasks.gpt import tiny_gpt

    plan = ModelPlan.of(tiny_gpt(n_layers=2, d_model=16, n_heads=2, max_len=8))
    r = {lay.name: (lay.role, lay.nonlinearity) for lay in plan.layers}
    assert r["blocks.1.mlp.c_proj.weight"] == r["blocks.1.attn.c_proj.weight"] == ("residual_out", "linear")
    assert r["blocks.1.mlp.c_fc.weight"] == ("hidden", "gelu")  # seen in the traced MLP
    assert plan.depth == 4


def test_a_block_applied_again_counts_as_a_residual_branch_each_time():
    class Shared(nn.Module):  # ALBERT's sharing: one block's weights, three residual branches
        def __init__(self):
            super().__init__()
            self.stem, self.block, self.head = nn.Linear(4, 8), _GatedBlock(), nn.Linear(8, 2)

        def forward(self, x):
            h = self.stem(x)
            for _ in range(3):
                h = self.block(h)
            return self.head(h)

    plan = ModelPlan.of(Shared())
    assert (plan.depth, plan.branch_layers) == (3, 2)
    assert {lay.calls for lay in plan.layers if lay.module_name == "block.outer"} == {3}


def test_a_layer_applied_twice_on_one_branch_is_two_of_its_layers_and_ends_none():
    class Twice(nn.Module):  # x + out(relu(lin(relu(lin(x))))): three layers on the branch
        def __init__(self):
            super().__init__()
            self.lin, self.out, self.head = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 2)

        def forward(self, x):
            return self.head(x + self.out(torch.relu(self.lin(torch.relu(self.lin(x))))))

    plan = ModelPlan.of(Twice())
    r = {lay.name: (lay.role, lay.branch_layers, lay.calls) for lay in plan.layers}
    assert r["out.weight"] == ("residual_out", 3, 1) and r["lin.weight"] == ("input", 0, 1)
    assert (plan.depth, plan.branch_layers) == (1, 3)


@pytest.mark.parametrize("norm_first", [False, True])
def test_a_torch_encoder_layer_applied_again_counts_both_its_branches_each_time(norm_first):
    class Universal(nn.Module):  # one nn.TransformerEncoderLayer's weights, run three times
        def __init__(self):
            super().__init__()
            self.emb, self.head = nn.Embedding(10, 8), nn.Linear(8, 2)
            self.layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, norm_first=norm_first)

        def forward(self, x):
            h = self.emb(x)
            for _ in range(3):
                h = self.layer(h)
            return self.head(h.mean(1))

    plan = ModelPlan.of(Universal())
    calls = {lay.name: (lay.role, lay.calls) for lay in plan.layers}
    assert calls["layer.self_attn.out_proj.weight"] == ("attn_out", 3)
    assert calls["layer.linear2.weight"] == ("residual_out", 3)
    assert calls["layer.linear1.weight"][1] == 1 and plan.depth == 6


def test_the_trace_leaves_buffers_a_forward_updates_as_they_were():
    class Counting(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.head = nn.Linear(4, 2)
            self.register_buffer("steps", torch.zeros((), dtype=torch.long))
            self.register_buffer("ema", torch.ones(4))

        def forward(self, x):
            self.steps += 1  # updated while fx traces: the trace runs forward on the real buffers
            self.ema.mul_(0.5)
            return self.head(torch.relu(self.fc(x)) - self.ema)

    model = Counting()
    r = roles(model)
    assert r["fc.weight"] == ("input", "relu") and r["head.weight"][0] == "head"
    assert model.steps.item() == 0 and torch.equal(model.ema, torch.ones(4))


def test_the_trace_leaves_attributes_a_forward_sets_as_they_were():
    class HandLazy(nn.Module):  # creates its weight on the first call, as a researcher writes it
        def __init__(self):
            super().__init__()
            self.w = None
            self.head = nn.Linear(16, 2)

        def forward(self, x):
            if self.w is None:
                self.w = nn.Parameter(torch.randn(16, x.shape[-1]))
            self.last = x  # a plain attribute set while fx traces would hold a Proxy
            return self.head(torch.relu(x @ self.w.t()))

    model = HandLazy()
    ModelPlan.of(model)
    assert model.w is None and "last" not in vars(model)
    assert model(torch.zeros(3, 8)).shape == (3, 2)


def test_a_branch_scaled_by_a_number_still_ends_a_residual_branch():
    class EulerODE(nn.Module):  # a Neural-ODE step (and Conformer's half-step FFN): h + dt * f(h)
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(4, 8)
            self.f = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8))
            self.head = nn.Linear(8, 2)

        def forward(self, x):
            h = self.inp(x)
            for _ in range(4):
                h = h + 0.25 * self.f(h)
            return self.head(h)

    model = EulerODE()
    r = roles(model)
    assert r["f.0.weight"] == ("hidden", "tanh") and r["f.2.weight"][0] == "residual_out"
    assert ModelPlan.of(model).depth == 4


def test_a_raw_parameter_used_mid_forward_is_ranked_where_it_is_used():
    class RawMiddle(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 8)
            self.mix = nn.Parameter(torch.randn(8, 8))  # used as x @ mix, not through a module
            self.head = nn.Linear(8, 2)

        def forward(self, x):
            return self.head(torch.relu(torch.relu(self.fc(x)) @ self.mix))

    with pytest.warns(UserWarning, match="no layer rule"):
        r = roles(RawMiddle())
    assert r["head.weight"][0] == "head" and r["mix"][0] == "hidden"


class _DropPath(nn.Module):  # timm's stochastic depth: no parameter, one input
    def forward(self, x):
        return x


class _Block(nn.Module):
    """timm's ViT block: fused qkv, attention projection and MLP, each through a LayerScale
    (a gain), a DropPath and channels-last reshapes before the residual add; an Identity
    shortcut."""

    def __init__(self, d: int = 8):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.attn = nn.ModuleDict({"qkv": nn.Linear(d, 3 * d), "proj": nn.Linear(d, d),
                                   "proj_drop": nn.Dropout(0.0)})
        self.fc1, self.fc2 = nn.Linear(d, 2 * d), nn.Linear(2 * d, d)
        self.gamma = nn.Parameter(torch.full((d,), 1e-5))
        self.drop_path, self.shortcut = _DropPath(), nn.Identity()

    def forward(self, x):
        q, k, v = self.attn["qkv"](self.norm(x)).chunk(3, dim=-1)
        a = torch.softmax(q @ k.transpose(-1, -2), -1) @ v
        x = self.shortcut(x) + self.drop_path(self.attn["proj_drop"](self.attn["proj"](a)))
        h = self.fc2(torch.relu(self.fc1(x))).transpose(1, 2).contiguous()
        h = h.mul(self.gamma.reshape(1, -1, 1)).transpose(1, 2)
        return x + self.drop_path(h)


class _TimmViT(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch = nn.Linear(4, 8)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 8))
        self.pos_embed = nn.Parameter(torch.zeros(1, 4, 8))
        self.blocks = nn.Sequential(_Block(), _Block())
        self.head, self.aux = nn.Linear(8, 3), nn.Linear(8, 2)

    def forward(self, x):
        x = self.patch(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1)
        x = self.blocks(x + self.pos_embed)
        return self.head(x[:, 0]), self.aux(x[:, 1:].mean(1))  # logits and an auxiliary output


def test_timm_style_blocks_tokens_and_a_tuple_output_get_their_roles():
    r = roles(_TimmViT())
    assert r["cls_token"] == r["pos_embed"] == ("embedding", "linear")
    assert r["patch.weight"][0] == "input"
    assert r["blocks.0.attn.qkv.weight"][0] == "attn_qkv"
    assert r["blocks.0.attn.proj.weight"][0] == "attn_out"  # beside qkv, through Dropout + DropPath
    assert r["blocks.1.fc2.weight"][0] == "residual_out"  # through reshapes, a gain, a DropPath
    assert r["blocks.0.fc1.weight"] == ("hidden", "relu")
    assert r["head.weight"][0] == r["aux.weight"][0] == "head"  # both returned


# ----------------------------------------------------------------------------------- groups


def names(grouping):
    return {g: [lay.name for lay in ls] for g, ls in grouping.groups.items()}


def test_group_by_role():
    g = group_layers(describe_model(TinyTransformer()), "role")
    n = names(g)
    assert set(n) == {"embedding", "attn_qkv.mha", "attn_out.linear", "hidden.linear",
                      "residual_out.linear", "norm", "head.linear"}
    assert n["residual_out.linear"] == [f"encoder.layers.{i}.linear2.{p}"
                                        for i in (0, 1) for p in ("weight", "bias")]
    assert g.unmatched == []
    assert g.nonlinearity("hidden.linear") == "relu"
    assert g.nonlinearity("norm") == "linear"


def test_group_by_layer():
    n = names(group_layers(describe_model(relu_mlp()), "layer"))
    assert n == {str(i): [f"{i}.weight", f"{i}.bias"] for i in (0, 2, 4, 6)}
    # a module whose parameters have two roles (an LSTM) is split by role
    n = names(group_layers(describe_model(LSTMNet()), "layer"))
    assert n["lstm:rnn_ih"] == ["lstm.weight_ih_l0", "lstm.bias_ih_l0"]
    assert n["lstm:rnn_hh"] == ["lstm.weight_hh_l0", "lstm.bias_hh_l0"]
    assert n["head"] == ["head.weight", "head.bias"]


def test_group_global():
    layers = describe_model(TinyTransformer())
    n = names(group_layers(layers, "global"))
    assert set(n) == {"global", "norm"}
    assert all(lay.kind == "norm" for lay in group_layers(layers, "global").groups["norm"])
    assert sum(map(len, n.values())) == len(layers)


def test_group_by_regex_reports_unmatched():
    layers = describe_model(TinyTransformer())
    g = group_layers(layers, {"attn": r"encoder\.layers\.\d+\.self_attn\.",
                              "ffn": r"encoder\.layers\.\d+\.linear", "never": r"nothing"})
    n = names(g)
    assert set(n) == {"attn", "ffn"}  # empty groups are dropped
    assert len(n["attn"]) == 2 * 4 and len(n["ffn"]) == 2 * 4
    assert g.unmatched == [lay.name for lay in layers
                           if not lay.name.startswith("encoder.layers.")
                           or "norm" in lay.name]
    assert "emb.weight" in g.unmatched and "head.bias" in g.unmatched
    # first match wins
    g2 = group_layers(layers, {"a": r"encoder", "b": r"encoder\.layers\.0"})
    assert "b" not in g2.groups


def test_group_errors():
    layers = describe_model(relu_mlp())
    with pytest.raises(ConfigError, match="groups must be one of"):
        group_layers(layers, "module")
    with pytest.raises(ConfigError, match=r"groups\['bad'\]"):
        group_layers(layers, {"bad": "("})
    with pytest.raises(ConfigError, match=r"groups=\{'x': '\^nomatch'\} match none"):
        ModelPlan.of(relu_mlp(), {"x": "^nomatch"})  # a plan of nothing, for apply_scheme too


# --------------------------------------------------------------------------------- fitting


def test_fitting_families():
    g = group_layers(describe_model(TinyTransformer()), "role").groups
    emb = fitting_families(g["embedding"])
    assert "identity" not in emb and "kaiming_normal" in emb and "constant" not in emb
    assert "identity" in fitting_families(g["hidden.linear"])
    norm = fitting_families(g["norm"])
    assert set(norm) == {"constant", "gamma_normal", "zeros", "pytorch_default", "model_default"}
    for group, layers in g.items():
        assert ("constant" in fitting_families(layers)) == (group == "norm")
        assert ("gamma_normal" in fitting_families(layers)) == (group == "norm")
    # allowed keeps its order and filters
    assert fitting_families(g["norm"], ["zeros", "orthogonal", "constant"]) == ["zeros", "constant"]
    assert fitting_families(g["hidden.linear"]) == [
        f for f in list_families() if f not in ("constant", "gamma_normal", "mimetic", "mimetic_out")]
    # families for one kind and role are offered only there
    for group, layers in g.items():
        assert ("mimetic_out" in fitting_families(layers)) == (group == "attn_out.linear"), group
        assert ("mimetic" in fitting_families(layers)) == (group == "attn_qkv.mha"), group


def test_plan_families_for_and_uniform_fallback():
    plan = ModelPlan.of(TinyTransformer())
    assert "identity" not in plan.families_for("embedding")
    s = plan.uniform("identity")
    assert s.groups["embedding"].family == "pytorch_default"
    assert s.groups["norm"].family == "pytorch_default"
    assert s.groups["hidden.linear"].family == "identity"
    assert s.groups["hidden.linear"].nonlinearity == "relu"


def test_tied_output_layer_keeps_the_head_role_away_from_the_layer_before_it():
    class TiedLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 16)
            self.fc = nn.Linear(16, 16)
            self.head = nn.Linear(16, 10, bias=False)
            self.head.weight = self.emb.weight

        def forward(self, x):
            return self.head(torch.relu(self.fc(self.emb(x))))

    roles = {lay.name: lay.role for lay in describe_model(TiedLM())}
    assert roles == {"emb.weight": "embedding", "fc.weight": "hidden", "fc.bias": "hidden"}


class _SandwichAttention(nn.Module):
    """Attention and MLP branches each ending in a LayerNorm (NormFormer, Swin v2's post-norm)."""

    def __init__(self, d: int = 8) -> None:
        super().__init__()
        self.attn, self.n1 = nn.MultiheadAttention(d, 2, batch_first=True), nn.LayerNorm(d)
        self.fc1, self.fc2, self.n2 = nn.Linear(d, 16), nn.Linear(16, d), nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.n1(self.attn(x, x, x, need_weights=False)[0])
        return x + self.n2(self.fc2(torch.relu(self.fc1(x))))


def test_an_attention_branch_ending_in_a_norm_counts_once_its_norm_the_end():
    model = nn.Sequential(nn.Linear(4, 8), _SandwichAttention(), _SandwichAttention(), nn.Linear(8, 2))
    plan = ModelPlan.of(model)
    roles = {lay.name: lay.role for lay in plan.layers}
    assert roles["1.attn.out_proj.weight"] == "hidden" and roles["1.n1.weight"] == "residual_out"
    assert plan.depth == 4  # two branches in each of the two blocks


class _DropoutAttention(nn.Module):
    """A post-LN block as often hand-written: the attention's output through an ``nn.Dropout``."""

    def __init__(self) -> None:
        super().__init__()
        self.attn, self.drop = nn.MultiheadAttention(8, 2, batch_first=True), nn.Dropout(0.1)
        self.ln, self.fc = nn.LayerNorm(8), nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ln(x + self.drop(self.attn(x, x, x)[0]))
        return x + self.drop(torch.relu(self.fc(x)))


def test_an_attention_branch_ending_in_a_dropout_module_keeps_its_out_proj_as_the_end():
    model = nn.Sequential(nn.Linear(4, 8), _DropoutAttention(), _DropoutAttention(), nn.Linear(8, 2))
    plan = ModelPlan.of(model)
    roles = {lay.name: lay.role for lay in plan.layers}
    assert roles["1.attn.out_proj.weight"] == "attn_out" and roles["1.ln.weight"] == "norm"
    assert plan.depth == 4


class _ProjectedBlock(nn.Module):
    """torchvision's basic block where the shape changes: the skip is a 1x1 conv and a norm."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(2, 4, 3, 2, 1, bias=False), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, 1, 1, bias=False), nn.BatchNorm2d(4)
        self.downsample = nn.Sequential(nn.Conv2d(2, 4, 1, 2, bias=False), nn.BatchNorm2d(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        out += self.downsample(x)
        return torch.relu(out)


def test_a_branch_beside_a_projection_shortcut_is_a_residual_branch_and_the_shortcut_is_not():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), _ProjectedBlock(), nn.Flatten(), nn.LazyLinear(2))
    model(torch.zeros(1, 1, 6, 6))
    plan = ModelPlan.of(model)
    roles = {lay.name: (lay.role, lay.branch_layers) for lay in plan.layers}
    assert roles["1.bn2.weight"] == ("residual_out", 2)  # conv1 and conv2 on the branch
    assert roles["1.downsample.1.weight"] == ("norm", 0)
    assert (plan.depth, plan.branch_layers) == (1, 2)


def test_two_paths_of_equal_length_summed_make_no_residual_branch():
    class TwoPaths(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.head = nn.Linear(4, 8), nn.Linear(4, 8), nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.a(x) + self.b(x))

    assert ModelPlan.of(TwoPaths()).depth == 0


@pytest.mark.parametrize("length", [lambda x: x.size(1), lambda x: x.shape[1]])
def test_an_input_projection_plus_learned_positions_is_no_residual_branch(length):
    class Stem(nn.Module):  # an MLP stem and nn.Embedding positions meet only in x's length
        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Sequential(nn.Linear(3, 8), nn.GELU(), nn.Linear(8, 8))
            self.pos, self.head = nn.Embedding(6, 8), nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.inp(x) + self.pos(torch.arange(length(x))))

    plan = ModelPlan.of(Stem())
    assert {lay.name: lay.role for lay in plan.layers}["inp.2.weight"] == "hidden"
    assert plan.depth == 0


def test_a_deep_and_a_wide_path_summed_into_the_prediction_make_no_residual_branch():
    class WideDeep(nn.Module):  # the shorter path is no projection shortcut: both are readouts
        def __init__(self) -> None:
            super().__init__()
            self.deep = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
            self.wide = nn.Linear(4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.deep(x) + self.wide(x))

    plan = ModelPlan.of(WideDeep())
    assert {lay.name: lay.role for lay in plan.layers}["deep.2.weight"] == "hidden"
    assert plan.depth == 0


def test_the_activation_after_a_norm_follows_the_layer_before_it_but_not_past_an_add():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), _ProjectedBlock(), nn.Flatten(), nn.LazyLinear(2))
    model(torch.zeros(1, 1, 6, 6))
    acts = {lay.name: (lay.role, lay.nonlinearity) for lay in describe_model(model)}
    assert acts["1.conv1.weight"] == ("hidden", "relu")  # conv -> BN -> ReLU
    assert acts["1.conv2.weight"] == ("hidden", "linear")  # conv -> BN -> add -> ReLU
    assert acts["1.downsample.0.weight"] == ("hidden", "linear")
    assert acts["1.bn2.weight"] == ("residual_out", "linear")
    gan = nn.Sequential(nn.Linear(4, 8), nn.Unflatten(1, (2, 2, 2)), nn.BatchNorm2d(2),
                        nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(8, 2))
    assert roles(gan)["0.weight"] == ("input", "leaky_relu")  # through a reshape and a norm


class _LoraLinear(nn.Module):
    """A LoRA layer written by hand: y = W x + B A x, W frozen, B zero as in the paper."""

    def __init__(self, d: int, r: int = 2) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d, d, generator=torch.Generator().manual_seed(0)),
                                   requires_grad=False)
        self.lora_A = nn.Parameter(torch.full((r, d), 0.1))
        self.lora_B = nn.Parameter(torch.zeros(d, r))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight) + x @ self.lora_A.T @ self.lora_B.T


class _PeftLora(nn.Module):
    """PEFT's layout: lora_A and lora_B are Linear layers keyed by the adapter's name."""

    def __init__(self, d: int, r: int = 2) -> None:
        super().__init__()
        self.base_layer = nn.Linear(d, d).requires_grad_(False)
        self.lora_A = nn.ModuleDict({"default": nn.Linear(d, r, bias=False)})
        self.lora_B = nn.ModuleDict({"default": nn.Linear(r, d, bias=False)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base_layer(x) + self.lora_B["default"](self.lora_A["default"](x))


@pytest.mark.parametrize("adapter", [_LoraLinear, _PeftLora])
def test_a_lora_adapters_b_ends_a_branch_so_skipinit_starts_it_at_zero(adapter):
    import optuna

    from autoinit.apply import apply_scheme
    from autoinit.presets import preset_names, preset_params
    from autoinit.space import SearchSpace, suggest_scheme

    net = nn.Sequential(nn.Linear(4, 6).requires_grad_(False), nn.ReLU(), adapter(6), nn.ReLU(),
                        adapter(6), nn.Linear(6, 2))
    plan = ModelPlan.of(net)
    roles = {(lay.name.split(".")[1], lay.role, lay.nonlinearity)  # both adapters' layers
             for lay in plan.layers if "lora" in lay.name}
    assert roles == {("lora_A", "hidden", "linear"), ("lora_B", "residual_out", "linear")}
    assert plan.depth == 2 and "skipinit" in preset_names(plan, SearchSpace())
    space = SearchSpace()
    trial = optuna.trial.FixedTrial(preset_params(plan, space, "skipinit", 1e-3))
    apply_scheme(net, suggest_scheme(trial, plan, space, 1e-3, 0)[0])
    b = [p for n, p in net.named_parameters() if "lora_B" in n]
    a = [p for n, p in net.named_parameters() if "lora_A" in n]
    assert all(float(p.abs().max()) == 0 for p in b) and all(float(p.abs().max()) > 0 for p in a)


class _FunctionalUses(nn.Module):
    """Layers the forward never calls: a masked linear (MADE), a conv and a matmul written in the
    parent through the layers' weights, and a tied decoder (``enc.weight.t()``) of a called layer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc, self.mm = nn.Conv2d(1, 4, 3), nn.Linear(4, 6), nn.Linear(6, 6)
        self.enc, self.readout = nn.Linear(6, 3), nn.Linear(6, 2)
        self.register_buffer("mask", torch.ones(6, 4).tril())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(nn.functional.conv2d(x, self.conv.weight, self.conv.bias)).mean((2, 3))
        h = nn.functional.gelu(nn.functional.linear(h, self.fc.weight * self.mask, self.fc.bias))
        h = torch.tanh(h @ self.mm.weight.t() + self.mm.bias)
        h = nn.functional.linear(torch.sigmoid(self.enc(h)), self.enc.weight.t())
        return nn.functional.linear(h, self.readout.weight)


def test_a_layer_used_through_its_weight_takes_the_activation_after_that_use():
    acts = roles(_FunctionalUses())
    assert acts["conv.weight"] == ("input", "relu")
    assert acts["fc.weight"] == ("hidden", "gelu")  # through the mask
    assert acts["mm.weight"] == ("hidden", "tanh")  # x @ w.t(), then + bias
    assert acts["enc.weight"] == ("hidden", "sigmoid")  # its own call, not the tied decoder's use
    assert acts["readout.weight"] == ("head", "linear")


class _MaskedResidual(nn.Module):
    """A residual branch ending in a masked linear used through its weight, run twice."""

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.fc1, self.fc2 = nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(8, 8)
        self.head = nn.Linear(8, 2)
        self.register_buffer("mask", torch.ones(8, 8).tril())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.stem(x))
        for _ in range(2):
            h = h + nn.functional.linear(torch.relu(self.fc1(h)), self.fc2.weight * self.mask, self.fc2.bias)
        return self.head(h)


def test_a_layer_used_through_its_weight_can_end_a_residual_branch_each_time_it_runs():
    layers = {lay.name: lay for lay in describe_model(_MaskedResidual())}
    end = layers["fc2.weight"]
    assert (end.role, end.nonlinearity, end.branch_layers, end.calls) == ("residual_out", "linear", 2, 2)
    plan = ModelPlan.of(_MaskedResidual())
    assert (plan.depth, plan.branch_layers) == (2, 2)


class _TiedBlock(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.ln, self.fc, self.proj = nn.LayerNorm(d), nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(nn.functional.gelu(self.fc(self.ln(x))))


class _MatmulTiedLM(nn.Module):
    """A language model whose logits are ``h @ wte.weight.t()``: no output layer of its own."""

    def __init__(self, d: int = 8) -> None:
        super().__init__()
        self.wte, self.blocks = nn.Embedding(16, d), nn.Sequential(_TiedBlock(d), _TiedBlock(d))
        self.ln_f = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.ln_f(self.blocks(self.wte(x))) @ self.wte.weight.t())[:, -1] / 2.0


class _MatmulTiedThenHead(_MatmulTiedLM):
    """The tied projection feeds a layer of its own: that layer is the head."""

    def __init__(self) -> None:
        super().__init__()
        self.out = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.ln_f(self.blocks(self.wte(x))) @ self.wte.weight.t()))


class _TiedAutoencoder(nn.Module):
    """The decoder is the encoder transposed: ``F.linear(h, enc.weight.t())``."""

    def __init__(self) -> None:
        super().__init__()
        self.enc1, self.enc2 = nn.Linear(6, 8), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.sigmoid(self.enc2(torch.relu(self.enc1(x))))
        h = torch.relu(nn.functional.linear(z, self.enc2.weight.t()))
        return nn.functional.linear(h, self.enc1.weight.t())


def test_an_output_computed_from_a_called_layers_weight_leaves_the_last_layer_no_head():
    lm = roles(_MatmulTiedLM())
    assert lm["blocks.1.proj.weight"] == ("residual_out", "linear")  # not the head
    assert ModelPlan.of(_MatmulTiedLM()).depth == 2
    assert not any(role == "head" for role, _ in lm.values())  # the embedding is the readout
    assert roles(_MatmulTiedThenHead())["out.weight"] == ("head", "linear")
    ae = roles(_TiedAutoencoder())
    assert ae == {"enc1.weight": ("input", "relu"), "enc1.bias": ("input", "relu"),
                  "enc2.weight": ("hidden", "sigmoid"), "enc2.bias": ("hidden", "sigmoid")}
