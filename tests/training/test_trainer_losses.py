"""UnlearnTrainer's loss path: cached reference = live reference, BalDRO-G ranks without autograd, NaN stops."""

from __future__ import annotations

import copy

import pytest
import torch

from baldro.data.collate import UnlearnCollator, UnlearnDataset
from baldro.training.reference_cache import ReferenceCache, compute_reference_cache
from baldro.training.trainer import NonFiniteLossError, UnlearnTrainer

from .tiny import ListDataset, PadTokenizer, args, grads, max_diff, qa_items, tiny_llama


def _trainer(tmp_path, model, **kw):
    forget = ListDataset(qa_items(8, seed=1))
    retain = ListDataset(qa_items(12, seed=2))
    return UnlearnTrainer(
        model=model,
        args=args(tmp_path),
        forget_dataset=forget,
        retain_dataset=retain,
        processing_class=PadTokenizer(),
        **kw,
    )


def _batch(trainer):
    items = [trainer.train_dataset[i] for i in range(4)]
    return trainer.data_collator(items)


def _step(trainer, batch):
    trainer.model.zero_grad()
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    return float(loss.detach()), grads(trainer.model)


@pytest.mark.parametrize("aggregator", ["mean", {"name": "dv", "beta": 2.0}, {"name": "group", "ratio": 0.5}])
def test_cached_reference_step_equals_live_reference(tmp_path, aggregator):
    model = tiny_llama()
    live = _trainer(tmp_path / "a", model, objective={"name": "npo", "beta": 0.1}, aggregator=aggregator,
                    retain="nll", reference_model=copy.deepcopy(model))
    with torch.no_grad():  # move away from the reference so the log-ratio is not zero
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    cached = _trainer(tmp_path / "b", model, objective={"name": "npo", "beta": 0.1}, aggregator=aggregator,
                      retain="nll", reference_cache=compute_reference_cache(
                          live.reference_model, (live.train_dataset[i] for i in range(8)), live.data_collator, 3, "cpu"))
    batch = _batch(live)
    loss_live, g_live = _step(live, batch)
    loss_cached, g_cached = _step(cached, batch)
    assert abs(loss_live - loss_cached) < 1e-5
    assert max_diff(g_live, g_cached) < 1e-5
    assert abs(loss_live - (2 / 0.1) * torch.log(torch.tensor(2.0)).item()) > 1e-3  # the reference is not the model


def test_reference_cache_is_computed_in_train_and_saved(tmp_path):
    trainer = _trainer(tmp_path, tiny_llama(), objective="npo", retain=None)
    trainer.ensure_reference_cache()
    saved = ReferenceCache.load(tmp_path / "reference_logp.safetensors")
    batch = _batch(trainer)
    looked_up = saved.lookup(batch["forget"]["index"])
    with torch.no_grad():
        live = trainer.forget_inputs(trainer.model.eval(), batch).stats.logp_sum
    torch.testing.assert_close(looked_up, live, atol=1e-5, rtol=0)
    with pytest.raises(KeyError, match="no 'forget' entry"):
        saved.lookup(torch.tensor([99]))


def test_group_ranks_without_autograd_and_runs_only_kept_rows(tmp_path):
    model = tiny_llama()
    trainer = _trainer(tmp_path, model, objective="simnpo", aggregator={"name": "group", "ratio": 0.5}, retain=None)
    calls = []
    hook = model.model.register_forward_hook(
        lambda _m, _inp, out: calls.append((torch.is_grad_enabled(), out.last_hidden_state.shape[0]))
    )
    batch = _batch(trainer)
    loss = trainer.compute_loss(model, batch)
    hook.remove()
    grad_calls = [c for c in calls if c[0]]
    assert len(calls) == 2 and len(grad_calls) == 1
    assert grad_calls[0][1] == 2  # only the ⌈0.5·4⌉ kept rows are run with autograd
    with torch.no_grad():
        ell = trainer.objective(trainer.forget_inputs(model, batch))
    assert abs(float(loss.detach()) - float(ell.sort(descending=True).values[:2].mean())) < 1e-5


def test_nan_loss_stops_with_step_and_indices(tmp_path):
    model = tiny_llama()
    with torch.no_grad():
        model.model.embed_tokens.weight[5:].fill_(float("nan"))
    trainer = _trainer(tmp_path, model, objective="ga", retain=None)
    with pytest.raises(NonFiniteLossError, match=r"at step 1 on forget dataset indices \[\d+, \d+, \d+, \d+\]"):
        trainer.train()


def test_unlearn_dataset_collation_shapes():
    ds = UnlearnDataset(ListDataset(qa_items(3)), ListDataset(qa_items(5, seed=3)), seed=0)
    batch = UnlearnCollator(PadTokenizer())([ds[i] for i in range(3)])
    assert set(batch) == {"forget", "retain"}
    assert batch["forget"]["index"].tolist() == [0, 1, 2]


def test_import_baldro_stays_light_and_exports_the_trainer_lazily():
    import subprocess
    import sys

    code = (
        "import sys, baldro, baldro.training; assert 'transformers' not in sys.modules; "
        "from baldro import UnlearnTrainer; import transformers; assert issubclass(UnlearnTrainer, transformers.Trainer)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120).returncode == 0


def test_retain_aggregator_applies_dro_to_the_retain_side(tmp_path):
    model = tiny_llama()
    trainer = _trainer(tmp_path, model, objective="ga", aggregator="mean", retain="nll",
                       retain_aggregator={"name": "dv", "beta": 0.5}, retain_weight=2.0)
    batch = _batch(trainer)
    with torch.no_grad():
        loss = trainer.compute_loss(model, batch)
        forget = trainer.forget_inputs(model, batch).stats.nll_mean
        retain = trainer.retain_inputs(model, batch["retain"]).stats.nll_mean
    expected = -forget.mean() + 2.0 * 0.5 * (torch.logsumexp(retain / 0.5, 0) - torch.log(torch.tensor(4.0)))
    assert abs(float(loss) - float(expected)) < 1e-5


def test_cached_reference_equals_live_reference_for_idk_dpo(tmp_path):
    model = tiny_llama()
    kw = {"objective": "idk_dpo", "aggregator": {"name": "dv", "beta": 1.0}, "retain": None,
          "idk_dataset": ListDataset(qa_items(8, seed=7))}
    live = _trainer(tmp_path / "a", model, reference_model=copy.deepcopy(model), **kw)
    items = [live.train_dataset[i] for i in range(8)]
    cache = compute_reference_cache(model, items, live.data_collator, 3, "cpu", parts=("forget", "idk"))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    cached = _trainer(tmp_path / "b", model, reference_cache=cache, **kw)
    batch = _batch(live)
    loss_live, g_live = _step(live, batch)
    loss_cached, g_cached = _step(cached, batch)
    assert abs(loss_live - loss_cached) < 1e-5 and max_diff(g_live, g_cached) < 1e-5
