"""Every config value is type- and range-checked before a folder is touched or a model loaded (exit 2, one line)."""

from __future__ import annotations

import pytest
import yaml

from baldro.cli.main import main
from baldro.errors import ConfigError
from baldro.training.config_diff import config_changes
from baldro.training.unlearn import parse_unlearn, resolve_unlearn

HUB = {"model": {"path": "org/some-hub-model"}, "output_dir": "unused"}


def check_training(section):
    """The ``training`` section checked as part of a run config."""
    return parse_unlearn({**HUB, "training": section})


def _cfg(tmp_path, model):
    cfg = {
        "model": {"path": str(model)},
        "data": {"source": str(tmp_path / "data"), "max_length": 96},
        "objective": {"name": "npo"},
        "aggregator": {"name": "dv", "beta": 2.0},
        "retain": {"name": "nll", "weight": 1.0},
        "training": {"max_steps": 2, "use_cpu": True},
        "output_dir": str(tmp_path / "out" / "run"),
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.mark.parametrize(("override", "expected"), [
    ("training.learning_rate=fast", "training.learning_rate='fast' must be a number"),
    ("training.num_train_epochs=abc", "training.num_train_epochs='abc' must be a number"),
    ("training.per_device_train_batch_size=0", "training.per_device_train_batch_size=0 must be > 0"),
    ("training.per_device_train_batch_size=2.5", "training.per_device_train_batch_size=2.5 must be an integer"),
    ("training.max_steps=0", "training.max_steps=0 must be > 0 (or -1"),
    ("training.learning_rate=.nan", "training.learning_rate=nan must be a finite number"),
    ("training.use_cpu=maybe", "training.use_cpu='maybe' must be true or false"),
    ("retain.weight=abc", "retain.weight='abc' must be a number"),
    ("retain.weight=.inf", "retain.weight=inf must be a finite number"),
    ("forget_weight=-1", "forget_weight=-1 must be ≥ 0"),
    ("data.max_length=abc", "data.max_length='abc' must be an integer"),
    ("data.max_length=0", "data.max_length=0 must be > 0"),
    ("log_every=0", "log_every=0 must be > 0"),
    ("training.seed=99999999999", "training.seed=99999999999 must be < 4294967296"),
    ("training.learning_rate=1e39", "training.learning_rate=1e+39 is beyond float32's range"),
    ("aggregator.beta=1e39", "aggregator.beta=1e+39 is beyond float32's range (±3.4e38), which the loss is computed in"),
    ("objective={name: simnpo, delta: .nan}", "objective.delta=nan must be a finite number"),
    ("objective.beta=-.inf", "objective.beta=-inf must be a finite number"),
    ("forget_weight=1e39", "forget_weight=1e+39 is beyond float32's range"),
    ("training.use_cpu=yes", "training.use_cpu='yes' must be true or false"),
])
def test_bad_value_exits_2_with_one_line_before_anything_is_loaded_or_written(tiny_model_dir, tmp_path, capsys,
                                                                            override, expected):
    cfg = _cfg(tmp_path, tiny_model_dir)
    assert main(["unlearn", "--config", cfg, "--set", override]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"baldro: error: {expected}" or (expected in err and len(err.splitlines()) == 1), err
    assert not (tmp_path / "out").exists()  # no lock, no hidden .partial: the model loads only after both


def test_finetune_values_are_checked_too(tiny_model_dir, tmp_path, capsys):
    cfg = tmp_path / "ft.yaml"
    cfg.write_text(yaml.safe_dump({"model": {"path": str(tiny_model_dir)}, "data": {"source": "d"},
                                   "output_dir": str(tmp_path / "out" / "ft")}))
    assert main(["finetune", "--config", str(cfg), "--set", "data.max_length=-3"]) == 2
    assert "data.max_length=-3 must be > 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_declared_types_decide():
    check_training({"learning_rate": 1e-5, "lr_scheduler_type": "cosine", "report_to": ["tensorboard"], "max_steps": -1,
                    "data_seed": None, "hub_model_id": "x", "num_train_epochs": 2})  # an int is a number
    for section, message in [
        ({"gradient_accumulation_steps": -2}, "training.gradient_accumulation_steps=-2 must be > 0"),
        ({"learning_rate": True}, "training.learning_rate=True must be a number"),
        ({"per_device_train_batch_size": 2.0}, "training.per_device_train_batch_size=2.0 must be an integer"),
        ({"use_cpu": "yes"}, "training.use_cpu='yes' must be true or false"),
        ({"hub_model_id": 3}, "training.hub_model_id=3 must be a string or null"),
    ]:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            check_training(section)
    with pytest.raises(ConfigError, match="forget_weight=True must be a number"):
        parse_unlearn({**HUB, "forget_weight": True})


def test_fsdp_true_is_accepted_as_transformers_accepts_it():
    """``TrainingArguments(fsdp=True)`` turns FSDP on (its flag ``--fsdp`` alone means True), so ``training.fsdp: true``
    passes the check; the field's declared type (str | None) still refuses other non-strings."""
    from baldro.training.arguments import training_arguments

    check_training({"fsdp": True, "fsdp_config": {"version": 2}})
    check_training({"fsdp": "full_shard auto_wrap"})
    with pytest.raises(ConfigError, match=r"training.fsdp=3 must be a string or null or true or false"):
        check_training({"fsdp": 3})
    args = training_arguments({"fsdp": True, "use_cpu": True}, "/tmp/unused-fsdp-run")
    assert args.fsdp is True and args.fsdp_plugin_args["state_dict_type"] == "FULL_STATE_DICT"


def test_resume_compares_only_result_changing_keys():
    saved = resolve_unlearn({**HUB, "aggregator": {"name": "dv", "beta": 2.0}, "training": {"seed": 0, "logging_steps": 5}})
    new = resolve_unlearn({**HUB, "aggregator": {"name": "dv", "beta": 5}, "resume": True,
                           "training": {"seed": 0, "logging_steps": 1, "max_steps": 4}})
    assert config_changes(saved, new) == {"aggregator.beta": [2.0, 5], "training.max_steps": [None, 4]}


def test_resume_compares_validated_fields_not_spellings():
    """``beta: 2`` is ``beta: 2.0``, a default written out is the default left out: no change."""
    saved = resolve_unlearn({**HUB, "aggregator": {"name": "dv"}, "training": {}})
    new = resolve_unlearn({**HUB, "aggregator": {"name": "dv", "beta": 2}, "training": {"seed": 42}})
    assert config_changes(saved, new) == {}
    renamed = resolve_unlearn({**HUB, "aggregator": {"name": "dv"}, "objective": {"name": "ga"}})
    assert config_changes(saved, renamed) == {"objective.beta": [0.1, None], "objective.name": ["npo", "ga"]}


@pytest.mark.parametrize(("override", "expected"), [
    ("model.dtype=float8", "model.dtype='float8' must be one of float32, bfloat16, float16, auto"),
    ("lora={r: 0}", "lora.r=0 must be > 0"),
    ("lora={r: 4, dropout: 1.5}", "lora.dropout=1.5 must be < 1"),
    ("lora={r: 4, merge: perhaps}", "lora.merge='perhaps' must be true or false"),
    ("overwrite=yes please", "overwrite='yes please' must be true or false"),
])
def test_model_lora_and_flags_are_checked_before_the_lock(tiny_model_dir, tmp_path, capsys, override, expected):
    cfg = _cfg(tmp_path, tiny_model_dir)
    assert main(["unlearn", "--config", cfg, "--set", override]) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_local_model_path_without_a_model_is_refused_before_the_lock(tmp_path, capsys):
    cfg = _cfg(tmp_path, tmp_path / "no_model")
    assert main(["unlearn", "--config", cfg]) == 2
    assert "no_model is not a model folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
