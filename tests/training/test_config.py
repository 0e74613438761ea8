"""Configs: YAML + --set, nearest-name errors, TrainingArguments mapping, every preset in configs/ validates."""

from __future__ import annotations

from pathlib import Path

import pytest

from baldro.errors import ConfigError
from baldro.training.arguments import training_arguments
from baldro.training.config import apply_overrides, load_yaml
from baldro.training.finetune import resolve_finetune
from baldro.training.unlearn import resolve_unlearn

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PRESETS = sorted(CONFIGS.glob("*.yaml"))


def test_yaml_reads_exponent_floats_and_overrides_nest(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  learning_rate: 1e-5\nobjective: {name: npo}\n")
    cfg = apply_overrides(load_yaml(path), ["training.weight_decay=1e-2", "objective.beta=0.2", "lora.r=4",
                                           "lora.target_modules=[q_proj, v_proj]", "retain=null"])
    assert cfg["training"] == {"learning_rate": 1e-5, "weight_decay": 0.01}
    assert cfg["objective"] == {"name": "npo", "beta": 0.2}
    assert cfg["lora"] == {"r": 4, "target_modules": ["q_proj", "v_proj"]}
    assert cfg["retain"] is None
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(cfg, ["training.learning_rate"])
    with pytest.raises(ConfigError, match="objective.name is a value"):
        apply_overrides(cfg, ["objective.name.x=1"])


def test_unknown_keys_name_the_nearest_valid_ones():
    base = {"model": {"path": "m"}, "data": {"source": "d"}, "output_dir": "o"}
    with pytest.raises(ConfigError, match="learning_rate"):
        resolve_unlearn({**base, "training": {"learning_rat": 1e-5}})
    with pytest.raises(ConfigError, match="aggregator"):
        resolve_unlearn({**base, "agregator": {"name": "dv"}})
    with pytest.raises(ConfigError, match="forget_split"):
        resolve_unlearn({**base, "data": {"source": "d", "forget_splt": "forget05"}})
    with pytest.raises(ConfigError, match=r"did you mean 'dv'"):
        resolve_unlearn({**base, "aggregator": {"name": "dvv"}})
    with pytest.raises(ConfigError, match="no parameter 'beta'"):
        resolve_unlearn({**base, "aggregator": {"name": "group", "beta": 2.0}})
    with pytest.raises(ConfigError, match="dro_scope"):
        resolve_unlearn({**base, "dro_scope": "everything"})
    with pytest.raises(ConfigError, match="top-level key output_dir"):
        resolve_finetune({**base, "training": {"output_dir": "x"}})


def test_every_training_argument_is_reachable(tmp_path):
    args = training_arguments({"learning_rate": 3e-4, "gradient_accumulation_steps": 3, "report_to": ["tensorboard"],
                               "max_grad_norm": 0.5, "use_cpu": True}, tmp_path, remove_unused_columns=False)
    assert (args.learning_rate, args.gradient_accumulation_steps, args.max_grad_norm) == (3e-4, 3, 0.5)
    assert args.report_to == ["tensorboard"] and args.remove_unused_columns is False
    assert training_arguments({"use_cpu": True}, tmp_path).report_to in ("none", [], ["none"])
    with pytest.raises(ConfigError, match="invalid training arguments"):
        training_arguments({"lr_scheduler_type": "zigzag", "use_cpu": True}, tmp_path)


def test_presets_exist_for_the_paper_grid_and_the_tiny_model():
    names = {p.stem for p in PRESETS}
    for base in ("ga", "graddiff", "npo", "simnpo", "satimp"):
        for variant in ("", "_g", "_dv"):
            assert f"tofu_{base}{variant}" in names and f"tiny_{base}{variant}" in names
    assert {"tiny_finetune_base", "tiny_finetune_target", "tiny_finetune_retain", "muse_news_npo_dv"} <= names


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_validates(path, tmp_path):
    cfg = load_yaml(path)
    resolved = (resolve_finetune if "finetune" in path.stem else resolve_unlearn)(cfg)
    if path.stem.startswith("tiny_"):
        training_arguments(resolved["training"], tmp_path)
    if path.stem.startswith("tofu_") and "finetune" not in path.stem:
        t = resolved["training"]
        assert t["learning_rate"] == 1e-5 and t["num_train_epochs"] == 10 and t["weight_decay"] == 0.01
        assert t["per_device_train_batch_size"] * t["gradient_accumulation_steps"] == 32


def test_warmup_ratio_works_on_every_transformers_version(tmp_path):
    args = training_arguments({"warmup_ratio": 0.25, "max_steps": 8, "use_cpu": True}, tmp_path)
    assert args.get_warmup_steps(8) == 2


def test_warmup_epochs_is_open_unlearnings_floor_of_epoch_rows_over_the_effective_batch(tmp_path):
    from baldro.training.arguments import apply_warmup_epochs

    section = {"warmup_epochs": 1.0, "per_device_train_batch_size": 8, "gradient_accumulation_steps": 2,
               "use_cpu": True}
    args = training_arguments(section, tmp_path)
    assert args.warmup_steps == 0  # not a TrainingArguments field: set once the rows are known
    apply_warmup_epochs(args, section, 40)  # forget01: 40 rows // (8 * 2) = 2
    assert args.warmup_steps == 2
    apply_warmup_epochs(args, {**section, "warmup_epochs": 1.5}, 400)  # 600 // 16 = 37
    assert args.warmup_steps == 37


@pytest.mark.parametrize(("section", "message"), [
    ({"warmup_epochs": -1}, "training.warmup_epochs=-1 must be ≥ 0"),
    ({"warmup_epochs": "one"}, "training.warmup_epochs='one' must be a number"),
    ({"warmup_epochs": 1, "warmup_ratio": 0.1}, "set either training.warmup_epochs or training.warmup_ratio"),
])
def test_bad_warmup_epochs_is_refused(tmp_path, section, message):
    with pytest.raises(ConfigError, match=message):
        training_arguments({**section, "use_cpu": True}, tmp_path)


def test_an_unlearning_run_warms_up_for_warmup_epochs_of_the_forget_set(tmp_path, synth_dir, tiny_model_dir):
    import json

    from baldro.training import run_unlearn

    # forget10 of the small benchmark: 10 rows, batch 5 → 2 optimizer steps an epoch; 1 epoch of warm-up = 2 steps
    out = run_unlearn({
        "model": {"path": str(tiny_model_dir)},
        "data": {"source": str(synth_dir), "forget_split": "forget10", "retain_split": "retain90"},
        "training": {"num_train_epochs": 3, "learning_rate": 1e-3, "per_device_train_batch_size": 5,
                     "warmup_epochs": 1.0, "lr_scheduler_type": "linear", "logging_steps": 1, "use_cpu": True,
                     "save_strategy": "no", "disable_tqdm": True},
        "output_dir": str(tmp_path / "run"),
    })
    lrs = [row["learning_rate"] for row in json.loads((out / "trainer_state.json").read_text())["log_history"]
           if "learning_rate" in row]
    assert len(lrs) == 6
    # the rate each step used: 0 and 1/2 of the peak during the 2 warm-up steps, then linear decay over 4 steps
    assert lrs == pytest.approx([0, 5e-4, 1e-3, 7.5e-4, 5e-4, 2.5e-4])


def test_a_key_given_twice_in_one_mapping_is_refused_naming_both_lines(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("training:\n  learning_rate: 1e-5\nobjective: {name: npo}\ntraining:\n  max_steps: 3\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml: line 4: key 'training' appears twice in one mapping \(first "
                                          r"on line 1\); keep one"):
        load_yaml(path)
    path.write_text("aggregator: {name: dv, beta: 1, beta: 2}\n")
    with pytest.raises(ConfigError, match="line 1: key 'beta' appears twice"):
        load_yaml(path)
    with pytest.raises(ConfigError, match="--set value '{a: 1, a: 2}': line 1: key 'a' appears twice"):
        apply_overrides({}, ["lora={a: 1, a: 2}"])


def test_only_true_and_false_are_booleans_so_no_off_yes_stay_strings(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("training: {save_strategy: no, logging_strategy: off, bf16: false, use_cpu: True}\n")
    assert load_yaml(path)["training"] == {"save_strategy": "no", "logging_strategy": "off", "bf16": False,
                                           "use_cpu": True}
    cfg = apply_overrides({}, ["training.save_strategy=no", "name=yes", "training.use_cpu=true", "x=~"])
    assert cfg == {"training": {"save_strategy": "no", "use_cpu": True}, "name": "yes", "x": None}
    args = training_arguments({"save_strategy": "no", "use_cpu": True}, tmp_path / "out")
    assert str(args.save_strategy.value) == "no"
