"""BalDRO-G's one-pass plan against the previous implementation (two passes, generic LM head): same kept rows, same
loss, same gradients — for every objective, micro and global scope, gradient accumulation and ``compat: released``.
And ``auto`` picks one pass only where the LM head outweighs the decoder."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

import baldro.core.sequence as sequence
from baldro.training.compat import loss_spec
from baldro.training.group_plan import body_parameters, one_pass_cheaper
from baldro.training.trainer import UnlearnTrainer

from .tiny import EOS, PAD, ListDataset, PadTokenizer, args, grads, params, qa_items, tiny_llama

OBJECTIVES = ["npo", "simnpo", "ga", "satimp", "wga"]
GROUP = {"name": "group", "ratio": 0.5}


def wide_llama(seed: int = 0) -> LlamaForCausalLM:
    """A decoder of ~5 k parameters under a 4096 × 16 LM head: the shape where one pass is cheaper."""
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=4096, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64, pad_token_id=PAD,
                         eos_token_id=EOS, bos_token_id=2, tie_word_embeddings=False)
    return LlamaForCausalLM(config).float()


def _trainer(tmp_path, model, objective, plan, aggregator=GROUP, **kw):
    name = objective if isinstance(objective, str) else objective["name"]
    extra = {"reference_model": _moved_reference(model)} if name == "npo" else {}
    return UnlearnTrainer(model=model, args=args(tmp_path, **kw.pop("args", {})),
                          forget_dataset=ListDataset(qa_items(8, seed=1)), retain_dataset=ListDataset(qa_items(8, seed=2)),
                          processing_class=PadTokenizer(), objective=objective, aggregator=aggregator, retain="nll",
                          group_plan=plan, log_every=None, **extra, **kw)


def _moved_reference(model):
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():  # the policy moves away from the reference, so NPO's log-ratio is not zero
        for p in reference.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return reference


def _step(trainer, batch):
    """Loss, parameter gradients and the planned weights of one ``compute_loss`` + backward; the decoder calls."""
    model, planned, calls = trainer.model, [], []
    plan = trainer.loss_fn.plan
    trainer.loss_fn.plan = lambda *a, **k: planned.append(plan(*a, **k)) or planned[-1]
    hook = model.model.register_forward_hook(
        lambda _m, _i, out: calls.append((torch.is_grad_enabled(), out.last_hidden_state.shape[0])))
    model.zero_grad()
    torch.manual_seed(11)  # the random retain rows of compat: released
    loss = trainer.compute_loss(model, batch)
    loss.backward()
    hook.remove()
    return loss.detach(), grads(model), planned[0], calls


@pytest.fixture
def old_head(monkeypatch):
    """The previous implementation's LM head: the generic path (module call, F.cross_entropy)."""
    def use():
        monkeypatch.setattr(sequence, "fusable_head", lambda head: None)
    return use


def _compare(new, old):
    loss_new, g_new, w_new, _ = new
    loss_old, g_old, w_old, _ = old
    assert torch.equal(w_new > 0, w_old > 0)  # the same kept rows
    torch.testing.assert_close(w_new, w_old, rtol=0, atol=0)
    torch.testing.assert_close(loss_new, loss_old, rtol=1e-6, atol=1e-6)
    assert g_new.keys() == g_old.keys()
    for k in g_new:
        torch.testing.assert_close(g_new[k], g_old[k], rtol=1e-5, atol=1e-6, msg=k)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_one_pass_equals_the_two_pass_implementation(tmp_path, old_head, objective):
    model = wide_llama()
    new = _trainer(tmp_path / "new", model, objective, "auto")
    batch = new.data_collator([new.train_dataset[i] for i in range(8)])
    got = _step(new, batch)
    assert got[3] == [(True, 8), (True, 8)]  # auto chose one pass: forget once with autograd on all 8 rows, retain
    assert int((got[2] > 0).sum()) == 4
    old_head()
    want = _step(_trainer(tmp_path / "old", model, objective, "two-pass"), batch)
    assert want[3] == [(False, 8), (True, 4), (True, 8)]  # no-grad ranking, kept rows, retain
    _compare(got, want)


def test_one_pass_equals_two_pass_under_compat_released(tmp_path, old_head):
    spec = loss_spec({"compat": "released", "objective": {"name": "satimp"}, "aggregator": GROUP, "retain": "nll"})
    assert spec.options["retain_rows"] == "kept" and spec.aggregator["rounding"] == "floor"
    model = wide_llama(1)
    kw = {"aggregator": spec.aggregator, **spec.options}
    new = _trainer(tmp_path / "new", model, spec.objective, "one-pass", **kw)
    batch = new.data_collator([new.train_dataset[i] for i in range(7)])  # ⌊0.5·7⌋ = 3 kept rows
    got = _step(new, batch)
    assert int((got[2] > 0).sum()) == 3
    old_head()
    _compare(got, _step(_trainer(tmp_path / "old", model, spec.objective, "two-pass", **kw), batch))


@pytest.mark.parametrize("scope", ["micro", "global"])
def test_training_update_with_accumulation_equals_the_previous_implementation(tmp_path, old_head, scope):
    sgd = {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 2, "optim": "sgd", "learning_rate": 1.0,
           "lr_scheduler_type": "constant", "max_grad_norm": 0.0, "weight_decay": 0.0}

    def update(path, plan):
        model = wide_llama(2)
        before = params(model)
        _trainer(path, model, "simnpo", plan, dro_scope=scope, args=sgd).train()
        return {k: v - before[k] for k, v in params(model).items()}

    new = update(tmp_path / "new", "auto")
    old_head()
    old = update(tmp_path / "old", "two-pass")
    assert max(float(v.abs().max()) for v in old.values()) > 1e-3  # the step moves the weights
    for k in new:
        torch.testing.assert_close(new[k], old[k], rtol=1e-5, atol=1e-6, msg=k)


def test_auto_takes_one_pass_only_where_the_head_outweighs_the_decoder(tmp_path):
    wide, small_vocab = wide_llama(), tiny_llama()
    trainer = _trainer(tmp_path, wide, "ga", "auto")
    forget = trainer.data_collator([trainer.train_dataset[i] for i in range(8)])["forget"]
    assert body_parameters(wide) < 6000 < wide.lm_head.weight.numel()
    assert one_pass_cheaper(wide, forget, 0.5)
    assert not one_pass_cheaper(small_vocab, forget, 0.5)  # 48 × 32 head under an 18 k-parameter decoder
    assert one_pass_cheaper(small_vocab, forget, 1.0)  # keeping every row, one pass is never dearer
    with pytest.raises(ValueError, match="group_plan must be one of"):
        _trainer(tmp_path, wide, "ga", "three-pass")
