"""Registries: components build from config strings; unknown names and parameters are clear ValueErrors."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from baldro import aggregators, objectives, retain
from baldro.core.registry import Registry
from baldro.core.sequence import IGNORE_INDEX, model_sequence_stats
from baldro.retain import RetainInputs


def test_build_from_config_strings():
    npo = objectives.build("npo", beta=0.1)
    assert type(npo).__name__ == "NPO" and npo.beta == 0.1
    dv = aggregators.build("dv", beta=2)
    assert dv.beta == 2 and dv.sign == "paper"
    assert type(retain.build("nll")).__name__ == "RetainNLL"


def test_registered_names():
    assert objectives.names() == sorted(["ga", "npo", "simnpo", "satimp", "wga", "idk_nll", "idk_dpo"])
    assert aggregators.names() == sorted(["mean", "group", "dv", "kl_radius", "chi2"])
    assert retain.names() == ["kl", "nll"]


@pytest.mark.parametrize(
    ("module", "name", "listed"),
    [
        (objectives, "npoo", "ga, idk_dpo, idk_nll, npo, satimp, simnpo, wga"),
        (aggregators, "DV", "chi2, dv, group, kl_radius, mean"),
        (retain, "mse", "kl, nll"),
    ],
)
def test_unknown_names_list_the_known_ones(module, name, listed):
    with pytest.raises(ValueError, match=f"unknown .*{name!r}.*known: {listed}"):
        module.build(name)


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ValueError, match="did you mean 'simnpo'"):
        objectives.build("simpo")


@pytest.mark.parametrize(
    ("module", "name", "params", "allowed"),
    [
        (objectives, "npo", {"bta": 0.1}, "beta"),
        (objectives, "satimp", {"beta": 1.0}, "beta1, beta2, granularity"),
        (objectives, "ga", {"beta": 1.0}, "none"),
        (aggregators, "kl_radius", {"beta": 1.0}, "rho"),
        (retain, "nll", {"weight": 1.0}, "reduction"),
    ],
)
def test_unknown_parameters_list_the_allowed_ones(module, name, params, allowed):
    key = next(iter(params))
    with pytest.raises(ValueError, match=f"{name!r} has no parameter {key!r}; allowed parameters: {allowed}"):
        module.build(name, **params)


@pytest.mark.parametrize("module", [objectives, aggregators, retain])
def test_every_component_builds_with_defaults_and_round_trips_its_config(module):
    for name in module.names():
        component = module.build(name)
        assert module.build(name, **component.config()) == component


def test_adding_a_component_is_one_registration():
    registry: Registry[object] = Registry("widget")

    @registry.register("twice")
    @dataclass
    class Twice:
        factor: float = 2.0

    assert registry.names() == ["twice"]
    assert registry.build("twice", factor=3.0).factor == 3.0
    with pytest.raises(ValueError, match="unknown widget 'thrice'"):
        registry.build("thrice")
    # a plain annotation is checked as strictly as ours, and the schema takes the field from the class
    with pytest.raises(ValueError, match=r"invalid factor='3': must be a number"):
        registry.build("twice", factor="3")
    schema = registry.spec("twice").model_json_schema()
    assert schema["properties"]["factor"] == {"default": 2.0, "title": "Factor", "type": "number"}
    assert schema["properties"]["name"]["const"] == "twice" and schema["additionalProperties"] is False


@pytest.mark.parametrize("side", ["left", "right"])
def test_retain_nll_equals_hf_batch_loss(tiny_llama, side):
    g = torch.Generator().manual_seed(4)
    lengths, prompts = [7, 4, 10], [3, 1, 5]
    width = max(lengths)
    input_ids = torch.zeros((3, width), dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    for b, (n, p) in enumerate(zip(lengths, prompts)):
        where = slice(0, n) if side == "right" else slice(width - n, width)
        ids = torch.randint(3, 97, (n,), generator=g)
        lab = ids.clone()
        lab[:p] = IGNORE_INDEX
        input_ids[b, where], mask[b, where], labels[b, where] = ids, 1, lab
    with torch.no_grad():
        hf_loss = tiny_llama(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        stats = model_sequence_stats(tiny_llama, input_ids, labels, mask)
    value = retain.build("nll").loss(RetainInputs(stats))
    assert float(value) == pytest.approx(float(hf_loss), abs=1e-5)
    # the batch token mean differs from the mean of per-sample means when answer lengths differ
    assert abs(float(stats.nll_mean.mean()) - float(value)) > 1e-4


def test_retain_kl_averages_over_answer_tokens(make_stats):
    stats = make_stats([[0.5, 0.5, 0.5], [0.5]])
    token_kl = torch.tensor([0.1, 0.2, 0.3, 0.6], dtype=torch.float64)
    term = retain.build("kl")
    assert term.needs_reference_logits and not retain.build("nll").needs_reference_logits
    assert float(term.loss(RetainInputs(stats, token_kl=token_kl)).detach()) == pytest.approx(1.2 / 4, abs=1e-12)
    assert term.per_sample(RetainInputs(stats, token_kl=token_kl)).tolist() == pytest.approx([0.2, 0.6], abs=1e-12)
    with pytest.raises(ValueError, match="token_kl"):
        term.loss(RetainInputs(stats))


def test_retain_nll_per_sample_is_token_mean(make_stats):
    stats = make_stats([[1.0, 2.0, 3.0], [4.0]])
    term = retain.build("nll")
    assert float(term.loss(RetainInputs(stats)).detach()) == pytest.approx(10.0 / 4, abs=1e-12)
    assert term.per_sample(RetainInputs(stats)).tolist() == pytest.approx([2.0, 4.0], abs=1e-12)


@pytest.mark.parametrize(
    ("module", "name", "params", "pattern"),
    [
        (aggregators, "dv", {"beta": "2"}, r"invalid beta='2': must be a number"),
        (aggregators, "group", {"ratio": True}, r"invalid ratio=True: must be a number"),
        (aggregators, "dv", {"sign": 1}, r"invalid sign=1: must be a string"),
        (objectives, "satimp", {"granularity": None}, r"invalid granularity=None"),
    ],
)
def test_wrongly_typed_parameters_are_value_errors(module, name, params, pattern):
    with pytest.raises(ValueError, match=pattern):
        module.build(name, **params)


def test_numpy_and_int_numbers_are_accepted():
    import numpy as np

    assert aggregators.build("dv", beta=np.float32(0.5)).beta == 0.5
    assert aggregators.build("dv", beta=2).beta == 2
    assert aggregators.build("kl_radius", rho=np.float64(0.2)).rho == 0.2
