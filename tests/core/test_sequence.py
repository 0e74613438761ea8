"""Per-sample sequence statistics against Hugging Face's own loss, on a tiny random Llama (issue 2, §2–3).

HF's ``model(input_ids, labels=...).loss`` of one sample alone (no padding) is the reference: the token-mean NLL of
its answer. Both of our paths must reproduce it for every sample of a padded batch, left or right padded, to 1e-5.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from baldro.core.sequence import (
    IGNORE_INDEX,
    SequenceStats,
    answer_token_kl,
    final_hidden_states,
    model_sequence_stats,
    output_head,
    position_ids_from_mask,
    stats_from_hidden,
    stats_from_logits,
)

# (prompt length, total length) per sample; answers are the tokens after the prompt
SHAPES = [(2, 6), (4, 11), (1, 4), (3, 9)]
PAD = 0


def samples(seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for prompt, total in SHAPES:
        ids = torch.randint(3, 97, (total,), generator=g)
        labels = ids.clone()
        labels[:prompt] = IGNORE_INDEX
        out.append((ids, labels))
    return out


def pad_batch(items, side: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(len(ids) for ids, _ in items)
    input_ids = torch.full((len(items), width), PAD, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for b, (ids, lab) in enumerate(items):
        where = slice(0, len(ids)) if side == "right" else slice(width - len(ids), width)
        input_ids[b, where], labels[b, where], mask[b, where] = ids, lab, 1
    return input_ids, mask, labels


def hf_per_sample(model, items) -> torch.Tensor:
    with torch.no_grad():
        return torch.stack([model(input_ids=ids[None], labels=lab[None]).loss for ids, lab in items])


@pytest.fixture(scope="module")
def items():
    return samples()


@pytest.mark.parametrize("side", ["left", "right"])
def test_logits_path_matches_hf_sample_by_sample(tiny_llama, items, side):
    input_ids, mask, labels = pad_batch(items, side)
    with torch.no_grad():
        logits = tiny_llama(input_ids=input_ids, attention_mask=mask, position_ids=position_ids_from_mask(mask)).logits
    stats = stats_from_logits(logits, labels)
    reference = hf_per_sample(tiny_llama, items)
    assert torch.allclose(stats.nll_mean, reference, atol=1e-5)
    assert stats.n_tokens.tolist() == [total - prompt for prompt, total in SHAPES]
    assert stats.token_nll.dtype == torch.float32


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("chunk_tokens", [1, 5, 1024])
def test_lean_path_matches_hf_sample_by_sample(tiny_llama, items, side, chunk_tokens):
    input_ids, mask, labels = pad_batch(items, side)
    with torch.no_grad():
        stats = model_sequence_stats(tiny_llama, input_ids, labels, mask, chunk_tokens=chunk_tokens)
    assert torch.allclose(stats.nll_mean, hf_per_sample(tiny_llama, items), atol=1e-5)


def test_reference_is_not_trivially_uniform(tiny_llama, items):
    """Guard: the test model's NLLs differ across samples, so the comparisons above can detect a mix-up."""
    reference = hf_per_sample(tiny_llama, items)
    assert float(reference.max() - reference.min()) > 0.1


@pytest.mark.parametrize("side", ["left", "right"])
def test_lean_and_logits_paths_agree_in_value_and_parameter_gradient(tiny_llama, items, side):
    input_ids, mask, labels = pad_batch(items, side)
    params = [p for p in tiny_llama.parameters() if p.requires_grad]
    weights = torch.tensor([0.1, 0.4, 0.2, 0.3])

    lean = model_sequence_stats(tiny_llama, input_ids, labels, mask, chunk_tokens=7)
    lean_grads = torch.autograd.grad((weights * lean.nll_mean).sum() + lean.nll_sum.sum() * 0.01, params)

    logits = tiny_llama(input_ids=input_ids, attention_mask=mask, position_ids=position_ids_from_mask(mask)).logits
    full = stats_from_logits(logits, labels)
    full_grads = torch.autograd.grad((weights * full.nll_mean).sum() + full.nll_sum.sum() * 0.01, params)

    assert torch.equal(lean.sample_index, full.sample_index) and torch.equal(lean.n_tokens, full.n_tokens)
    assert torch.allclose(lean.token_nll, full.token_nll, atol=1e-5)
    assert any(float(g.abs().max()) > 0 for g in lean_grads)
    for a, b in zip(lean_grads, full_grads):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)


def test_stats_from_hidden_equals_model_sequence_stats(tiny_llama, items):
    input_ids, mask, labels = pad_batch(items, "left")
    with torch.no_grad():
        hidden = final_hidden_states(tiny_llama, input_ids, mask)
        direct = stats_from_hidden(hidden, labels, output_head(tiny_llama), chunk_tokens=3)
        via_model = model_sequence_stats(tiny_llama, input_ids, labels, mask)
    assert hidden.shape == (*input_ids.shape, tiny_llama.config.hidden_size)
    assert torch.allclose(direct.token_nll, via_model.token_nll, atol=1e-6)


def test_lean_path_never_passes_labels_and_keeps_one_logit(tiny_llama, items):
    """The model's own head call sees the last position only ([B, 1, H]: no [B, T, V] logits); the forward returns the
    per-token NLL as its logits (computed inside the head's forward, so engines that hook outputs see it)."""
    input_ids, mask, labels = pad_batch(items, "right")
    seen: dict[str, object] = {}

    def pre_hook(_module, args, kwargs):
        seen["args"], seen["kwargs"] = args, dict(kwargs)

    def post_hook(_module, _args, _kwargs, output):
        seen["logits"] = output.logits
        seen["loss"] = output.loss

    head_inputs: list[tuple[int, ...]] = []
    handles = [
        tiny_llama.register_forward_pre_hook(pre_hook, with_kwargs=True),
        tiny_llama.register_forward_hook(post_hook, with_kwargs=True),
        tiny_llama.lm_head.register_forward_pre_hook(lambda _m, a: head_inputs.append(tuple(a[0].shape))),
    ]
    try:
        with torch.no_grad():
            stats = model_sequence_stats(tiny_llama, input_ids, labels, mask)
    finally:
        for handle in handles:
            handle.remove()
    assert seen["kwargs"].get("labels") is None and all(a is not labels for a in seen["args"])
    assert seen["loss"] is None  # the model computed no loss of its own
    assert head_inputs == [(len(items), 1, tiny_llama.config.hidden_size)]  # no [B, T, V] logits
    assert seen["logits"] is stats.token_nll


def test_no_attention_mask_means_no_padding(tiny_llama):
    ids, lab = samples(seed=3)[1]
    with torch.no_grad():
        stats = model_sequence_stats(tiny_llama, ids[None], lab[None])
    assert torch.allclose(stats.nll_mean, hf_per_sample(tiny_llama, [(ids, lab)]), atol=1e-5)


def test_absolute_position_model_left_padding():
    """GPT-2 adds absolute position embeddings: left padding is only right when positions follow the mask."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=97,
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_positions=64,
        initializer_range=0.3,
        bos_token_id=1,
        eos_token_id=2,
    )
    model = GPT2LMHeadModel(config).eval()
    items = samples(seed=2)
    reference = hf_per_sample(model, items)
    for side in ("left", "right"):
        input_ids, mask, labels = pad_batch(items, side)
        with torch.no_grad():
            stats = model_sequence_stats(model, input_ids, labels, mask, chunk_tokens=4)
        assert torch.allclose(stats.nll_mean, reference, atol=1e-5), side


def test_position_ids_from_mask():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    assert position_ids_from_mask(mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 2, 2], [0, 1, 2, 3, 4]]


def test_peft_lora_model(tiny_llama, items):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(5)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "lm_head"], init_lora_weights=False)
    model = get_peft_model(copy.deepcopy(tiny_llama), lora).eval()
    head = output_head(model)
    assert type(head).__module__.startswith("peft"), "the LoRA-wrapped head module must be the one called"

    input_ids, mask, labels = pad_batch(items, "left")
    stats = model_sequence_stats(model, input_ids, labels, mask, chunk_tokens=6)
    reference = hf_per_sample(model, items)
    assert torch.allclose(stats.nll_mean.detach(), reference, atol=1e-5)
    assert not torch.allclose(reference, hf_per_sample(tiny_llama, items), atol=1e-3)  # LoRA changed the model

    stats.nll_mean.sum().backward()
    lora = {n: p.grad for n, p in model.named_parameters() if "lora_" in n}
    assert any("lm_head" in n for n in lora) and any("q_proj" in n for n in lora)
    assert all(g is not None and float(g.abs().max()) > 0 for g in lora.values())
    assert all(p.grad is None for n, p in model.named_parameters() if "lora_" not in n)


# ---- answer-token KL ----------------------------------------------------------------------------------------


def perturbed(model: torch.nn.Module, scale: float = 0.05) -> torch.nn.Module:
    other = copy.deepcopy(model)
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return other


def test_answer_token_kl_is_zero_for_the_same_model(tiny_llama, items):
    input_ids, mask, labels = pad_batch(items, "right")
    with torch.no_grad():
        hidden = final_hidden_states(tiny_llama, input_ids, mask)
        kl = answer_token_kl(hidden, hidden.clone(), labels, output_head(tiny_llama), output_head(tiny_llama), 4)
    n_answer = sum(total - prompt for prompt, total in SHAPES)
    assert kl.shape == (n_answer,)
    assert torch.allclose(kl, torch.zeros_like(kl), atol=1e-6)


@pytest.mark.parametrize("chunk_tokens", [3, 1024])
def test_answer_token_kl_equals_full_logit_kl(tiny_llama, items, chunk_tokens):
    reference = perturbed(tiny_llama)
    input_ids, mask, labels = pad_batch(items, "left")
    pos = position_ids_from_mask(mask)
    with torch.no_grad():
        hidden = final_hidden_states(tiny_llama, input_ids, mask)
        ref_hidden = final_hidden_states(reference, input_ids, mask)
        kl = answer_token_kl(hidden, ref_hidden, labels, output_head(tiny_llama), output_head(reference), chunk_tokens)
        logp = F.log_softmax(tiny_llama(input_ids=input_ids, attention_mask=mask, position_ids=pos).logits, -1)
        ref_logp = F.log_softmax(reference(input_ids=input_ids, attention_mask=mask, position_ids=pos).logits, -1)
    expected = []
    for b in range(labels.shape[0]):
        for t in range(1, labels.shape[1]):
            if labels[b, t] != IGNORE_INDEX:  # position t−1 predicts token t
                p_ref, lp, lp_ref = ref_logp[b, t - 1].exp(), logp[b, t - 1], ref_logp[b, t - 1]
                expected.append(float((p_ref * (lp_ref - lp)).sum()))
    assert kl.tolist() == pytest.approx(expected, abs=1e-5)
    assert min(expected) > 0


# ---- SequenceStats bookkeeping --------------------------------------------------------------------------------


def test_sequence_stats_sums_means_and_select():
    stats = SequenceStats(
        token_nll=torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]),
        sample_index=torch.tensor([0, 0, 2, 2, 2]),
        n_tokens=torch.tensor([2, 0, 3]),
        batch_size=3,
    )
    assert stats.nll_sum.tolist() == [3.0, 0.0, 12.0]
    assert stats.nll_mean.tolist() == [1.5, 0.0, 4.0]
    assert stats.logp_sum.tolist() == [-3.0, 0.0, -12.0]
    assert stats.token_mean(torch.tensor([1.0, 1.0, 0.0, 0.0, 3.0])).tolist() == [1.0, 0.0, 1.0]
    sub = stats.select(torch.tensor([2, 0]))
    assert sub.batch_size == 2 and sub.n_tokens.tolist() == [3, 2]
    assert sub.nll_sum.tolist() == [12.0, 3.0] and sub.nll_mean.tolist() == [4.0, 1.5]


def test_empty_answers_give_zero_tokens(tiny_llama):
    input_ids = torch.randint(3, 97, (2, 5))
    labels = torch.full((2, 5), IGNORE_INDEX)
    labels[1, 3:] = input_ids[1, 3:]
    with torch.no_grad():
        lean = model_sequence_stats(tiny_llama, input_ids, labels)
        full = stats_from_logits(tiny_llama(input_ids=input_ids).logits, labels)
    assert lean.n_tokens.tolist() == [0, 2] and full.n_tokens.tolist() == [0, 2]
    assert float(lean.nll_mean[0]) == 0.0
    assert torch.allclose(lean.nll_mean, full.nll_mean, atol=1e-5)
