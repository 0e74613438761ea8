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
from baldro.training.group_plan import active_dropout, body_parameters, choose_plan, one_pass_cheaper
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


def test_auto_takes_two_pass_under_dropout_so_a_speed_setting_never_changes_results(tmp_path):
    # with dropout the plans differ in what they compute (one draw for ranking and training, or two — the released
    # order), so 'auto', a speed setting, must not pick by FLOPs there (issue 22, item 4)
    wide = wide_llama()
    trainer = _trainer(tmp_path, wide, "ga", "auto")
    forget = trainer.data_collator([trainer.train_dataset[i] for i in range(8)])["forget"]
    agg = trainer.loss_fn.aggregator
    wide.train()
    assert not active_dropout(wide) and choose_plan("auto", wide, forget, agg) == "one-pass"
    wide.config.attention_dropout = 0.1  # Llama applies it functionally: found through the config
    assert active_dropout(wide) and choose_plan("auto", wide, forget, agg) == "two-pass"
    wide.eval()
    assert not active_dropout(wide)  # no masks drawn outside training
    wide.train()
    wide.config.attention_dropout = 0.0
    wide.model.layers[0].mlp.act_fn = torch.nn.Sequential(torch.nn.SiLU(), torch.nn.Dropout(0.2))
    assert active_dropout(wide) and choose_plan("auto", wide, forget, agg) == "two-pass"
    with pytest.warns(UserWarning, match="results differ"):
        import baldro.training.group_plan as group_plan

        group_plan._warned_one_pass = False
        assert choose_plan("one-pass", wide, forget, agg) == "one-pass"


def test_under_dropout_auto_gives_the_two_pass_update(tmp_path):
    # the same seed, dropout 0.1: 'auto' and 'two-pass' give the same loss and gradients on the wide model, where
    # without dropout 'auto' would run one pass and draw its masks differently
    def step(plan):
        model = wide_llama()
        model.config.attention_dropout = 0.1
        model.train()
        trainer = _trainer(tmp_path / plan, model, "ga", plan)
        batch = trainer._prepare_inputs(trainer.data_collator([trainer.train_dataset[i] for i in range(8)]))
        torch.manual_seed(3)
        loss = trainer.compute_loss(model, batch)
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    auto, two = step("auto"), step("two-pass")
    one = step("one-pass")
    torch.testing.assert_close(auto[0], two[0], rtol=0, atol=0)
    for k in two[1]:
        torch.testing.assert_close(auto[1][k], two[1][k], rtol=0, atol=0, msg=k)
    assert any(not torch.equal(one[1][k], two[1][k]) for k in two[1])  # the draws differ: one pass is another method
