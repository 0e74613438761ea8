"""The trainer trains exactly ``UnlearnLoss``: same loss and gradient on the same batch, for mean / dv / group, with
``dro_scope`` micro (one micro-batch) and global (two micro-batches of 4 = one batch of 8); its extra metrics reach
TensorBoard through ``Trainer.log``."""

from __future__ import annotations

import copy
import json
import math

import pytest

from baldro import aggregators, objectives, retain
from baldro.composition import UnlearnLoss
from baldro.core.sequence import model_sequence_stats
from baldro.objectives import ForgetInputs
from baldro.retain import RetainInputs
from baldro.training.trainer import UnlearnTrainer

from .tiny import ListDataset, PadTokenizer, args, grads, max_diff, params, qa_items, tiny_llama

AGGREGATORS = {"mean": {"name": "mean"}, "dv": {"name": "dv", "beta": 0.5}, "group": {"name": "group", "ratio": 0.5}}


def _composed(aggregator: dict) -> UnlearnLoss:
    spec = dict(aggregator)
    return UnlearnLoss(objectives.build("ga"), aggregators.build(spec.pop("name"), **spec), retain.build("nll"), 0.7, 1.3)


def _reference_loss(model, batch, aggregator):
    """UnlearnLoss on the batch, with statistics computed straight from the model (no trainer code)."""
    f, r = batch["forget"], batch["retain"]
    forget = ForgetInputs(model_sequence_stats(model, f["input_ids"], f["labels"], f["attention_mask"]))
    kept = RetainInputs(model_sequence_stats(model, r["input_ids"], r["labels"], r["attention_mask"]))
    return _composed(aggregator)(forget, kept)


def _trainer(tmp_path, model, aggregator, scope="micro", batch=4, accumulation=1, **overrides):
    return UnlearnTrainer(
        model=model,
        args=args(tmp_path, per_device_train_batch_size=batch, gradient_accumulation_steps=accumulation, **overrides),
        forget_dataset=ListDataset(qa_items(8, seed=4)),
        retain_dataset=ListDataset(qa_items(10, seed=5)),
        processing_class=PadTokenizer(),
        objective="ga",
        aggregator=aggregator,
        retain="nll",
        forget_weight=0.7,
        retain_weight=1.3,
        dro_scope=scope,
    )


@pytest.mark.parametrize("name", AGGREGATORS)
def test_micro_scope_trains_unlearn_loss(tmp_path, name):
    model = tiny_llama(seed=3)
    trainer = _trainer(tmp_path, model, AGGREGATORS[name])
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    model.train()
    model.zero_grad()
    loss = trainer.compute_loss(model, batch)
    loss.backward()
    g_trainer = grads(model)
    model.zero_grad()
    expected = _reference_loss(model, batch, AGGREGATORS[name])
    expected.total.backward()
    assert float(loss.detach()) == pytest.approx(float(expected.total.detach()), abs=1e-6)
    assert max_diff(g_trainer, grads(model)) < 1e-6


@pytest.mark.parametrize("name", AGGREGATORS)
def test_global_scope_update_is_the_gradient_of_unlearn_loss_on_the_effective_batch(tmp_path, name):
    """SGD with lr 1 and two micro-batches of 4: Δθ = −∇ UnlearnLoss(all 8 rows)."""
    model = tiny_llama(seed=3)
    initial = copy.deepcopy(model)
    before = params(model)
    trainer = _trainer(
        tmp_path, model, AGGREGATORS[name], "global", batch=4, accumulation=2, optim="sgd", learning_rate=1.0,
        lr_scheduler_type="constant", max_grad_norm=0.0, weight_decay=0.0,
    )
    trainer.train()
    update = {k: before[k] - v.detach() for k, v in model.named_parameters()}
    everything = trainer.data_collator([trainer.train_dataset[i] for i in range(8)])
    initial.train()
    _reference_loss(initial, everything, AGGREGATORS[name]).total.backward()
    assert max(float(g.abs().max()) for g in grads(initial).values()) > 1e-3
    assert max_diff(update, grads(initial)) < 1e-5


def test_dro_statistics_reach_tensorboard(tmp_path, monkeypatch):
    """Forget/retain losses and DRO statistics are logged through Trainer.log: read back from the event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))  # transformers >= 5; older: logging_dir
    model = tiny_llama(seed=3)
    trainer = _trainer(
        tmp_path / "run", model, AGGREGATORS["group"], max_steps=2, report_to="tensorboard",
        logging_strategy="steps", logging_steps=1,
    )
    trainer.train()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    expected = {"forget/loss", "forget/loss_mean", "forget/loss_q10", "forget/loss_q50", "forget/loss_q90",
                "retain/loss", "dro/ess", "dro/max_weight", "dro/weight_entropy", "dro/kept_fraction"}
    assert {f"train/{t}" for t in expected} <= tags, sorted(tags)

    def values(tag):
        return [e.value for e in events.Scalars(f"train/{tag}")]

    assert len(values("dro/ess")) == 2
    # BalDRO-G keeps 2 of 4 rows with weight 1/2 each: ESS 2, max weight 0.5, entropy log 2, kept fraction 0.5
    assert values("dro/ess") == pytest.approx([2.0, 2.0])
    assert values("dro/max_weight") == pytest.approx([0.5, 0.5])
    assert values("dro/weight_entropy") == pytest.approx([math.log(2)] * 2)
    assert values("dro/kept_fraction") == pytest.approx([0.5, 0.5])
    rows = [json.loads(line) for line in (tmp_path / "run" / "per_sample.jsonl").read_text().splitlines()]
    for step in (1, 2):
        losses = sorted(r["loss"] for r in rows if r["step"] == step)
        kept = [r["loss"] for r in rows if r["step"] == step and r["weight"] > 0]
        assert values("forget/loss_mean")[step - 1] == pytest.approx(sum(losses) / 4, abs=1e-5)
        assert values("forget/loss")[step - 1] == pytest.approx(sum(kept) / 2, abs=1e-5)
        assert values("forget/loss_q50")[step - 1] == pytest.approx((losses[1] + losses[2]) / 2, abs=1e-5)
    loss = values("loss")
    total = [0.7 * f + 1.3 * r for f, r in zip(values("forget/loss"), values("retain/loss"))]
    assert loss == pytest.approx(total, abs=1e-4)
