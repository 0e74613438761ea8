"""Typed run configs (issue 14 item 7): a config is parsed once, at the entry, and the run reads the typed object."""

from __future__ import annotations

import pytest
import yaml

from baldro.errors import ConfigError
from baldro.training import compat as compat_mod
from baldro.training import finetune as finetune_mod
from baldro.training import unlearn as unlearn_mod
from baldro.training.finetune import parse_finetune, resolve_finetune
from baldro.training.schema import FinetuneConfig, UnlearnConfig
from baldro.training.unlearn import parse_unlearn, resolve_unlearn, run_unlearn

HUB = {"model": {"path": "org/some-hub-model"}, "output_dir": "unused"}
TRAINING = {
    "max_steps": 1,
    "per_device_train_batch_size": 4,
    "learning_rate": 1e-3,
    "save_strategy": "no",
    "disable_tqdm": True,
    "use_cpu": True,
    "logging_strategy": "no",
}


def test_parse_unlearn_builds_typed_components_and_weights_from_the_defaults():
    parsed = parse_unlearn({**HUB, "forget_weight": 2, "retain": {"name": "nll", "weight": 0.5}})
    assert isinstance(parsed, UnlearnConfig)
    loss = parsed.loss
    assert type(loss.objective).__name__ == "NPO" and loss.objective.beta == pytest.approx(0.1)
    assert type(loss.aggregator).__name__ == "MeanAggregator" and type(loss.retain).__name__ == "RetainNLL"
    assert loss.retain_aggregator is None and parsed.retain_aggregator is None
    assert parsed.objective.name == "npo" and parsed.retain.weight == 0.5  # the validated sections, typed
    assert (parsed.forget_weight, parsed.retain_weight) == (2.0, 0.5)
    assert isinstance(parsed.forget_weight, float)
    assert (parsed.dro_scope, parsed.log_every, parsed.chunk_tokens) == ("micro", 1, 1024)
    assert parsed.data.forget_split == "forget10" and parsed.data.kind == "qa"
    assert parsed.model.path == "org/some-hub-model" and parsed.model.dtype == "float32"
    assert parsed.raw["model"] == {"path": "org/some-hub-model", "dtype": "float32"}
    assert parsed.lora is None and parsed.output_dir == "unused" and not (parsed.overwrite or parsed.resume)
    # raw is the resolved mapping that config.yaml records and --resume compares
    assert parsed.raw == resolve_unlearn({**HUB, "forget_weight": 2, "retain": {"name": "nll", "weight": 0.5}})


def test_parse_unlearn_without_a_retain_term_has_lambda_zero():
    parsed = parse_unlearn({**HUB, "retain": None})
    assert parsed.retain is None and parsed.loss.retain is None and parsed.retain_weight == 0.0


def test_parse_unlearn_refuses_bad_input_before_anything_runs():
    with pytest.raises(ConfigError, match="did you mean aggregator"):
        parse_unlearn({**HUB, "agregator": {"name": "dv"}})
    with pytest.raises(ConfigError, match="dro_scope"):
        parse_unlearn({**HUB, "dro_scope": "everything"})


def test_parse_unlearn_checks_the_model_folder_for_training(tmp_path):
    (tmp_path / "config.json").write_text('{"quantization_config": {"quant_method": "gguf"}}', encoding="utf-8")
    with pytest.raises(ConfigError, match="quantization_config"):
        parse_unlearn({"model": {"path": str(tmp_path)}, "output_dir": str(tmp_path / "out")})
    parsed = parse_unlearn({"model": {"path": str(tmp_path)}, "output_dir": "x", "lora": {"r": 4}})
    assert parsed.raw["lora"] == {"r": 4} and parsed.lora.r == 4 and parsed.lora.alpha == 16


def test_parse_finetune_is_a_finetune_config_with_its_defaults():
    parsed = parse_finetune(HUB)
    assert isinstance(parsed, FinetuneConfig) and not isinstance(parsed, UnlearnConfig)
    assert parsed.raw["data"] == {"split": "full", "kind": "qa", "max_length": 512} and parsed.data.split == "full"
    assert parsed.raw == resolve_finetune(HUB)
    with pytest.raises(ConfigError, match="data.kind"):
        parse_finetune({**HUB, "data": {"kind": "images"}})


def test_run_unlearn_parses_once_and_the_trainer_uses_the_parsed_components(
    tiny_model_dir, synth_dir, tmp_path, monkeypatch
):
    config = {
        "model": {"path": str(tiny_model_dir)},
        "data": {"source": str(synth_dir), "max_length": 96},
        "objective": {"name": "npo", "beta": 0.1},
        "aggregator": {"name": "dv", "beta": 2.0},
        "training": dict(TRAINING),
        "output_dir": str(tmp_path / "ul"),
    }
    calls = {"build_loss": 0}
    real_build_loss, real_build = compat_mod.build_loss, unlearn_mod.build_unlearn_trainer

    def counting_build_loss(cfg):
        calls["build_loss"] += 1
        return real_build_loss(cfg)

    built = []

    def recording_build(run):
        trainer = real_build(run)
        built.append((run.config, trainer))
        return trainer

    monkeypatch.setattr(compat_mod, "build_loss", counting_build_loss)
    monkeypatch.setattr(unlearn_mod, "build_unlearn_trainer", recording_build)
    out = run_unlearn(config)
    assert calls["build_loss"] == 1  # the components are built once, when the config is parsed
    (parsed, trainer), = built
    assert isinstance(parsed, UnlearnConfig)
    assert trainer.loss_fn.objective is parsed.loss.objective and trainer.loss_fn.aggregator is parsed.loss.aggregator
    assert yaml.safe_load((out / "config.yaml").read_text(encoding="utf-8")) == parsed.raw

    # an already parsed config is not parsed again
    again = parse_unlearn({**config, "output_dir": str(tmp_path / "ul2")})
    monkeypatch.setattr(unlearn_mod, "parse_unlearn", lambda _: pytest.fail("parsed twice"))
    monkeypatch.setattr(UnlearnConfig, "parse", lambda *_: pytest.fail("parsed twice"))
    assert run_unlearn(again) == (tmp_path / "ul2").resolve()


def test_run_finetune_accepts_a_parsed_config(tiny_model_dir, synth_dir, tmp_path, monkeypatch):
    parsed = parse_finetune({
        "model": {"path": str(tiny_model_dir)},
        "data": {"source": str(synth_dir), "max_length": 96},
        "training": dict(TRAINING),
        "output_dir": str(tmp_path / "ft"),
    })
    monkeypatch.setattr(FinetuneConfig, "parse", lambda *_: pytest.fail("parsed twice"))
    assert finetune_mod.run_finetune(parsed) == (tmp_path / "ft").resolve()
