"""The lean LM-head path reproduces ``model(...).logits`` per architecture (issue 10, item 3).

Reference: the per-sample NLL from the model's own full logits, ``stats_from_logits(model(...).logits)``. The lean
path (decoder output → output embedding at answer positions → the architecture's post-processing) must match it
to 1e-5 on tiny random models whose soft-cap / logit scale are set so that skipping them changes the NLL by far
more than that. Architectures outside :mod:`baldro.core.lm_head` fall back to full logits with one warning.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import transformers

from baldro.core import lm_head as lm_head_mod
from baldro.core.lm_head import POST_PROCESSING, LogitHead
from baldro.core.sequence import (
    IGNORE_INDEX,
    _capture_decoder_output,
    _forward_kwargs,
    answer_positions,
    answer_token_kl,
    final_hidden_states,
    model_sequence_stats,
    output_head,
    position_ids_from_mask,
    stats_from_hidden,
    stats_from_logits,
)
from baldro.evaluation.scoring import score_batch

from .tiny_configs import REQUIRED, tiny_config, tiny_model

VOCAB = 64


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two right-padded rows (the second has 3 padding positions), prompt = first 4 tokens."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (2, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, -3:] = 0
    labels = ids.clone()
    labels[:, :4] = IGNORE_INDEX
    labels[1, -3:] = IGNORE_INDEX
    return ids, mask, labels


def logits_nll(model, ids, mask, labels) -> torch.Tensor:
    kwargs = {}
    if "position_ids" in model.forward.__code__.co_varnames:
        kwargs["position_ids"] = position_ids_from_mask(mask)
    with torch.no_grad():
        return stats_from_logits(model(input_ids=ids, attention_mask=mask, use_cache=False, **kwargs).logits, labels)


def head_only_nll(model, ids, mask, labels) -> torch.Tensor:
    """The old lean path: ``get_output_embeddings()`` alone, no post-processing."""
    with torch.no_grad(), _capture_decoder_output(model) as captured:
        model(input_ids=ids, attention_mask=mask, use_cache=False, **_forward_kwargs(model, mask))
        return stats_from_hidden(captured["hidden"], labels, model.get_output_embeddings()).nll_sum


@pytest.mark.parametrize("name", REQUIRED)
def test_lean_nll_equals_logits_nll(name):
    model = tiny_model(name)
    ids, mask, labels = batch()
    head = output_head(model)  # the lean path, not the fallback (identity on full logits)
    assert head is model.get_output_embeddings() or isinstance(head, LogitHead)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.no_grad():
            lean = model_sequence_stats(model, ids, labels, mask)
    ref = logits_nll(model, ids, mask, labels)
    torch.testing.assert_close(lean.nll_sum, ref.nll_sum, atol=1e-5, rtol=0)
    torch.testing.assert_close(lean.token_nll, ref.token_nll, atol=1e-5, rtol=0)
    if name in POST_PROCESSING:  # the post-processing matters on these configs: the head alone is far off
        assert float((head_only_nll(model, ids, mask, labels) - ref.nll_sum).abs().max()) > 0.1


@pytest.mark.parametrize("name", ["Gemma2ForCausalLM", "CohereForCausalLM", "GraniteForCausalLM"])
def test_evaluation_scores_use_the_post_processed_head(name):
    model = tiny_model(name)
    ids, mask, labels = batch(1)
    rows_ids = [ids[r][mask[r].bool()].tolist() for r in range(2)]
    rows_labels = [labels[r][mask[r].bool()].tolist() for r in range(2)]
    scores = score_batch(model, rows_ids, rows_labels, pad_id=0)
    ref = logits_nll(model, ids, mask, labels)
    got = torch.tensor([-float(s.token_logprobs.sum()) for s in scores])
    torch.testing.assert_close(got, ref.nll_sum, atol=1e-4, rtol=0)


class ScaledLlama(transformers.LlamaForCausalLM):
    """A 'remote-code' model: its forward halves the logits after the head, which the lean path cannot know."""

    def forward(self, *args, **kwargs):
        out = super().forward(*args, **kwargs)
        out.logits = out.logits / 2
        return out


def test_unknown_architecture_falls_back_to_logits_with_one_warning(monkeypatch):
    monkeypatch.setattr(lm_head_mod, "_warned", set())
    torch.manual_seed(0)
    model = ScaledLlama(tiny_config("LlamaForCausalLM")).eval()
    ids, mask, labels = batch(2)
    with pytest.warns(UserWarning, match="ScaledLlama: the lean LM-head path is not verified"), torch.no_grad():
        got = model_sequence_stats(model, ids, labels, mask).nll_sum
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per class
        with torch.no_grad():
            again = model_sequence_stats(model, ids, labels, mask).nll_sum
    ref = logits_nll(model, ids, mask, labels).nll_sum
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(again, ref, atol=1e-5, rtol=0)
    assert float((head_only_nll(model, ids, mask, labels) - ref).abs().max()) > 0.1


def test_fallback_feeds_the_kl_path_with_full_logits():
    """For an unlisted class the 'hidden' features are the logits and the head is the identity, so the answer-token
    KL (retain term ``kl``) is the KL of the model's own next-token distributions."""
    torch.manual_seed(0)
    model, other = (ScaledLlama(tiny_config("LlamaForCausalLM")).eval() for _ in range(2))
    ids, mask, labels = batch(3)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        feats, other_feats = final_hidden_states(model, ids, mask), final_hidden_states(other, ids, mask)
        assert feats.shape[-1] == VOCAB
        got = answer_token_kl(feats, other_feats, labels, output_head(model), output_head(other))
        rows, cols, _ = answer_positions(labels)
        logp = model(input_ids=ids, attention_mask=mask).logits[rows, cols].log_softmax(-1)
        ref_logp = other(input_ids=ids, attention_mask=mask).logits[rows, cols].log_softmax(-1)
    want = (ref_logp.exp() * (ref_logp - logp)).sum(-1)
    assert float(want.min()) > 1e-3
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_architectures_lean_and_fallback_are_disjoint_from_unverified_heads():
    """BERT-style decoders call a dense+norm block before the output embedding: they must not be listed as lean."""
    listed = set(lm_head_mod.PLAIN) | set(POST_PROCESSING)
    for name in ("RobertaForCausalLM", "BertLMHeadModel", "MiniCPM3ForCausalLM", "InklingForCausalLM"):
        assert name not in listed
    for name in REQUIRED:
        assert name in listed


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(lm_head_mod.PLAIN | set(POST_PROCESSING)))
def test_every_listed_architecture_matches_its_logits(name):
    """Every class the lean path accepts, on a tiny random config: lean NLL = NLL of model(...).logits."""
    model = tiny_model(name)
    ids, mask, labels = batch()
    with torch.no_grad():
        lean = model_sequence_stats(model, ids, labels, mask)
    torch.testing.assert_close(lean.token_nll, logits_nll(model, ids, mask, labels).token_nll, atol=1e-5, rtol=0)
