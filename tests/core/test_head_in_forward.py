"""The lean head runs inside the head module's forward, where sharding engines hold its full weight, and its
per-token values are what the head's and the model's forwards return (so engines' output hooks see them)."""

from __future__ import annotations

import torch
from tests.core.test_sequence import pad_batch, samples
from torch import nn

from baldro.core.lm_head import architecture, unwrapped_class
from baldro.core.sequence import model_sequence_stats, stats_from_logits


class GatherInForward:
    """What ZeRO-3 does to a module, in miniature: outside its forward the weight is an empty placeholder; a
    forward pre-hook gathers it, a forward post-hook (registered first, as an engine's is) records the output it
    hooks and releases the weight."""

    def __init__(self, module: nn.Linear) -> None:
        self.full = module.weight.data.clone()
        self.outputs: list[torch.Tensor] = []
        self.module = module
        module.weight.data = torch.empty(0)
        self.handles = [module.register_forward_pre_hook(self.gather), module.register_forward_hook(self.release)]

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.module.weight.data = self.full

    def gather(self, module: nn.Module, _inputs: object) -> None:
        module.weight.data = self.full

    def release(self, module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        self.outputs.append(output)
        module.weight.data = torch.empty(0)


def test_head_with_a_gathered_weight_gives_the_plain_numbers_and_engines_see_the_values(tiny_llama):
    input_ids, mask, labels = pad_batch(samples(), "right")
    with torch.no_grad():
        expected = model_sequence_stats(tiny_llama, input_ids, labels, mask)
        full = stats_from_logits(tiny_llama(input_ids=input_ids, attention_mask=mask).logits, labels)
        engine = GatherInForward(tiny_llama.lm_head)
        try:
            got = model_sequence_stats(tiny_llama, input_ids, labels, mask)
            assert tiny_llama.lm_head.weight.numel() == 0  # the weight was released again after the forward
        finally:
            engine.remove()
    assert torch.equal(got.token_nll, expected.token_nll)  # the same bits as without the engine
    assert torch.allclose(got.nll_sum, full.nll_sum, atol=1e-4)
    # the engine's post-forward hook saw the per-token values the loss reads (its backward hooks would go there)
    assert len(engine.outputs) == 1 and engine.outputs[0] is got.token_nll


def test_gradients_flow_through_the_values_the_forward_returns(tiny_llama):
    input_ids, mask, labels = pad_batch(samples(), "right")
    stats = model_sequence_stats(tiny_llama, input_ids, labels, mask)
    stats.nll_sum.sum().backward()
    lean = {k: p.grad.clone() for k, p in tiny_llama.named_parameters()}
    tiny_llama.zero_grad()
    logits = tiny_llama(input_ids=input_ids, attention_mask=mask).logits
    stats_from_logits(logits, labels).nll_sum.sum().backward()
    for name, param in tiny_llama.named_parameters():
        assert torch.allclose(lean[name], param.grad, atol=1e-5), name


def test_architecture_looks_through_fsdp2s_in_place_class(tiny_llama):
    from torch.distributed.fsdp import FSDPModule
    from transformers import LlamaForCausalLM

    sharded = type("FSDPLlamaForCausalLM", (FSDPModule, LlamaForCausalLM), {})  # what fully_shard makes
    assert unwrapped_class(sharded) is LlamaForCausalLM
    tiny_llama.__class__ = sharded
    try:
        assert architecture(tiny_llama) == "LlamaForCausalLM"
    finally:
        tiny_llama.__class__ = LlamaForCausalLM
    other = type("MyShardedLlama", (FSDPModule, LlamaForCausalLM), {})  # not fully_shard's: not looked through
    assert unwrapped_class(other) is other
