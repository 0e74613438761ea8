"""Reference log-likelihoods in the training step's numeric context (issue 10, item 2).

With float32 weights and ``bf16=True`` accelerate runs the policy's ``forward`` under bf16 autocast. The cached
reference (NPO) and the ``kl`` retain term's reference model must run under the same autocast: then at lr = 0 the
policy *is* the reference, so the NPO log-ratio is 0 (loss (2/β)·log 2) and the KL is 0 — to float rounding, not
to bf16 rounding. Only bf16 is tested: accelerate has no fp16 autocast on CPU (``native_amp`` stays off there).
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from baldro.core.sequence import answer_positions, answer_token_kl
from baldro.training import loss_inputs as loss_inputs_mod
from baldro.training.trainer import UnlearnTrainer

from .tiny import ListDataset, PadTokenizer, args, qa_items, tiny_llama

BETA = 0.1


def _bf16_trainer(tmp_path, model, precision="bf16", **kw):
    return UnlearnTrainer(
        model=model,
        args=args(tmp_path, learning_rate=0.0, max_steps=2, **{precision: True}),
        forget_dataset=ListDataset(qa_items(8, seed=1)),
        retain_dataset=ListDataset(qa_items(12, seed=2)),
        processing_class=PadTokenizer(),
        **kw,
    )


def _spy(trainer, name, record):
    original = getattr(trainer, name)

    def wrapped(*a, **kw):
        out = original(*a, **kw)
        record(out)
        return out

    setattr(trainer, name, wrapped)


# fp16 on CPU: accelerate keeps native_amp off (no fp16 autocast there), so training and reference both run in float32
@pytest.mark.parametrize(("precision", "autocast"), [("bf16", True), ("fp16", False)])
def test_npo_log_ratio_is_zero_at_lr0_under_mixed_precision(tmp_path, precision, autocast):
    model = tiny_llama()
    assert next(model.parameters()).dtype == torch.float32
    trainer = _bf16_trainer(tmp_path, model, precision, objective={"name": "npo", "beta": BETA}, retain=None)
    assert trainer.accelerator.native_amp is autocast  # bf16: the training forward really runs under autocast
    ratios, losses = [], []
    _spy(trainer, "forget_inputs", lambda fi: ratios.append((fi.stats.logp_sum - fi.ref_logp).detach()))
    _spy(trainer, "compute_loss", lambda total: losses.append(float(total.detach())))
    trainer.train()
    assert len(ratios) == 2 and len(losses) == 2
    log_ratio = torch.cat(ratios)
    assert float(log_ratio.abs().max()) < 1e-6, log_ratio
    for loss in losses:
        assert abs(loss - (2 / BETA) * math.log(2)) < 1e-5


def test_kl_reference_model_runs_in_the_policy_precision_at_lr0(tmp_path, monkeypatch):
    """The KL is second order in the logit difference (bf16 noise of ~1e-3 gives KL ~1e-7), so the test compares
    the two next-token log-distributions themselves, first order, besides the KL."""
    model = tiny_llama()
    trainer = _bf16_trainer(tmp_path, model, objective="ga", retain="kl", reference_model=copy.deepcopy(model))
    gaps, kls = [], []

    def spy(hidden, ref_hidden, labels, head, ref_head, chunk_tokens):
        rows, cols, _ = answer_positions(labels)
        logp = F.log_softmax(head(hidden[rows, cols]).float(), dim=-1)
        ref_logp = F.log_softmax(ref_head(ref_hidden[rows, cols]).float(), dim=-1)
        gaps.append(float((logp - ref_logp).detach().abs().max()))
        kls.append(answer_token_kl(hidden, ref_hidden, labels, head, ref_head, chunk_tokens).detach())
        return kls[-1]

    monkeypatch.setattr(loss_inputs_mod, "answer_token_kl", spy)
    trainer.train()
    assert len(gaps) == 2 and torch.cat(kls).numel() > 0
    assert max(gaps) < 1e-6, gaps
    assert float(torch.cat(kls).abs().max()) < 1e-9


def test_forward_context_is_a_noop_without_mixed_precision(tmp_path):
    trainer = UnlearnTrainer(
        model=tiny_llama(),
        args=args(tmp_path),
        forget_dataset=ListDataset(qa_items(4, seed=1)),
        processing_class=PadTokenizer(),
        objective="npo",
    )
    assert not trainer.accelerator.native_amp
    with trainer._forward_context():
        assert not torch.is_autocast_enabled("cpu")
