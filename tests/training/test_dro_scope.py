"""``dro_scope: global``: two micro-batches of 4 give the same update as one batch of 8 (SGD, lr 1 → Δθ = −∇); the
strategies need nothing of the Trainer but their ``ScopeContext``."""

from __future__ import annotations

import pytest
import torch

from baldro import aggregators, objectives
from baldro.composition import UnlearnLoss
from baldro.data.collate import UnlearnCollator, UnlearnDataset
from baldro.training import loss_inputs
from baldro.training.dro_scope import GlobalScope, MicroScope
from baldro.training.loss_inputs import LossSources
from baldro.training.scope_context import ScopeContext
from baldro.training.trainer import UnlearnTrainer

from .tiny import ListDataset, PadTokenizer, args, max_diff, params, qa_items, tiny_llama

AGGREGATORS = [{"name": "dv", "beta": 0.5}, {"name": "group", "ratio": 0.5}]


def _update(tmp_path, aggregator, scope, batch, accumulation, retain="nll"):
    model = tiny_llama(seed=3)
    before = params(model)
    trainer = UnlearnTrainer(
        model=model,
        args=args(
            tmp_path,
            per_device_train_batch_size=batch,
            gradient_accumulation_steps=accumulation,
            optim="sgd",
            learning_rate=1.0,
            lr_scheduler_type="constant",
            max_grad_norm=0.0,
            weight_decay=0.0,
        ),
        forget_dataset=ListDataset(qa_items(8, seed=4)),
        retain_dataset=ListDataset(qa_items(10, seed=5)),
        processing_class=PadTokenizer(),
        objective="ga",
        aggregator=aggregator,
        retain=retain,
        dro_scope=scope,
        log_every=1,
    )
    trainer.train()
    after = params(model)
    return {k: after[k] - before[k] for k in before}, trainer


@pytest.mark.parametrize("aggregator", AGGREGATORS, ids=["dv", "group"])
def test_global_scope_two_micro_batches_equal_one_batch(tmp_path, aggregator):
    full, _ = _update(tmp_path / "full", aggregator, "micro", batch=8, accumulation=1)
    split, _ = _update(tmp_path / "split", aggregator, "global", batch=4, accumulation=2)
    forget_only, _ = _update(tmp_path / "forget", aggregator, "micro", batch=8, accumulation=1, retain=None)
    assert max(float(v.abs().max()) for v in forget_only.values()) > 1e-3  # the forget term moves the weights
    assert max_diff(full, split) < 1e-5
    rows = (tmp_path / "split" / "per_sample.jsonl").read_text().splitlines()
    assert len(rows) == 8  # the whole effective batch, logged once with its global weights


def test_micro_scope_differs_from_one_batch(tmp_path):
    full, _ = _update(tmp_path / "full", AGGREGATORS[0], "micro", batch=8, accumulation=1, retain=None)
    micro, _ = _update(tmp_path / "micro", AGGREGATORS[0], "micro", batch=4, accumulation=2, retain=None)
    assert max_diff(full, micro) > 1e-4  # so the equality above is not vacuous


def _context(loss_fn, recorded: list, window: int) -> ScopeContext:
    """A ScopeContext of plain functions — no Trainer — over an accumulation window of ``window`` micro-batches."""
    sources = LossSources(loss_fn.objective, loss_fn.retain, 1024, None, None, lambda model: None)
    return ScopeContext(
        loss_fn=loss_fn,
        group_plan="two-pass",
        forget_inputs=lambda model, inputs, rows=None: loss_inputs.forget_inputs(sources, model, inputs, rows),
        retain_inputs=lambda model, retain: loss_inputs.retain_inputs(sources, model, retain),
        record_batch=lambda *a, **kw: recorded.append((a, kw)),
        check_finite=lambda total, index: None,
        ga_divisor=lambda: window,
        window_size=lambda: window,
        prepare_inputs=lambda batch: batch,
        num_processes=1,
    )


@pytest.mark.parametrize("aggregator", AGGREGATORS, ids=["dv", "group"])
def test_the_scopes_need_only_their_context(aggregator):
    """The strategies run on a ScopeContext alone. Global scope over a window of two micro-batches of 2 rows
    weighs the rows as micro scope weighs the same 4 rows in one batch; the two surrogates, each divided by the
    window as the Trainer divides it, add up to that batch's Σ w_i·ℓ_i."""
    model = tiny_llama(seed=3).train()
    loss_fn = UnlearnLoss(objective=objectives.build("ga"), aggregator=aggregators.build(**aggregator))
    collate = UnlearnCollator(PadTokenizer())
    data = UnlearnDataset(ListDataset(qa_items(4, seed=4)), None, None)
    rows = [data[i] for i in range(4)]
    one_batch: list = []
    MicroScope().loss(_context(loss_fn, one_batch, window=1), model, collate(rows))
    (index, per_sample, weights, *_), _ = one_batch[0]
    assert index.tolist() == [0, 1, 2, 3] and float(weights.sum()) == pytest.approx(1.0)

    windowed: list = []
    scope, ctx = GlobalScope(), _context(loss_fn, windowed, window=2)
    halves = [collate(rows[:2]), collate(rows[2:])]
    scope.plan_window(ctx, model, halves)
    assert len(windowed) == 1 and windowed[0][1] == {"gathered": True}  # the window, logged once
    (g_index, g_per_sample, g_weights, *_), _ = windowed[0]
    assert g_index.tolist() == [0, 1, 2, 3]
    assert torch.allclose(g_per_sample, per_sample, atol=1e-5) and torch.allclose(g_weights, weights, atol=1e-5)
    totals = [scope.loss(ctx, model, half).total / ctx.ga_divisor() for half in halves]
    assert len(windowed) == 1 and not scope.plans  # the micro-batches took their plans and logged nothing more
    assert float(sum(totals).detach()) == pytest.approx(float((weights * per_sample).sum()), abs=1e-5)
