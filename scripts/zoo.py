"""A zoo of small models users write, each checked through autoinit's whole path.

For every model (``scripts/zoo_models.py``) the zoo states what a reader of the model expects
(residual depth ``L``, layers per branch ``m``, the presets that apply, some roles, parameters
left alone, tied, frozen and padding tensors) and checks it:

* the plan: groups, roles, ``depth``, ``branch_layers``, presets;
* every preset's scheme applied to a fresh model, and the same scheme read back from JSON applied
  to another: bit-identical weights; tied weights stay tied, frozen ones unchanged, an
  embedding's padding row zero;
* ``autoinit.fit`` at a tiny budget finishes, and its scheme's JSON re-applied to a fresh model of
  the same seed gives the fitted weights bit for bit;
* ``transfer_scheme`` from a narrower copy (the baseline and every preset) works, or refuses with
  a one-line :class:`~autoinit.errors.SchemeError`.

Usage:
    OMP_NUM_THREADS=1 python scripts/zoo.py [--no-fit] [NAME ...]

Prints one table row per model and exits 1 if any model crashed (an unexpected exception).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import torch
from torch import nn
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))

import zoo_models as zm  # noqa: E402

import autoinit  # noqa: E402
from autoinit.apply import apply_scheme  # noqa: E402
from autoinit.errors import SchemeError, first_line  # noqa: E402
from autoinit.plan import ModelPlan  # noqa: E402
from autoinit.presets import preset_names, preset_params  # noqa: E402
from autoinit.scheme import InitScheme  # noqa: E402
from autoinit.search import Selection  # noqa: E402
from autoinit.space import SearchSpace, suggest_scheme  # noqa: E402
from autoinit.transfer import transfer_scheme  # noqa: E402

SEED = 0
FIT = {"n_trials": 10, "probe_steps": 4, "threads": 1, "progress": False, "mlflow": False,
       "selection": Selection(seeds=0)}


@dataclass(frozen=True)
class Expect:
    """What a reader of the model expects.

    Attributes:
        depth, branch_layers: ``plan.depth`` (L) and ``plan.branch_layers`` (m).
        presets: the presets that apply, in registration order.
        roles: ``{parameter name: role}`` for the parameters that tell.
        acts: ``{parameter name: the activation that follows its layer}``.
        blocks: ``{parameter name: packed blocks}`` (q/k/v: 3, LSTM gates: 4).
        left_alone: parameters the plan leaves out (they keep the model's values).
        tied: pairs of parameter names that are one tensor.
        frozen: the prefix of the frozen parameters (left unchanged).
        padding: the embedding module whose ``padding_idx`` row must stay zero.
        transfer: ``"ok"`` or ``"refused"``: what ``transfer_scheme`` from a narrower copy does.
        note: a defensible choice autoinit makes here, for the table.
    """

    depth: int
    branch_layers: int
    presets: tuple[str, ...]
    roles: dict[str, str] = field(default_factory=dict)
    acts: dict[str, str] = field(default_factory=dict)
    blocks: dict[str, int] = field(default_factory=dict)
    left_alone: tuple[str, ...] = ()
    tied: tuple[tuple[str, str], ...] = ()
    frozen: str | None = None
    padding: str | None = None
    transfer: str = "ok"
    note: str = ""


@dataclass(frozen=True)
class Entry:
    """A zoo model: its factory ``build(width)``, its data and what a reader expects of it."""

    name: str
    build: Callable[[int], nn.Module]
    data: Callable[[], DataLoader]
    expect: Expect
    fit: dict = field(default_factory=dict)  # options the model needs (sparse gradients: SGD)


SKIP_ZERO = ("skipinit", "zero_readout")
LLAMA_ROLES = {"embed_tokens.weight": "embedding", "layers.0.self_attn.q_proj.weight": "attn_qkv",
               "layers.0.self_attn.v_proj.weight": "attn_qkv",
               "layers.0.self_attn.o_proj.weight": "attn_out",
               "layers.0.mlp.gate_proj.weight": "hidden", "layers.0.mlp.up_proj.weight": "hidden",
               "layers.0.mlp.down_proj.weight": "residual_out", "lm_head.weight": "head"}
TRANSFORMER_PRESETS = ("skipinit", "t_fixup", "gpt2", "small_init_emb", "zero_readout", "mimetic")

ZOO = [
    Entry("llama", zm.Llama, zm.tokens, Expect(
        4, 3, ("skipinit", "t_fixup", "gpt2", "small_init_emb", "zero_readout"),
        {**LLAMA_ROLES, "layers.0.input_layernorm.weight": "norm", "norm.weight": "norm"},
        acts={"layers.0.mlp.gate_proj.weight": "silu", "layers.0.mlp.up_proj.weight": "linear"},
        note="the hand-written RMSNorm is a norm (its class is named ...Norm): gains planned, "
             "a gain of 1 by default")),
    Entry("nanogpt", zm.NanoGPT, zm.tokens, Expect(
        4, 2, ("skipinit", "t_fixup", "gpt2", "small_init_emb"),
        {"transformer.wte.weight": "embedding", "transformer.h.0.attn.c_attn.weight": "attn_qkv",
         "transformer.h.0.attn.c_proj.weight": "attn_out",
         "transformer.h.0.mlp.c_fc.weight": "hidden",
         "transformer.h.0.mlp.c_proj.weight": "residual_out"},
        acts={"transformer.h.0.mlp.c_fc.weight": "gelu"},
        blocks={"transformer.h.0.attn.c_attn.weight": 1, "transformer.h.0.attn.c_attn.bias": 1},
        tied=(("transformer.wte.weight", "lm_head.weight"),),
        note="the tied lm_head is the embedding: no head group, so no zero_readout")),
    Entry("torch_encoder", zm.TorchEncoder, zm.tokens, Expect(
        4, 0, TRANSFORMER_PRESETS,
        {"enc.layers.0.self_attn.in_proj_weight": "attn_qkv",
         "enc.layers.0.self_attn.out_proj.weight": "attn_out",
         "enc.layers.0.linear1.weight": "hidden", "enc.layers.0.linear2.weight": "residual_out",
         "head.weight": "head"},
        acts={"enc.layers.0.linear1.weight": "relu"},
        blocks={"enc.layers.0.self_attn.in_proj_weight": 3})),
    Entry("torch_decoder", zm.TorchDecoder, zm.tokens, Expect(
        6, 0, TRANSFORMER_PRESETS,
        {"dec.layers.0.multihead_attn.in_proj_weight": "attn_qkv",
         "dec.layers.0.multihead_attn.out_proj.weight": "attn_out",
         "dec.layers.0.linear2.weight": "residual_out"})),
    Entry("torch_transformer", zm.TorchSeq2Seq, zm.tokens, Expect(
        5, 0, TRANSFORMER_PRESETS,
        {"transformer.encoder.layers.0.self_attn.out_proj.weight": "attn_out",
         "transformer.decoder.layers.0.multihead_attn.out_proj.weight": "attn_out",
         "transformer.decoder.layers.0.linear2.weight": "residual_out"})),
    Entry("mlp_mixer", zm.Mixer, zm.sequences, Expect(
        4, 2, ("fixup", *SKIP_ZERO),
        {"stem.weight": "input", "blocks.0.token_fc1.weight": "hidden",
         "blocks.0.token_fc2.weight": "residual_out", "blocks.0.channel_fc2.weight": "residual_out",
         "head.weight": "head"})),
    Entry("convnext", zm.ConvNeXt, zm.images, Expect(
        2, 3, ("fixup", *SKIP_ZERO),
        {"blocks.0.dwconv.weight": "hidden", "blocks.0.pwconv1.weight": "hidden",
         "blocks.0.pwconv2.weight": "residual_out"},
        left_alone=("blocks.0.gamma",),
        note="LayerScale gamma (1e-6) left alone: the model's own branch scale")),
    Entry("unet", zm.UNet, zm.denoise, Expect(
        0, 0, ("zero_readout",),
        {"enc.weight": "input", "up.weight": "hidden", "dec.weight": "hidden",
         "out.weight": "head"})),
    Entry("bn_resnet", zm.BNResNet, zm.images, Expect(
        3, 2, ("fixup", *SKIP_ZERO),
        {"layer1.0.bn2.weight": "residual_out", "layer2.0.bn2.weight": "residual_out",
         "layer1.0.conv2.weight": "hidden", "layer2.0.downsample.0.weight": "hidden",
         "layer2.0.downsample.1.weight": "norm", "fc.weight": "head"},
        acts={"layer1.0.conv1.weight": "relu", "layer1.0.conv2.weight": "linear"},
        note="conv -> BN -> ReLU is followed by ReLU; a branch's conv -> BN -> add -> ReLU by "
             "'linear'")),
    Entry("preact_resnet", zm.PreActResNet, zm.images, Expect(
        2, 2, ("fixup", *SKIP_ZERO),
        {"blocks.0.conv1.weight": "hidden", "blocks.0.conv2.weight": "residual_out"})),
    Entry("densenet", zm.DenseNet, zm.images, Expect(
        0, 0, ("zero_readout",),
        {"stem.weight": "input", "block.0.conv.weight": "hidden",
         "transition.weight": "hidden", "classifier.weight": "head"})),
    Entry("resnext_grouped", zm.GroupedResNeXt, zm.images, Expect(
        2, 2, ("fixup", *SKIP_ZERO),
        {"grouped.0.weight": "hidden", "point.0.weight": "residual_out"})),
    Entry("gan_generator", zm.Generator, zm.latents, Expect(
        0, 0, ("zero_readout",),
        {"project.weight": "input", "net.2.weight": "hidden", "net.5.weight": "head"},
        acts={"project.weight": "relu", "net.5.weight": "tanh"})),
    Entry("bilstm", zm.BiLSTM, zm.sequences, Expect(
        0, 0, ("zero_readout", "chrono"),
        {"lstm.weight_ih_l1_reverse": "rnn_ih", "lstm.weight_hh_l1_reverse": "rnn_hh",
         "head.weight": "head"}, blocks={"lstm.weight_ih_l1_reverse": 4, "lstm.bias_hh_l0": 4})),
    Entry("gru_seq_first", zm.SeqFirstGRU, zm.sequences, Expect(
        0, 0, ("zero_readout", "chrono"),
        {"gru.weight_ih_l0": "rnn_ih", "gru.weight_hh_l0": "rnn_hh", "head.weight": "head"},
        blocks={"gru.weight_hh_l0": 3})),
    Entry("relu_rnn", zm.ReluRNN, zm.sequences, Expect(
        0, 0, ("zero_readout", "irnn"), {"rnn.weight_hh_l0": "rnn_hh", "head.weight": "head"},
        acts={"rnn.weight_hh_l0": "relu"})),
    Entry("cell_loop", zm.CellLoop, zm.sequences, Expect(
        0, 0, ("zero_readout", "chrono"),
        {"lstm_cell.weight_ih": "rnn_ih", "gru_cell.weight_hh": "rnn_hh", "head.weight": "head"})),
    Entry("data_dependent", zm.Gated, zm.vectors, Expect(
        2, 2, ("fixup", *SKIP_ZERO),
        {"stem.weight": "input", "blocks.0.fc1.weight": "hidden",
         "blocks.0.fc2.weight": "residual_out", "head.weight": "head"},
        acts={"blocks.0.fc1.weight": "relu", "stem.weight": "linear"},
        note="no fx trace as a whole: its blocks are traced one by one; the F.relu after the "
             "stem, in the untraced forward, is unseen ('linear')")),
    Entry("lazy", zm.Lazy, zm.vectors, Expect(
        0, 0, ("zero_readout",), {"net.0.weight": "input", "net.4.weight": "head"})),
    Entry("weight_spectral_norm", zm.Normalized, zm.vectors, Expect(
        0, 0, ("zero_readout",),
        {"fc1.parametrizations.weight.original1": "input",
         "fc2.parametrizations.weight.original": "hidden", "head.weight": "head"})),
    Entry("padding_embedding", zm.PaddedBag, zm.tokens, Expect(
        0, 0, ("small_init_emb", "zero_readout"),
        {"emb.weight": "embedding", "fc.weight": "hidden", "head.weight": "head"},
        padding="emb")),
    Entry("bilinear", zm.BilinearNet, zm.vectors, Expect(
        0, 0, ("zero_readout",), {"bilinear.weight": "input", "head.weight": "head"})),
    Entry("raw_parameter", zm.RawParams, zm.vectors, Expect(
        0, 0, ("zero_readout",), {"fc1.weight": "input", "fc2.weight": "hidden",
                                  "out.weight": "head"},
        note="MyLinear has no layer rule: torch's (out, in) convention, with one warning")),
    Entry("frozen_backbone", zm.FrozenBackbone, zm.vectors, Expect(
        0, 0, ("zero_readout",), {"neck.weight": "input", "head.weight": "head"},
        frozen="backbone.")),
    Entry("shared_block", zm.SharedBlock, zm.vectors, Expect(
        3, 2, ("fixup", *SKIP_ZERO), {"fc2.weight": "residual_out"},
        note="one block applied 3 times: L counts each run (3)")),
    Entry("tied_head_first", zm.TiedHeadFirst, zm.tokens, Expect(
        0, 0, ("small_init_emb",), {"head.weight": "embedding", "fc.weight": "input"},
        blocks={"head.weight": 1}, tied=(("head.weight", "emb.weight"),),
        note="the tied table is the embedding whichever module comes first")),
    Entry("cross_attention_kdim", zm.CrossAttention, zm.tokens, Expect(
        1, 0, ("skipinit", "t_fixup", "gpt2", "small_init_emb", "zero_readout"),
        {"attn.q_proj_weight": "attn_qkv", "attn.k_proj_weight": "attn_qkv",
         "attn.out_proj.weight": "attn_out", "context.weight": "hidden"},
        note="no packed in_proj: no mimetic")),
    Entry("float64", zm.Float64, zm.vectors, Expect(
        0, 0, ("zero_readout",), {"net.0.weight": "input", "net.2.weight": "head"},
        acts={"net.0.weight": "tanh"})),
    Entry("bitfit", zm.BitFit, zm.vectors, Expect(
        0, 0, (), {"fc.bias": "input", "head.bias": "head"}, frozen="fc.weight",
        note="only biases planned: no preset (a preset needs a role's weights)")),
    Entry("sparse_bag", zm.SparseBag, zm.tokens, Expect(
        0, 0, ("small_init_emb", "zero_readout"), {"bag.weight": "embedding"}, padding="bag",
        note="the search needs optimizer='sgd': Adam refuses sparse gradients (a one-line "
             "ConfigError on the first step)"),
        fit={"optimizer": "sgd"}),
    Entry("tied_matmul_lm", zm.TiedMatmulLM, zm.tokens, Expect(
        2, 2, ("skipinit", "small_init_emb"),
        {"wte.weight": "embedding", "proj.1.weight": "residual_out", "fc.0.weight": "hidden"},
        acts={"fc.0.weight": "gelu"},
        note="logits h @ wte.weight.t(): the embedding is the readout, no head (so no fixup, "
             "which zeroes one) (session 13)")),
    Entry("masked_parent", zm.MaskedParent, zm.vectors, Expect(
        0, 0, ("zero_readout",), {"fc.weight": "input", "head.weight": "head"},
        acts={"fc.weight": "relu"},
        note="fc used only through F.linear(x, fc.weight * mask): the ReLU after it read (session 13)")),
    Entry("tied_autoencoder", zm.TiedAutoencoder, zm.denoise, Expect(
        0, 0, (), {"enc.weight": "input"}, acts={"enc.weight": "sigmoid"},
        left_alone=("dec_bias",),
        note="the decoder is enc.weight.t(): enc is the input layer, no head, no zero_readout (session 13)")),
]


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """The global RNG seeded inside, restored after (the models' own inits draw from it)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def fresh(entry: Entry, width: int = zm.WIDTH) -> nn.Module:
    """``entry``'s model built from ``SEED``; lazy modules materialized by one batch."""
    with _seeded(SEED):
        model = entry.build(width)
        if any(isinstance(p, nn.parameter.UninitializedParameter) for p in model.parameters()):
            with torch.no_grad():
                model(next(iter(entry.data()))[0])
    return model


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters (tied ones under every name) and buffers, detached."""
    return {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}


def differing(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    """Names whose tensors differ in any bit (compared as bytes: a NaN equals the same NaN)."""
    return [k for k in a if k not in b or not torch.equal(_bits(a[k]), _bits(b[k]))]


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1).view(torch.uint8) if t.is_floating_point() else t


def preset_scheme(plan: ModelPlan, name: str) -> InitScheme:
    """The scheme preset ``name`` stands for on ``plan``."""
    params = preset_params(plan, SearchSpace(), name)
    return suggest_scheme(optuna.trial.FixedTrial(params), plan, SearchSpace(), 1e-3, SEED)[0]


def guarantee_failures(entry: Entry, model: nn.Module, before: dict[str, torch.Tensor]) -> list[str]:
    """Tied tensors that came apart, frozen ones that changed, a padding row not zero."""
    out = []
    for a, b in entry.expect.tied:
        if model.get_parameter(a) is not model.get_parameter(b):
            out.append(f"{a} and {b} no longer tied")
    if prefix := entry.expect.frozen:
        changed = [k for k in differing(before, state(model)) if k.startswith(prefix)]
        out += [f"frozen {k} changed" for k in changed[:2]]
    if entry.expect.padding:
        emb = model.get_submodule(entry.expect.padding)
        if emb.weight[emb.padding_idx].abs().sum() != 0:
            out.append(f"{entry.expect.padding} padding row not zero")
    return out


def plan_of(model: nn.Module) -> ModelPlan:
    """The model's plan, without the warnings about layers no rule knows."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ModelPlan.of(model)


def expectations(want: Expect) -> dict[str, object]:
    """Every expectation on the plan, by name: ``{"depth": 4, "role of head.weight": "head"}``."""
    named = [("role of", want.roles), ("activation after", want.acts), ("blocks of", want.blocks)]
    return {"depth": want.depth, "branch_layers": want.branch_layers, "presets": want.presets,
            **{f"{what} {name}": value for what, values in named for name, value in values.items()},
            **{f"left alone: {name}": True for name in want.left_alone}}


def observed(plan: ModelPlan) -> dict[str, object]:
    """What the plan says, under the names of :func:`expectations`."""
    facts: dict[str, object] = {"depth": plan.depth, "branch_layers": plan.branch_layers,
                                "presets": preset_names(plan, SearchSpace())}
    for lay in plan.layers:
        facts |= {f"role of {lay.name}": lay.role, f"activation after {lay.name}": lay.nonlinearity,
                  f"blocks of {lay.name}": lay.blocks, f"left alone: {lay.name}": False}
    return facts


def observe(facts: dict[str, object], key: str) -> object:
    """``facts[key]``; a parameter the plan lacks is left alone (else ``'absent'``)."""
    return facts.get(key, True if key.startswith("left alone") else "absent")


def check_plan(entry: Entry, model: nn.Module) -> tuple[ModelPlan, list[str]]:
    """The plan and the expectations it fails (``'depth: 2 != 3'``)."""
    plan = plan_of(model)
    facts = observed(plan)
    return plan, [f"{key}: {observe(facts, key)} != {value}"
                  for key, value in expectations(entry.expect).items()
                  if observe(facts, key) != value]


def check_preset(entry: Entry, plan: ModelPlan, name: str) -> list[str]:
    """Preset ``name``'s scheme, applied to a fresh model and read back from JSON onto another:
    bit-identical, and the model's guarantees kept."""
    scheme = preset_scheme(plan, name)
    first, second = fresh(entry), fresh(entry)
    before = state(first)
    apply_scheme(first, scheme)
    apply_scheme(second, InitScheme.from_json(scheme.to_json()))
    misses = [f"{name}: JSON replay differs at {k}" for k in differing(state(first), state(second))[:2]]
    return misses + [f"{name}: {m}" for m in guarantee_failures(entry, first, before)]


def check_fit(entry: Entry, **options: object) -> tuple[str, list[str]]:
    """``autoinit.fit`` at a tiny budget; its scheme's JSON replayed onto a fresh model."""
    model = fresh(entry)
    before = state(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = autoinit.fit(model, entry.data(), **{**FIT, **entry.fit, **options})
    replay = apply_scheme(fresh(entry), InitScheme.from_json(result.scheme.to_json()))
    misses = [f"fit: JSON replay differs at {k}" for k in differing(state(model), state(replay))[:2]]
    misses += [f"fit: {m}" for m in guarantee_failures(entry, model, before)]
    return (result.scheme.origin or "?").split(":")[0], misses


def check_transfer(entry: Entry) -> tuple[str, list[str]]:
    """The baseline's and every preset's scheme on a narrower copy, transferred to the model."""
    plan = plan_of(fresh(entry, zm.NARROW))
    schemes = {"kaiming_normal": plan.uniform("kaiming_normal", seed=SEED)}
    schemes.update({name: preset_scheme(plan, name) for name in preset_names(plan, SearchSpace())})
    refusals = []
    for name, scheme in schemes.items():
        try:
            moved = transfer_scheme(scheme, fresh(entry))
        except SchemeError as exc:
            refusals.append(f"{name}: {exc}")
            continue
        model = fresh(entry)
        before = state(model)
        apply_scheme(model, moved.scheme)
        if miss := guarantee_failures(entry, model, before):
            return "broken", [f"transfer {name}: {m}" for m in miss]
    got = "refused" if refusals else "ok"
    detail = f"{got} ({len(schemes) - len(refusals)}/{len(schemes)} schemes)"
    misses = [] if got == entry.expect.transfer else [f"transfer {got} != {entry.expect.transfer}: "
                                                      f"{refusals[:1]}"]
    return detail, misses


@dataclass
class Row:
    """One model's outcome: the plan's numbers, what it chose, what failed and any crash."""

    name: str
    depth: str = ""
    presets: str = ""
    chosen: str = ""
    transfer: str = ""
    misses: list[str] = field(default_factory=list)
    crash: str = ""
    note: str = ""
    seconds: float = 0.0

    def cells(self) -> list[str]:
        verdict = "CRASH" if self.crash else ("ok" if not self.misses else "MISMATCH")
        detail = self.crash or "; ".join(self.misses) or self.note
        return [self.name, verdict, self.depth, self.presets, self.chosen, self.transfer,
                f"{self.seconds:.1f}", detail]


def run_entry(entry: Entry, fit: bool = True) -> Row:
    """Every check on one model; an unexpected exception is the row's crash."""
    row, start = Row(entry.name, note=entry.expect.note), time.perf_counter()
    step = "plan"
    try:
        plan, row.misses = check_plan(entry, fresh(entry))
        row.depth = f"L={plan.depth} m={plan.branch_layers} groups={len(plan.grouping.groups)}"
        row.presets = ",".join(preset_names(plan, SearchSpace())) or "-"
        step = "presets"
        for name in preset_names(plan, SearchSpace()):
            row.misses += check_preset(entry, plan, name)
        step = "transfer"
        row.transfer, misses = check_transfer(entry)
        row.misses += misses
        if fit:
            step = "fit"
            row.chosen, misses = check_fit(entry)
            row.misses += misses
    except Exception as exc:  # noqa: BLE001 - a crash is what the zoo reports
        row.crash = f"{step}: {type(exc).__name__}: {first_line(exc, '(no message)')[:200]}"
        traceback.print_exc(file=sys.stderr)
    row.seconds = time.perf_counter() - start
    return row


HEADER = ["model", "verdict", "plan", "presets", "fit chose", "transfer", "s",
          "mismatches / crash / what autoinit does"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="models to check (default: all)")
    parser.add_argument("--no-fit", action="store_true", help="skip autoinit.fit")
    args = parser.parse_args(argv)
    unknown = set(args.names) - {e.name for e in ZOO}
    if unknown:
        parser.error(f"unknown models {sorted(unknown)}; known: {[e.name for e in ZOO]}")
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print("| " + " | ".join(HEADER) + " |")
    print("|" + " --- |" * len(HEADER))
    rows = []
    for entry in ZOO:
        if args.names and entry.name not in args.names:
            continue
        rows.append(run_entry(entry, fit=not args.no_fit))
        print("| " + " | ".join(c.replace("|", "/") for c in rows[-1].cells()) + " |", flush=True)
    crashed = [r.name for r in rows if r.crash]
    mismatched = [r.name for r in rows if r.misses and not r.crash]
    print(f"\n{len(rows)} models: {len(rows) - len(crashed) - len(mismatched)} as expected, "
          f"{len(mismatched)} mismatched {mismatched}, {len(crashed)} crashed {crashed}")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
