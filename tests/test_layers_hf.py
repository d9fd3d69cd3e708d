"""Hugging Face models built from small configs (no hub access): kinds, fans, roles, own init."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings

import pytest
import torch

import autoinit
from autoinit import apply_scheme, describe_model
from autoinit.plan import ModelPlan
from autoinit.space import SearchSpace, baseline_params

T = pytest.importorskip("transformers")

W, V, FF = 32, 64, 64  # width, vocabulary, MLP width


def gpt2():
    return T.GPT2LMHeadModel(T.GPT2Config(n_layer=2, n_embd=W, n_head=2, vocab_size=V,
                                          n_positions=32, bos_token_id=0, eos_token_id=0))


def bert():
    return T.BertForMaskedLM(T.BertConfig(num_hidden_layers=2, hidden_size=W, num_attention_heads=2,
                                          intermediate_size=FF, vocab_size=V,
                                          max_position_embeddings=32))


def llama():
    return T.LlamaForCausalLM(T.LlamaConfig(num_hidden_layers=2, hidden_size=W, num_attention_heads=2,
                                            num_key_value_heads=1, intermediate_size=FF,
                                            vocab_size=V, max_position_embeddings=32))


def mistral():
    return T.MistralForCausalLM(T.MistralConfig(num_hidden_layers=2, hidden_size=W,
                                                num_attention_heads=2, num_key_value_heads=1,
                                                intermediate_size=FF, vocab_size=V,
                                                max_position_embeddings=32, sliding_window=8))


def vit():
    return T.ViTForImageClassification(T.ViTConfig(num_hidden_layers=2, hidden_size=W,
                                                   num_attention_heads=2, intermediate_size=FF,
                                                   image_size=16, patch_size=4, num_labels=3))


def t5():
    return T.T5ForConditionalGeneration(T.T5Config(num_layers=2, num_decoder_layers=2, d_model=W,
                                                   d_ff=FF, d_kv=16, num_heads=2, vocab_size=V))


def albert():  # 3 layers sharing 2 groups of 2 layers each: group 0 serves layers 0 and 1
    return T.AlbertForSequenceClassification(T.AlbertConfig(
        vocab_size=V, embedding_size=16, hidden_size=W, num_hidden_layers=3, num_hidden_groups=2,
        inner_group_num=2, num_attention_heads=2, intermediate_size=FF,
        max_position_embeddings=32, num_labels=3))


# parameter class (regex on the name, layer indices as \d) -> (kind, param_type, fan_in, fan_out,
# blocks, role, nonlinearity); every parameter must match exactly one class.
EXPECTED = {
    "gpt2": (gpt2, {
        r"transformer\.w[tp]e\.weight": ("embedding", "weight", 1, W, 1, "embedding", "linear"),
        r"ln_[12f]\.weight": ("norm", "norm_weight", 0, 0, 1, "norm", "linear"),
        r"ln_[12f]\.bias": ("norm", "norm_bias", 0, 0, 1, "norm", "linear"),
        r"attn\.c_attn\.weight": ("linear", "weight", W, W, 3, "attn_qkv", "linear"),
        r"attn\.c_attn\.bias": ("linear", "bias", 3 * W, 0, 3, "attn_qkv", "linear"),
        r"attn\.c_proj\.weight": ("linear", "weight", W, W, 1, "attn_out", "linear"),
        r"attn\.c_proj\.bias": ("linear", "bias", W, 0, 1, "attn_out", "linear"),
        r"mlp\.c_fc\.weight": ("linear", "weight", W, 4 * W, 1, "hidden", "gelu"),
        r"mlp\.c_fc\.bias": ("linear", "bias", 4 * W, 0, 1, "hidden", "gelu"),
        r"mlp\.c_proj\.weight": ("linear", "weight", 4 * W, W, 1, "residual_out", "linear"),
        r"mlp\.c_proj\.bias": ("linear", "bias", W, 0, 1, "residual_out", "linear"),
    }),
    "bert": (bert, {
        r"embeddings\.\w+_embeddings\.weight": ("embedding", "weight", 1, W, 1, "embedding", "linear"),
        r"LayerNorm\.weight": ("norm", "norm_weight", 0, 0, 1, "norm", "linear"),
        r"LayerNorm\.bias": ("norm", "norm_bias", 0, 0, 1, "norm", "linear"),
        r"self\.(query|key|value)\.weight": ("linear", "weight", W, W, 1, "attn_qkv", "linear"),
        r"self\.(query|key|value)\.bias": ("linear", "bias", W, 0, 1, "attn_qkv", "linear"),
        r"attention\.output\.dense\.weight": ("linear", "weight", W, W, 1, "attn_out", "linear"),
        r"attention\.output\.dense\.bias": ("linear", "bias", W, 0, 1, "attn_out", "linear"),
        r"intermediate\.dense\.weight": ("linear", "weight", W, FF, 1, "hidden", "gelu"),
        r"intermediate\.dense\.bias": ("linear", "bias", FF, 0, 1, "hidden", "gelu"),
        r"\d\.output\.dense\.weight": ("linear", "weight", FF, W, 1, "residual_out", "linear"),
        r"\d\.output\.dense\.bias": ("linear", "bias", W, 0, 1, "residual_out", "linear"),
        r"transform\.dense\.weight": ("linear", "weight", W, W, 1, "hidden", "gelu"),
        r"transform\.dense\.bias": ("linear", "bias", W, 0, 1, "hidden", "gelu"),
        r"cls\.predictions\.bias": ("linear", "bias", 0, 0, 1, "head", "linear"),
    }),
    "llama": (llama, {
        r"embed_tokens\.weight": ("embedding", "weight", 1, W, 1, "embedding", "linear"),
        r"(layernorm|norm)\.weight": ("norm", "norm_weight", 0, 0, 1, "norm", "linear"),
        r"q_proj\.weight": ("linear", "weight", W, W, 1, "attn_qkv", "linear"),
        r"[kv]_proj\.weight": ("linear", "weight", W, W // 2, 1, "attn_qkv", "linear"),
        r"o_proj\.weight": ("linear", "weight", W, W, 1, "attn_out", "linear"),
        r"gate_proj\.weight": ("linear", "weight", W, FF, 1, "hidden", "silu"),
        r"up_proj\.weight": ("linear", "weight", W, FF, 1, "hidden", "linear"),
        r"down_proj\.weight": ("linear", "weight", FF, W, 1, "residual_out", "linear"),
        r"lm_head\.weight": ("linear", "weight", W, V, 1, "head", "linear"),
    }),
    "vit": (vit, {
        r"embeddings\.(cls_token|position_embeddings)$": ("embedding", "weight", 1, W, 1, "embedding",
                                                           "linear"),
        r"projection\.weight": ("conv", "weight", 3 * 16, W * 16, 1, "input", "linear"),
        r"projection\.bias": ("conv", "bias", W, 0, 1, "input", "linear"),
        r"layernorm\w*\.weight": ("norm", "norm_weight", 0, 0, 1, "norm", "linear"),
        r"layernorm\w*\.bias": ("norm", "norm_bias", 0, 0, 1, "norm", "linear"),
        r"[qkv]_proj\.weight": ("linear", "weight", W, W, 1, "attn_qkv", "linear"),
        r"[qkv]_proj\.bias": ("linear", "bias", W, 0, 1, "attn_qkv", "linear"),
        r"o_proj\.weight": ("linear", "weight", W, W, 1, "attn_out", "linear"),
        r"o_proj\.bias": ("linear", "bias", W, 0, 1, "attn_out", "linear"),
        r"fc1\.weight": ("linear", "weight", W, FF, 1, "hidden", "gelu"),
        r"fc1\.bias": ("linear", "bias", FF, 0, 1, "hidden", "gelu"),
        r"fc2\.weight": ("linear", "weight", FF, W, 1, "residual_out", "linear"),
        r"fc2\.bias": ("linear", "bias", W, 0, 1, "residual_out", "linear"),
        r"classifier\.weight": ("linear", "weight", W, 3, 1, "head", "linear"),
        r"classifier\.bias": ("linear", "bias", 3, 0, 1, "head", "linear"),
    }),
    "t5": (t5, {
        r"shared\.weight": ("embedding", "weight", 1, W, 1, "embedding", "linear"),
        r"relative_attention_bias\.weight": ("embedding", "weight", 1, 2, 1, "embedding", "linear"),
        r"layer_norm\.weight": ("norm", "norm_weight", 0, 0, 1, "norm", "linear"),
        r"Attention\.[qkv]\.weight": ("linear", "weight", W, W, 1, "attn_qkv", "linear"),
        r"Attention\.o\.weight": ("linear", "weight", W, W, 1, "attn_out", "linear"),
        r"DenseReluDense\.wi\.weight": ("linear", "weight", W, FF, 1, "hidden", "relu"),
        r"DenseReluDense\.wo\.weight": ("linear", "weight", FF, W, 1, "residual_out", "linear"),
    }),
}
EXPECTED["albert"] = (albert, {
    r"embeddings\.\w+_embeddings\.weight": ("embedding", "weight", 1, 16, 1, "embedding", "linear"),
    r"(LayerNorm|layer_norm)\.weight": ("norm", "norm_weight", 0, 0, 1, "norm", "linear"),
    r"(LayerNorm|layer_norm)\.bias": ("norm", "norm_bias", 0, 0, 1, "norm", "linear"),
    r"mapping_in\.weight": ("linear", "weight", 16, W, 1, "hidden", "linear"),
    r"mapping_in\.bias": ("linear", "bias", W, 0, 1, "hidden", "linear"),
    r"(query|key|value)\.weight": ("linear", "weight", W, W, 1, "attn_qkv", "linear"),
    r"(query|key|value)\.bias": ("linear", "bias", W, 0, 1, "attn_qkv", "linear"),
    r"attention\.dense\.weight": ("linear", "weight", W, W, 1, "attn_out", "linear"),
    r"attention\.dense\.bias": ("linear", "bias", W, 0, 1, "attn_out", "linear"),
    r"ffn\.weight": ("linear", "weight", W, FF, 1, "hidden", "gelu"),
    r"ffn\.bias": ("linear", "bias", FF, 0, 1, "hidden", "gelu"),
    r"ffn_output\.weight": ("linear", "weight", FF, W, 1, "residual_out", "linear"),
    r"ffn_output\.bias": ("linear", "bias", W, 0, 1, "residual_out", "linear"),
    r"pooler\.weight": ("linear", "weight", W, W, 1, "hidden", "tanh"),
    r"pooler\.bias": ("linear", "bias", W, 0, 1, "hidden", "tanh"),
    r"classifier\.weight": ("linear", "weight", W, 3, 1, "head", "linear"),
    r"classifier\.bias": ("linear", "bias", 3, 0, 1, "head", "linear"),
})
EXPECTED["mistral"] = (mistral, EXPECTED["llama"][1])  # the same layout, MistralRMSNorm


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_every_parameter_class_has_its_kind_fans_and_role(family):
    build, classes = EXPECTED[family]
    model = build()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "no layer rule" warning
        layers = describe_model(model)
    assert {lay.name for lay in layers} == {n for n, _ in model.named_parameters()}
    seen = set()
    for lay in layers:
        matches = [p for p in classes if re.search(p, lay.name)]
        assert len(matches) == 1, (lay.name, matches)
        got = (lay.kind, lay.param_type, lay.fan_in, lay.fan_out, lay.blocks, lay.role,
               lay.nonlinearity)
        assert got == classes[matches[0]], lay.name
        seen.add(matches[0])
    assert seen == set(classes)  # every class was met


def test_albert_counts_a_shared_layers_branches_once_per_layer_it_serves():
    plan = ModelPlan.of(albert())
    calls = {lay.name.split(".albert_layers")[0][-1]: lay.calls for lay in plan.layers
             if lay.name.endswith("ffn_output.weight")}
    assert calls == {"0": 2, "1": 1}  # group 0 runs for layers 0 and 1, group 1 for layer 2
    assert plan.depth == 3 * 2 * 2  # layers x inner layers x branches (attention, MLP)


def test_gpt2_conv1d_is_initialized_in_its_in_out_layout_per_qkv_block():
    model = gpt2()
    apply_scheme(model, ModelPlan.of(model).uniform("orthogonal", seed=1))
    w = model.transformer.h[0].attn.c_attn.weight.detach()  # (in, 3 * out)
    for block in w.split(W, dim=1):
        assert torch.allclose(block.T @ block, torch.eye(W), atol=1e-4)
    assert model.lm_head.weight is model.transformer.wte.weight  # the tie is kept


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_model_default_is_the_models_own_init_and_reproducible(family):
    build = EXPECTED[family][0]
    model = build()
    plan = ModelPlan.of(model)
    assert plan.model_init
    scheme = plan.uniform("model_default", seed=5)
    first = {k: v.clone() for k, v in apply_scheme(model, scheme).state_dict().items()}
    other = apply_scheme(build(), scheme).state_dict()
    assert all(torch.equal(first[k], other[k]) for k in first)


def test_gpt2_model_default_draws_gpt2s_scaled_residual_init():
    model = gpt2()
    torch.nn.init.zeros_(model.transformer.h[0].mlp.c_proj.weight)
    apply_scheme(model, ModelPlan.of(model).uniform("model_default", seed=0))
    # GPT-2's _init_weights: N(0, 0.02) everywhere, 0.02 / sqrt(2 * n_layer) on c_proj
    std = model.transformer.h[0].mlp.c_proj.weight.std().item()
    assert 0.008 < std < 0.012
    assert 0.017 < model.transformer.h[0].mlp.c_fc.weight.std().item() < 0.023
    assert model.lm_head.weight is model.transformer.wte.weight


def test_model_default_is_a_baseline_only_for_models_with_their_own_init():
    space = SearchSpace()
    hf = ModelPlan.of(gpt2())
    assert "model_default" in space.choices(hf, "hidden.linear")
    assert set(baseline_params(hf, space, "model_default").values()) >= {"model_default", "default"}
    plain = ModelPlan.of(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(),
                                             torch.nn.Linear(4, 2)))
    assert not plain.model_init
    assert "model_default" not in space.choices(plain, "input.linear")


def test_roles_are_known_where_no_transformers_class_holds_a_parameter():
    """BertForSequenceClassification's parameters all sit in torch layers: the Hugging Face rules
    must load anyway, in a process that has met no other transformers model."""
    code = (
        "import transformers as T, autoinit\n"
        "c = T.BertConfig(num_hidden_layers=1, hidden_size=32, num_attention_heads=2,\n"
        "                 intermediate_size=64, vocab_size=64, max_position_embeddings=32)\n"
        "roles = {l.name: l.role for l in autoinit.describe_model(T.BertForSequenceClassification(c))}\n"
        "print(roles['bert.encoder.layer.0.attention.output.dense.weight'],\n"
        "      roles['bert.encoder.layer.0.output.dense.weight'])\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, check=True)
    assert run.stdout.split() == ["attn_out", "residual_out"]


def distilbert():
    return T.DistilBertForSequenceClassification(T.DistilBertConfig(
        vocab_size=V, dim=W, n_layers=1, n_heads=2, hidden_dim=FF, max_position_embeddings=32))


def gpt_neox():
    return T.GPTNeoXForCausalLM(T.GPTNeoXConfig(
        vocab_size=V, hidden_size=W, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=FF, max_position_embeddings=32))


def wav2vec2():
    return T.Wav2Vec2ForSequenceClassification(T.Wav2Vec2Config(
        vocab_size=V, hidden_size=W, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=FF, conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 4),
        num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, num_labels=2))


def gptj():
    return T.GPTJForCausalLM(T.GPTJConfig(vocab_size=V, n_embd=W, n_layer=1, n_head=2, rotary_dim=4))


def phi():
    return T.PhiForCausalLM(T.PhiConfig(vocab_size=V, hidden_size=W, intermediate_size=FF,
                                        num_hidden_layers=1, num_attention_heads=2))


def modernbert():
    return T.ModernBertForMaskedLM(T.ModernBertConfig(
        vocab_size=V, hidden_size=W, intermediate_size=FF, num_hidden_layers=1,
        num_attention_heads=2, pad_token_id=0, bos_token_id=1, eos_token_id=2, sep_token_id=2,
        cls_token_id=1))


def convnext():
    return T.ConvNextForImageClassification(T.ConvNextConfig(
        hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, num_labels=3))


def whisper():  # its encoder's convolutions are followed by F.gelu in its forward
    return T.WhisperForConditionalGeneration(T.WhisperConfig(
        vocab_size=V, num_mel_bins=8, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=FF, decoder_ffn_dim=FF, d_model=W,
        max_source_positions=16, max_target_positions=16, decoder_start_token_id=1, pad_token_id=0,
        bos_token_id=1, eos_token_id=2))


def clip():
    return T.CLIPModel(T.CLIPConfig(
        text_config={"vocab_size": V, "hidden_size": W, "intermediate_size": FF, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 16, "bos_token_id": 0,
                     "eos_token_id": 1, "pad_token_id": 1},
        vision_config={"hidden_size": W, "intermediate_size": FF, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "image_size": 16, "patch_size": 4},
        projection_dim=16))


def deberta_v2():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its module's torch.jit.script is deprecated
        return T.DebertaV2ForSequenceClassification(T.DebertaV2Config(
            vocab_size=V, hidden_size=W, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=FF, max_position_embeddings=32, num_labels=3))


@pytest.mark.parametrize("build, expected", [
    (clip, {"vision_model.embeddings.patch_embedding": ("input", "linear"),
            "visual_projection": ("head", "linear"), "text_projection": ("head", "linear")}),
    (deberta_v2, {"pooler.dense": ("hidden", "gelu")}),  # its pooler_hidden_act, not BERT's tanh
    (gptj, {"attn.out_proj": ("attn_out", "linear"), "fc_in": ("hidden", "gelu"),
            "fc_out": ("residual_out", "linear")}),
    (phi, {"self_attn.dense": ("attn_out", "linear"), "fc2": ("residual_out", "linear")}),
    (modernbert, {"attn.Wo": ("attn_out", "linear"), "mlp.Wo": ("residual_out", "linear")}),
    (convnext, {"stages.0.layers.0.pwconv1": ("hidden", "gelu"),
                "stages.0.layers.0.pwconv2": ("residual_out", "linear")}),
    (wav2vec2, {"attention.out_proj": ("attn_out", "linear"),
                "intermediate_dense": ("hidden", "gelu"), "output_dense": ("residual_out", "linear"),
                "conv_layers.0.conv": ("input", "gelu"), "conv_layers.1.conv": ("hidden", "gelu")}),
    (whisper, {"encoder.conv1": ("input", "gelu"), "encoder.conv2": ("hidden", "gelu")}),
    (distilbert, {"q_lin": ("attn_qkv", "linear"), "k_lin": ("attn_qkv", "linear"),
                  "v_lin": ("attn_qkv", "linear"), "out_lin": ("attn_out", "linear"),
                  "lin1": ("hidden", "gelu"), "lin2": ("residual_out", "linear")}),
    (gpt_neox, {"query_key_value": ("attn_qkv", "linear"), "attention.dense": ("attn_out", "linear"),
                "dense_h_to_4h": ("hidden", "gelu"), "dense_4h_to_h": ("residual_out", "linear")}),
])
def test_blocks_named_each_models_way_have_their_roles(build, expected):
    roles = {lay.module_name: (lay.role, lay.nonlinearity) for lay in describe_model(build())}
    for suffix, role in expected.items():
        assert [r for m, r in roles.items() if m.endswith(suffix)] == [role], suffix


def mixtral():
    return T.MixtralForCausalLM(T.MixtralConfig(
        vocab_size=V, hidden_size=W, intermediate_size=48, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, num_local_experts=4, num_experts_per_tok=2))


def gpt_oss():
    return T.GptOssForCausalLM(T.GptOssConfig(
        vocab_size=V, hidden_size=W, intermediate_size=48, num_hidden_layers=1, head_dim=16,
        num_attention_heads=2, num_key_value_heads=1, num_local_experts=4,
        layer_types=["full_attention"]))


@pytest.mark.parametrize("build, layout", [(mixtral, "experts"), (gpt_oss, "experts_in_out")])
def test_experts_stacked_matrices_have_fans_and_draws_per_expert(build, layout):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GPT-OSS's config warns of its RoPE scaling
        model = build()
    specs = {lay.local_name: lay for lay in describe_model(model) if "experts" in lay.name}
    up, down = specs["gate_up_proj"], specs["down_proj"]
    assert (up.fan_in, up.fan_out, up.blocks, up.layout, up.role) == (W, 96, 4, layout, "hidden")
    assert (down.fan_in, down.fan_out, down.blocks, down.layout, down.role) == (
        48, W, 4, layout, "residual_out")
    apply_scheme(model, ModelPlan.of(model).uniform("orthogonal"))
    experts = model.model.layers[0].mlp.experts.down_proj.detach()
    for matrix in experts if layout == "experts" else experts.transpose(1, 2):  # (out, in) each
        torch.testing.assert_close(matrix @ matrix.T, torch.eye(W), atol=1e-4, rtol=0)


def test_a_mamba_mixers_structured_tensors_are_left_alone():
    model = T.MambaForCausalLM(T.MambaConfig(vocab_size=V, hidden_size=W, state_size=4,
                                             num_hidden_layers=1))
    mixer = model.backbone.layers[0].mixer
    a_log, d = mixer.A_log.detach().clone(), mixer.D.detach().clone()
    roles = {lay.name: lay.role for lay in describe_model(model)}
    assert "backbone.layers.0.mixer.A_log" not in roles
    assert roles["backbone.layers.0.mixer.out_proj.weight"] == "residual_out"
    apply_scheme(model, ModelPlan.of(model).uniform("xavier_normal"))
    assert torch.equal(mixer.A_log, a_log) and torch.equal(mixer.D, d)


def test_rwkv_time_mixing_is_left_alone_and_an_lm_heads_bias_is_known():
    rwkv = T.RwkvForCausalLM(T.RwkvConfig(vocab_size=V, hidden_size=W, num_hidden_layers=2,
                                          attention_hidden_size=W, intermediate_size=FF,
                                          context_length=16))
    assert not [lay.name for lay in describe_model(rwkv) if ".time_" in lay.name]
    roberta = T.RobertaForMaskedLM(T.RobertaConfig(vocab_size=V, hidden_size=W, num_hidden_layers=1,
                                                   num_attention_heads=2, intermediate_size=FF,
                                                   max_position_embeddings=32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 'no layer rule' warning
        bias = [lay for lay in describe_model(roberta) if lay.name == "lm_head.bias"]
    assert [(b.param_type, b.role, b.known) for b in bias] == [("bias", "head", True)]


def test_gemmas_unit_offset_norms_are_given_gains_not_weights():
    gemma = T.GemmaForCausalLM(T.GemmaConfig(num_hidden_layers=2, hidden_size=W, num_attention_heads=2,
                                             num_key_value_heads=1, head_dim=16, intermediate_size=FF,
                                             vocab_size=V, max_position_embeddings=32))
    apply_scheme(gemma, ModelPlan.of(gemma).uniform("pytorch_default", seed=1))
    assert torch.equal(gemma.model.norm.weight.detach(), torch.zeros(W))  # x·(1 + 0)
    model = llama()  # x·w: its gains stay ones
    apply_scheme(model, ModelPlan.of(model).uniform("pytorch_default", seed=1))
    assert torch.equal(model.model.norm.weight.detach(), torch.ones(W))


def test_a_vision_models_own_init_is_queued_before_the_dcgan_preset():
    """Six trials hold the five baselines and one more: a model's own init, not dcgan's rule."""
    g = torch.Generator().manual_seed(0)
    batches = [{"pixel_values": torch.randn(4, 3, 16, 16, generator=g),
                "labels": torch.randint(0, 3, (4,), generator=g)} for _ in range(3)]
    result = autoinit.fit(vit(), batches, n_trials=6, probe_steps=2, mlflow=False,
                          selection=autoinit.Selection(seeds=0), population=1, threads=1)
    assert "model_default" in result.baselines and "dcgan" not in result.baselines
