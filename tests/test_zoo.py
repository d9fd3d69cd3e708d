"""The model zoo (``scripts/zoo.py``): every model's plan meets what a reader expects, every
preset's scheme replays bit for bit from JSON and keeps tied, frozen and padding tensors, a
narrower copy's schemes transfer, and a tiny search on the models with such tensors replays."""

from __future__ import annotations

import functools
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import zoo  # noqa: E402

from autoinit.plan import ModelPlan  # noqa: E402

ENTRIES = {entry.name: entry for entry in zoo.ZOO}


@functools.cache
def plan(name: str) -> ModelPlan:
    return zoo.plan_of(zoo.fresh(ENTRIES[name]))


@functools.cache
def facts(name: str) -> dict[str, object]:
    return zoo.observed(plan(name))


@pytest.mark.parametrize(("name", "key"), [
    pytest.param(entry.name, key, id=f"{entry.name}: {key}")
    for entry in zoo.ZOO for key in zoo.expectations(entry.expect)])
def test_the_plan_meets_the_readers_expectation(name, key):
    expected = zoo.expectations(ENTRIES[name].expect)[key]
    assert zoo.observe(facts(name), key) == expected, f"{name}: {key}"


@pytest.mark.parametrize(("name", "preset"), [
    pytest.param(entry.name, preset, id=f"{entry.name}: {preset}")
    for entry in zoo.ZOO for preset in entry.expect.presets])
def test_a_presets_scheme_replays_from_json_bit_for_bit_and_keeps_tied_frozen_and_padding(
        name, preset):
    assert zoo.check_preset(ENTRIES[name], plan(name), preset) == [], f"{name}: {preset}"


@pytest.mark.parametrize("name", list(ENTRIES))
def test_schemes_of_a_narrower_copy_transfer_as_expected(name):
    detail, misses = zoo.check_transfer(ENTRIES[name])
    assert misses == [], f"{name}: {detail}"


@pytest.mark.parametrize("name", ["nanogpt", "frozen_backbone", "padding_embedding", "lazy",
                                  "weight_spectral_norm"])
def test_a_tiny_search_replays_from_json_and_keeps_tied_frozen_and_padding(name):
    _, misses = zoo.check_fit(ENTRIES[name], n_trials=6, probe_steps=2)
    assert misses == [], name


def test_a_plan_that_misses_an_expectation_is_reported_by_name():
    entry = ENTRIES["bn_resnet"]
    wrong = replace(entry, expect=replace(entry.expect, depth=2, roles={"fc.weight": "hidden"}))
    assert zoo.check_plan(wrong, zoo.fresh(wrong))[1] == ["depth: 3 != 2",
                                                          "role of fc.weight: head != hidden"]


def test_the_checks_see_one_flipped_bit_an_untied_table_a_changed_frozen_weight_and_padding():
    model = zoo.fresh(ENTRIES["nanogpt"])
    before = zoo.state(model)
    with torch.no_grad():
        flat = model.transformer.wpe.weight.view(-1).view(torch.int32)
        flat[0] ^= 1  # the lowest bit of one weight
    assert zoo.differing(before, zoo.state(model)) == ["transformer.wpe.weight"]
    model.lm_head.weight = nn.Parameter(model.lm_head.weight.detach().clone())
    assert zoo.guarantee_failures(ENTRIES["nanogpt"], model, before) == [
        "transformer.wte.weight and lm_head.weight no longer tied"]
    frozen, padded = zoo.fresh(ENTRIES["frozen_backbone"]), zoo.fresh(ENTRIES["padding_embedding"])
    frozen_before, padded_before = zoo.state(frozen), zoo.state(padded)
    with torch.no_grad():
        frozen.backbone[0].weight.add_(1.0)
        padded.emb.weight[0] = 1.0
    assert zoo.guarantee_failures(ENTRIES["frozen_backbone"], frozen, frozen_before) == [
        "frozen backbone.0.weight changed"]
    assert zoo.guarantee_failures(ENTRIES["padding_embedding"], padded, padded_before) == [
        "emb padding row not zero"]


def test_a_model_that_raises_without_a_message_is_reported_as_a_crash_row():
    def broken(width: int) -> nn.Module:
        raise KeyError()

    row = zoo.run_entry(replace(ENTRIES["lazy"], name="broken", build=broken), fit=False)
    assert row.crash == "plan: KeyError: (no message)" and row.cells()[1] == "CRASH"
