"""One unlearning step under bf16 against the same step in float32: NPO with the mean, BalDRO-DV and BalDRO-G
aggregators, ``dro_scope`` micro and global, through ``UnlearnTrainer.train()`` (``training.bf16: true``: accelerate
wraps the forward in CPU autocast), with float32 weights (the tiny configs) and with weights stored in bf16 (the real
configs: ``model.dtype: bfloat16`` + ``bf16: true``, as open-unlearning trains).

Both runs start from the same weight *values* (float32 weights rounded to bf16 once), see the same batches (seeded
sampler) and the same reference log-likelihoods (a fixed cache: the float32 model's own plus offsets of a few nats,
so that the NPO losses differ by units: DV's weights are far from uniform and G's cut is clear). The random model's
LM head is scaled so that its logits have a real model's spread (standard deviation ≈ 10 nats, not 0.1): rounding
them to bf16 then costs what it costs in a real model. Tolerances: :mod:`tests.bf16.precision`.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field

import pytest
import torch
import torch.nn.functional as F
from tests.training.tiny import ListDataset, PadTokenizer, args, qa_items, tiny_llama
from transformers import TrainerCallback

from baldro.core.sequence import final_hidden_states, model_sequence_stats, output_head
from baldro.training.reference_cache import ReferenceCache
from baldro.training.trainer import UnlearnTrainer

from .precision import FLOAT32_REL, U, assert_bf16_close, grads_vector, max_relative, relative_l2

BETA_DV = 5.0
AGGREGATORS = {"npo": "mean", "npo+dv": {"name": "dv", "beta": BETA_DV}, "npo+g": {"name": "group", "ratio": 0.5}}
ACCUMULATION = {"micro": 1, "global": 2}  # global: the DRO weights span a window of two micro-batches (8 rows)
HEAD_SCALE = 100.0  # logits' standard deviation 0.11 → 11
OFFSETS = torch.tensor([2.13, -1.71, 0.37, -2.93, 1.29, -0.61, 2.71, -1.17])  # log π_ref − log π, nats
FORGET, RETAIN = qa_items(8, seed=1), qa_items(8, seed=2)

# Forward noise (bf16 against float32; see tests.bf16.precision). Per-sample NPO losses ℓ = −(2/β)·log σ(−β·r),
# r = log π − log π_ref, move by at most 2·|Δ log π|, and Δ log π is the forward's rounding: U relative on each
# logit (≈ 10 nats), partly cancelling over a row's tokens. Observed 1.2 U with float32 weights, 1.8–2.7 U with bf16
# weights (activations stored in bf16 too). Gradients pass through the forward's and the backward's bf16 products:
# observed 1.1–1.4 U with float32 weights, 3.0–3.9 U with bf16 weights (whose gradients are stored in bf16 too); DV
# adds its weights' error (w = softmax(ℓ/β) moves by up to 2·max|Δℓ|/β relative, which enters the gradient
# linearly): observed 3.3–3.8 U and 5.1–5.5 U in all. The bounds leave a margin of ~2×; the bugs they catch are of
# order 1 (wrong rows or weights, a missing retain term, a wrong accumulation scale). Precision leaks inside the
# U-sized noise are caught by the exact float32 checks (the loss algebra, the reference values, the LM head).
LOSS_REL = {"float32": 3 * U, "bfloat16": 6 * U}
GRAD_REL = {"float32": 3 * U, "bfloat16": 8 * U}
BETA_NPO = 0.1


@dataclass
class Step:
    """What one optimizer step saw: each aggregation's (indices, per-sample losses, weights) and the gradients."""

    records: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = field(default_factory=list)
    grads: dict[str, torch.Tensor] = field(default_factory=dict)
    native_amp: bool = False


class _Gradients(TrainerCallback):
    def __init__(self, step: Step) -> None:
        self.step = step

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.step.grads = {k: p.grad.detach().float().clone() for k, p in model.named_parameters() if p.grad is not None}


@functools.cache
def _initial() -> torch.nn.Module:
    model = tiny_llama(seed=0)
    with torch.no_grad():
        model.lm_head.weight.mul_(HEAD_SCALE)
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).float())  # the same values in float32 and in bf16
    return model


@functools.cache
def _reference() -> ReferenceCache:
    """log π_ref = the float32 model's own log π(answer) + OFFSETS."""
    from baldro.data.collate import UnlearnCollator

    batch = UnlearnCollator(PadTokenizer())([{"forget": item} for item in FORGET])["forget"]
    with torch.no_grad():
        logp = model_sequence_stats(_initial().eval(), batch["input_ids"], batch["labels"], batch["attention_mask"]).logp_sum
    return ReferenceCache.from_pairs({"forget": (batch["index"], logp + OFFSETS)})


def run_step(tmp_path, method: str, scope: str, bf16: bool, weights: str = "float32", plan: str = "auto") -> Step:
    model = copy.deepcopy(_initial()).to(getattr(torch, weights))
    trainer = UnlearnTrainer(
        model=model,
        args=args(tmp_path, max_steps=1, bf16=bf16, gradient_accumulation_steps=ACCUMULATION[scope],
                  max_grad_norm=0.0, optim="sgd"),
        forget_dataset=ListDataset(FORGET),
        retain_dataset=ListDataset(RETAIN),
        processing_class=PadTokenizer(),
        objective={"name": "npo", "beta": BETA_NPO},
        aggregator=AGGREGATORS[method],
        retain="nll",
        dro_scope=scope,
        reference_cache=_reference(),
        log_every=None,
        group_plan=plan,
    )
    step = Step(native_amp=bool(trainer.accelerator.native_amp))
    trainer.add_callback(_Gradients(step))
    record, forget_inputs = trainer.record_batch, trainer.forget_inputs
    full_rows: list = []  # ForgetInputs of whole micro-batches since the last aggregation

    def inputs_spy(model, inputs, rows=None):
        fi = forget_inputs(model, inputs, rows)
        assert fi.stats.token_nll.dtype == fi.ref_logp.dtype == torch.float32
        index = inputs["forget"]["index"] if rows is None else inputs["forget"]["index"][rows]
        assert torch.equal(fi.ref_logp, _reference().tables["forget"][index])  # the cached float32 values, unrounded
        if rows is None:
            full_rows.append(fi)
        return fi

    def spy(index, per_sample, weights_, nll, stats, forget_loss, gathered=False):
        assert per_sample.dtype == weights_.dtype == forget_loss.dtype == torch.float32
        # the loss algebra after the forward is float32: ℓ recomputed in float64 from the step's own statistics
        n, seen = per_sample.numel(), []
        while sum(f.stats.batch_size for f in seen) < n:
            seen.insert(0, full_rows.pop())
        logp = torch.cat([-f.stats.token_nll.double().new_zeros(f.stats.batch_size).index_add(
            0, f.stats.sample_index, f.stats.token_nll.double()) for f in seen])
        ratio = logp - torch.cat([f.ref_logp.double() for f in seen])
        want = -(2 / BETA_NPO) * F.logsigmoid(-BETA_NPO * ratio)
        assert torch.allclose(per_sample.double(), want, rtol=FLOAT32_REL, atol=0)
        full_rows.clear()
        step.records.append((index.clone(), per_sample.detach().clone(), weights_.detach().clone()))
        return record(index, per_sample, weights_, nll, stats, forget_loss, gathered)

    trainer.forget_inputs = inputs_spy
    trainer.record_batch = spy
    trainer.train()
    assert step.grads and step.records
    return step


@functools.cache
def float32_step(method: str, scope: str, tmp: str) -> Step:
    from pathlib import Path

    return run_step(Path(tmp) / f"{method}-{scope}", method, scope, bf16=False)


@pytest.fixture(scope="module")
def f32_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("f32_steps"))


def _compare(got: Step, want: Step, method: str, weights: str) -> None:
    """bf16 step ``got`` against float32 step ``want`` (forward noise bounds, module docstring)."""
    assert got.native_amp, "bf16=True on CPU must run the forward under autocast"
    assert len(got.records) == len(want.records)
    weight_error = 0.0
    for (i_got, l_got, w_got), (i_want, l_want, w_want) in zip(got.records, want.records):
        assert torch.equal(i_got, i_want)  # the same rows in the same order
        assert_bf16_close(max_relative(l_got, l_want), LOSS_REL[weights], f"{method}: per-sample losses")
        loss_gap = float((l_got.double() - l_want.double()).abs().max())
        if method == "npo":
            assert torch.equal(w_got, torch.full_like(w_want, 1 / w_want.numel()))
        elif method == "npo+g":
            kept = l_want.sort(descending=True).values
            k = int((w_want > 0).sum())
            assert kept[k - 1] - kept[k] > 2 * loss_gap  # premise: no loss can cross the cut by bf16 noise
            assert torch.equal(w_got, w_want)  # the same kept rows, weight 1/k each
        else:
            # w = softmax(ℓ/β): Δw_i/w_i = Δℓ_i/β − Σ_j w_j Δℓ_j/β, at most 2·max|Δℓ|/β
            weight_error = max(weight_error, max_relative(w_got, w_want))
            assert weight_error <= 2 * loss_gap / BETA_DV + FLOAT32_REL
    assert got.grads.keys() == want.grads.keys()
    assert_bf16_close(relative_l2(grads_vector(got.grads), grads_vector(want.grads)), GRAD_REL[weights] + weight_error,
                      f"{method}: gradient ({weights} weights)")


@pytest.mark.parametrize("weights", ["float32", "bfloat16"])
@pytest.mark.parametrize("scope", ["micro", "global"])
@pytest.mark.parametrize("method", ["npo", "npo+dv", "npo+g"])
def test_step_under_bf16_matches_float32(tmp_path, f32_dir, method, scope, weights):
    got = run_step(tmp_path, method, scope, bf16=True, weights=weights)
    _compare(got, float32_step(method, scope, f32_dir), method, weights)


@pytest.mark.parametrize("plan", ["one-pass", "two-pass"])
def test_group_plans_under_bf16_match_float32(tmp_path, f32_dir, plan):
    got = run_step(tmp_path, "npo+g", "micro", bf16=True, plan=plan)
    _compare(got, float32_step("npo+g", "micro", f32_dir), "npo+g", "float32")


def _batch():
    from baldro.data.collate import UnlearnCollator

    return UnlearnCollator(PadTokenizer())([{"forget": item} for item in qa_items(6, seed=3)])["forget"]


@pytest.mark.parametrize("grad", [False, True], ids=["no-grad", "autograd"])
@pytest.mark.parametrize("weights", ["float32", "bfloat16"])
def test_lean_head_runs_in_float32_under_autocast(weights, grad):
    """The forward runs under autocast, the LM head and the cross-entropy outside it (both of its paths: the cache's
    and evaluation's no-grad one, the training step's autograd one): the per-token NLL equals a float64
    cross-entropy of the head applied to the same hidden states in the head's own dtype, as ``nn.Linear`` computes
    it (bf16 weights: bf16 logits, then float32, as Hugging Face's loss upcasts its bf16 logits). Logits rounded to
    bf16 with float32 weights would be off by ~U/2 · 10 nats."""
    model = copy.deepcopy(_initial()).to(getattr(torch, weights)).eval()
    b = _batch()

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16)

    with torch.set_grad_enabled(grad):
        stats = model_sequence_stats(model, b["input_ids"], b["labels"], b["attention_mask"], 1024, autocast)
    assert stats.token_nll.requires_grad is grad and stats.token_nll.dtype == torch.float32
    with torch.no_grad():
        hidden = final_hidden_states(model, b["input_ids"], b["attention_mask"], autocast)
        rows, cols = (b["labels"][:, 1:] != -100).nonzero(as_tuple=True)
        logits = output_head(model)(hidden[rows, cols]).double()
        want = F.cross_entropy(logits, b["labels"][:, 1:][rows, cols], reduction="none")
        assert torch.allclose(stats.token_nll.detach().double(), want, rtol=FLOAT32_REL, atol=FLOAT32_REL)
        # and the forward really ran in bf16: the float32 model without autocast gives other values
        plain = model_sequence_stats(_initial().eval(), b["input_ids"], b["labels"], b["attention_mask"])
    assert_bf16_close(max_relative(stats.token_nll, plain.token_nll), 4 * U, "token NLL vs float32")
