"""``compat: released``: the config switch, its refusals, and trainer losses equal to the released trainers' formulas
(written out here from model logits, independently of baldro's loss path)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from baldro.cli.main import main
from baldro.errors import ConfigError
from baldro.training.compat import build_loss, loss_spec
from baldro.training.trainer import UnlearnTrainer
from baldro.training.unlearn import resolve_unlearn

from .tiny import ListDataset, PadTokenizer, args, qa_items, tiny_llama

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def loss_parts(cfg):
    """(objective, aggregator, retain term, retain aggregator, options) as the run builds them."""
    loss, options = build_loss(cfg)
    return loss.objective, loss.aggregator, loss.retain, loss.retain_aggregator, options


def _cfg(objective, aggregator, compat="released", **extra):
    return resolve_unlearn({"objective": objective, "aggregator": aggregator, "compat": compat,
                            "model": {"path": "org/some-hub-model"}, "output_dir": "unused", **extra})


def test_released_dv_npo_sets_the_soft_min_sign_and_the_summed_retain():
    spec = loss_spec(_cfg({"name": "npo", "beta": 0.1}, {"name": "dv", "beta": 2.0, "sign": "paper"}))
    assert spec.aggregator == {"name": "dv", "beta": 2.0, "sign": "official"}
    assert spec.retain == {"name": "nll", "weight": 1.0, "reduction": "sequence_sum"}
    assert spec.options == {}


def test_released_dv_satimp_runs_over_tokens():
    spec = loss_spec(_cfg({"name": "satimp"}, {"name": "dv", "beta": 1.0}))
    assert spec.options == {"forget_unit": "token"}
    assert spec.retain["reduction"] == "sequence_sum" and spec.aggregator["sign"] == "official"


def test_released_dv_simnpo_keeps_the_token_mean_retain():
    spec = loss_spec(_cfg({"name": "simnpo"}, {"name": "dv", "beta": 1.0}))
    assert "reduction" not in spec.retain and spec.options == {} and spec.aggregator["sign"] == "official"


@pytest.mark.parametrize("objective", ["npo", "simnpo", "satimp"])
def test_released_group_floor_likelihood_and_random_retain_rows(objective):
    cfg = _cfg({"name": objective}, {"name": "group", "ratio": 0.5, "rank_by": "loss"})
    spec = loss_spec(cfg)
    assert spec.aggregator == {"name": "group", "ratio": 0.5, "rank_by": "likelihood", "rounding": "floor"}
    assert spec.options == {"retain_rows": "kept"}
    assert spec.objective.get("granularity") == ("token" if objective == "satimp" else None)
    assert loss_parts(cfg)[1].rank_by == "likelihood"


def test_paper_mode_changes_nothing():
    cfg = _cfg({"name": "satimp"}, {"name": "dv", "beta": 0.005}, compat="paper")
    spec = loss_spec(cfg)
    assert spec.aggregator == {"name": "dv", "beta": 0.005} and spec.options == {}
    assert spec.retain == {"name": "nll", "weight": 1.0} and spec.objective == {"name": "satimp"}
    assert loss_parts(_cfg({"name": "satimp"}, {"name": "group"}, compat="paper"))[1].rank_by == "likelihood"


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [
        ({"compat": "official"}, r"compat='official' must be one of paper, released \(the paper's or the released code's definitions\)"),
        ({"dro_scope": "global"}, r"compat: released needs dro_scope: micro"),
        ({"retain": {"name": "kl"}}, r"compat: released supports only the nll retain term \(got 'kl'\)"),
    ],
)
def test_released_refusals(extra, pattern):
    with pytest.raises(ConfigError, match=pattern):
        _cfg({"name": "npo"}, {"name": "dv"}, **extra)


def test_rank_by_loss_with_satimp_is_a_config_error_and_exit_2(tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"rank_by='loss' is meaningless with objective SatImp"):
        _cfg({"name": "satimp"}, {"name": "group", "rank_by": "loss"}, compat="paper")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"model": {"path": "org/some-hub-model"}, "objective": {"name": "wga"},
                                    "aggregator": {"name": "group", "rank_by": "loss"},
                                    "output_dir": str(tmp_path / "out")}))
    assert main(["unlearn", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "rank_by='loss' is meaningless with objective WeightedGA" in err[0]
    assert not (tmp_path / "out").exists()


def test_every_group_preset_ranks_as_its_objective_declares():
    for path in sorted(CONFIGS.glob("*.yaml")):
        cfg = yaml.safe_load(path.read_text())
        if (cfg.get("aggregator") or {}).get("name") != "group":
            continue
        objective, aggregator, *_ = loss_parts(resolve_unlearn(cfg))
        assert aggregator.rank_by == objective.rank_by, path.name
    from baldro.experiments.methods import method_config, method_names

    for name in method_names():
        cfg = method_config(name)
        if cfg["aggregator"]["name"] == "group":
            expected = "likelihood" if name.split("+")[0] in ("satimp", "wga") else "loss"
            assert cfg["aggregator"]["rank_by"] == expected, name
        if cfg["aggregator"]["name"] == "dv":
            assert cfg["aggregator"]["beta"] == {"satimp": 0.005, "wga": 0.1}.get(name.split("+")[0], 2.0), name


def test_satimp_dv_presets_use_a_beta_on_the_loss_scale():
    for stem in ("tofu_satimp_dv", "tiny_satimp_dv"):
        cfg = yaml.safe_load((CONFIGS / f"{stem}.yaml").read_text())
        assert cfg["aggregator"]["beta"] <= 0.02, stem


# ----- trainer: the released formulas from logits ----------------------------------------------------------------
def _trainer(tmp_path, model, cfg):
    objective, aggregator, retain_term, retain_agg, options = loss_parts(cfg)
    return UnlearnTrainer(model=model, args=args(tmp_path), forget_dataset=ListDataset(qa_items(8, seed=1)),
                          retain_dataset=ListDataset(qa_items(12, seed=2)), processing_class=PadTokenizer(),
                          objective=objective, aggregator=aggregator, retain=retain_term,
                          retain_aggregator=retain_agg, forget_weight=float(cfg["forget_weight"]),
                          retain_weight=1.0 if retain_term is None else float(cfg["retain"].get("weight", 1.0)),
                          **options)


def _token_ce(model, part):
    logits = model(input_ids=part["input_ids"], attention_mask=part["attention_mask"]).logits[:, :-1].float()
    labels = part["labels"][:, 1:]
    ce = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, reduction="none")
    return ce, labels != -100


def test_trainer_matches_released_drsatimp(tmp_path):
    """γ·(−σ·log mean_tokens exp(−ℓ_t/σ)) + α·mean_rows(Σ_t NLL) with ℓ_t = −p^β1(1−p)^β2·NLL_t."""
    model = tiny_llama()
    beta1, sigma, gamma, alpha = 0.5, 0.05, 0.1, 0.3
    cfg = _cfg({"name": "satimp", "beta1": beta1, "beta2": 1.0}, {"name": "dv", "beta": sigma},
               retain={"name": "nll", "weight": alpha}, forget_weight=gamma)
    trainer = _trainer(tmp_path, model, cfg)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    got = trainer.compute_loss(model, batch)
    with torch.no_grad():
        ce, mask = _token_ce(model, batch["forget"])
        p = (-ce).exp()
        token_loss = -(p**beta1 * (1 - p)) * ce
        forget = -sigma * torch.log(torch.mean(torch.exp(-token_loss[mask] / sigma)))
        rce, rmask = _token_ce(model, batch["retain"])
        retain_loss = (rce * rmask).sum(-1).mean()
    assert float(got.detach()) == pytest.approx(float(gamma * forget + alpha * retain_loss), rel=1e-5)
    paper = _trainer(tmp_path / "p", model, {**cfg, "compat": "paper", "aggregator": {"name": "dv", "beta": sigma}})
    assert abs(float(paper.compute_loss(model, batch).detach()) - float(got.detach())) > 1e-3


def test_trainer_matches_released_groupsimnpo(tmp_path):
    """Hardness = −mean NLL, k = ⌊ratio·B⌋ rows by topk, SimNPO mean over them, retain = HF token-mean NLL on
    randperm(B_retain)[:k]."""
    model = tiny_llama()
    beta, ratio = 4.5, 0.6
    cfg = _cfg({"name": "simnpo", "beta": beta}, {"name": "group", "ratio": ratio})
    trainer = _trainer(tmp_path, model, cfg)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    torch.manual_seed(123)
    got = trainer.compute_loss(model, batch)
    with torch.no_grad():
        ce, mask = _token_ce(model, batch["forget"])
        avg = (ce * mask).sum(-1) / mask.sum(-1)
        k = int(4 * ratio)
        top = torch.topk(-avg, k=k).indices
        forget = (-F.logsigmoid(beta * avg[top]) * 2 / beta).mean()
        torch.manual_seed(123)
        rows = torch.randperm(batch["retain"]["input_ids"].shape[0])[:k]
        rce, rmask = _token_ce(model, {key: v[rows] for key, v in batch["retain"].items()})
        retain_loss = (rce * rmask).sum() / rmask.sum()
    assert k == 2
    assert float(got.detach()) == pytest.approx(float(forget + retain_loss), rel=1e-5)


@pytest.mark.parametrize(
    ("kw", "pattern"),
    [
        ({"dro_scope": "global", "retain": {"name": "nll", "reduction": "sequence_sum"}},
         r"dro_scope='global' does not support the retain reduction 'sequence_sum'"),
        ({"dro_scope": "global", "retain_rows": "kept"}, r"dro_scope='global' does not support retain_rows 'kept'"),
        ({"dro_scope": "global", "forget_unit": "token", "objective": "satimp"},
         r"dro_scope='global' does not support forget_unit 'token'"),
        ({"forget_unit": "token", "objective": "satimp", "aggregator": "group"},
         r"forget_unit='token' does not work with the group aggregator"),
    ],
)
def test_trainer_refuses_released_options_it_cannot_run(tmp_path, kw, pattern):
    kw = {"objective": "ga", "aggregator": "dv", "retain": "nll", **kw}
    with pytest.raises(ValueError, match=pattern):
        UnlearnTrainer(model=tiny_llama(), args=args(tmp_path), forget_dataset=ListDataset(qa_items(4, seed=1)),
                       retain_dataset=ListDataset(qa_items(4, seed=2)), processing_class=PadTokenizer(), **kw)


def test_trainer_matches_released_groupsatimp(tmp_path):
    """GroupSatImp: SatImp's token mean over the answer tokens of the k kept rows (not a mean of per-row means)."""
    model = tiny_llama()
    beta1, gamma, ratio = 0.5, 0.1, 0.75
    cfg = _cfg({"name": "satimp", "beta1": beta1, "beta2": 1.0}, {"name": "group", "ratio": ratio},
               forget_weight=gamma)
    trainer = _trainer(tmp_path, model, cfg)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    torch.manual_seed(5)
    got = trainer.compute_loss(model, batch)
    with torch.no_grad():
        ce, mask = _token_ce(model, batch["forget"])
        top = torch.topk(-(ce * mask).sum(-1) / mask.sum(-1), k=3).indices
        p = (-ce[top]).exp()
        forget = (-(p**beta1 * (1 - p)) * ce[top])[mask[top]].mean()
        torch.manual_seed(5)
        rows = torch.randperm(batch["retain"]["input_ids"].shape[0])[:3]
        rce, rmask = _token_ce(model, {key: v[rows] for key, v in batch["retain"].items()})
        retain_loss = (rce * rmask).sum() / rmask.sum()
    assert mask[top].sum(-1).unique().numel() > 1  # rows of different lengths: the two means differ
    assert float(got.detach()) == pytest.approx(float(gamma * forget + retain_loss), rel=1e-5)


@pytest.mark.parametrize(
    ("objective", "aggregator", "expected"),
    [
        ("satimp", {"name": "dv", "beta": 0.005}, {"forget_unit": "token", "retain_rows": "all", "sign": "official",
                                                    "reduction": "sequence_sum"}),
        ("npo", {"name": "group", "ratio": 0.5}, {"forget_unit": "sample", "retain_rows": "kept",
                                                   "rounding": "floor", "rank_by": "likelihood"}),
    ],
)
def test_run_unlearn_passes_the_released_loss_to_the_trainer(tiny_model_dir, synth_dir, tmp_path, monkeypatch,
                                                             objective, aggregator, expected):
    from baldro.training import run_unlearn

    seen = {}
    original = UnlearnTrainer.train

    def spy(self, *a, **kw):
        seen["loss"] = self.loss_fn
        return original(self, *a, **kw)

    monkeypatch.setattr(UnlearnTrainer, "train", spy)
    out = run_unlearn({"model": {"path": str(tiny_model_dir)}, "data": {"source": str(synth_dir), "max_length": 96},
                       "objective": {"name": objective}, "aggregator": aggregator, "compat": "released",
                       "training": {"max_steps": 1, "per_device_train_batch_size": 4, "use_cpu": True,
                                    "save_strategy": "no", "logging_strategy": "no", "disable_tqdm": True},
                       "output_dir": str(tmp_path / "run")})
    loss = seen["loss"]
    got = {"forget_unit": loss.forget_unit, "retain_rows": loss.retain_rows,
           **{k: getattr(loss.aggregator, k) for k in ("sign", "rounding", "rank_by") if k in expected},
           **({"reduction": loss.retain.reduction} if "reduction" in expected else {})}
    assert got == expected
    assert yaml.safe_load((out / "config.yaml").read_text())["compat"] == "released"
