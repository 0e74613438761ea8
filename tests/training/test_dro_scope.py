"""``dro_scope: global``: two micro-batches of 4 give the same update as one batch of 8 (SGD, lr 1 → Δθ = −∇)."""

from __future__ import annotations

import pytest

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
