"""The paper presets are the released scripts: every setting equals what the script passes (docs table in sync)."""

from __future__ import annotations

from pathlib import Path

import pytest

from baldro.errors import ConfigError
from baldro.experiments.paper_presets import (
    DIFFERENCES,
    docs_text,
    experiment,
    grid_points,
    main,
    matches,
    ours,
    paper_experiments,
    select,
)
from baldro.experiments.paper_scripts import SCRIPTS, settings_of

DOCS = Path(__file__).resolve().parents[2] / "docs" / "paper-presets.md"


def test_docs_table_is_generated_from_the_presets() -> None:
    assert DOCS.read_text(encoding="utf-8") == docs_text(), \
        "run: python -m baldro.experiments.paper_presets --write-docs docs/paper-presets.md"


def test_check_docs_flags_an_edited_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edited = tmp_path / "paper-presets.md"
    edited.write_text(docs_text().replace("`training.weight_decay`: 0.01", "`training.weight_decay`: 0.1"))
    assert main(["--check-docs", str(edited)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main(["--write-docs", str(edited)]) == 0 and main(["--check-docs", str(edited)]) == 0


def test_every_preset_holds_every_released_value_except_the_documented_differences() -> None:
    experiments = paper_experiments()
    checked = 0
    for exp in experiments.values():
        for setting, value in settings_of(exp.script).items():
            documented = (exp.benchmark, setting) in DIFFERENCES
            assert matches(exp, setting, value) is not documented, (exp.name, setting, ours(exp, setting), value)
            checked += 1
    assert checked > 1000  # 46 experiments × ~25 settings
    # every released table row the paper has (3 TOFU splits × 9, 2 MUSE corpora × 9) and the Fig. 4 grid
    assert len(experiments) == 46 and len(SCRIPTS) == 18
    assert all(value.file for script in SCRIPTS for value in settings_of(script).values())


def test_tofu_npo_forget01_is_train_tofu_npo_sh() -> None:
    # scripts/unlearn/tofu/train_tofu_npo.sh: lr 1e-5..5e-5, "8 2" / "8 4", epochs 5 / 10; NPO.yaml β 0.1;
    # tofu/default.yaml warmup_epochs 1, weight decay 0.01; finetune.yaml seed 0, paged_adamw_32bit, bf16
    exp = experiment("tofu_forget01_npo")
    points = grid_points(exp)
    assert exp.size == len(points) == 5 * 2 * 2
    lrs = {c["training"]["learning_rate"] for _, c in points}
    assert lrs == {1e-5, 2e-5, 3e-5, 4e-5, 5e-5}
    assert {(c["training"]["per_device_train_batch_size"], c["training"]["gradient_accumulation_steps"],
             c["training"]["num_train_epochs"]) for _, c in points} == {(8, 2, 5), (8, 2, 10), (8, 4, 5), (8, 4, 10)}
    config = points[0][1]
    assert config["model"] == {"path": "open-unlearning/tofu_Llama-2-7b-chat-hf_full", "dtype": "bfloat16",
                               "attn_implementation": "flash_attention_2"}
    assert config["data"] == {"source": "locuslab/TOFU", "format": "llama-2-7b-chat", "max_length": 512,
                              "forget_split": "forget01", "retain_split": "retain99"}
    assert config["objective"] == {"name": "npo", "beta": 0.1} and config["aggregator"] == {"name": "mean"}
    assert config["retain"] == {"name": "nll", "weight": 1.0} and config["forget_weight"] == 1.0
    assert config["compat"] == "released" and config["dro_scope"] == "micro" and config["eval_every"] == "epoch"
    t = config["training"]
    assert (t["weight_decay"], t["warmup_epochs"], t["lr_scheduler_type"], t["seed"], t["optim"], t["bf16"],
            t["gradient_checkpointing"]) == (0.01, 1.0, "linear", 0, "paged_adamw_32bit", True, True)
    assert points[0][0] == "lr1e-05_b8_ga2_e5"


def test_dv_and_group_presets_carry_the_scripts_temperature_and_ratio() -> None:
    # train_tofu_drnpo.sh: beta_dv_forget ∈ {0.5, 1, 2, 5, 10}; train_tofu_drsimnpo.sh: sigma_forget=1.0
    drnpo = grid_points(experiment("tofu_forget05_npo_dv"))
    assert len(drnpo) == 100 and {c["aggregator"]["beta"] for _, c in drnpo} == {0.5, 1.0, 2.0, 5.0, 10.0}
    drsim = grid_points(experiment("tofu_forget10_simnpo_dv"))
    assert len(drsim) == 3 * 2 * 2 * 2 * 2 and {c["aggregator"]["beta"] for _, c in drsim} == {1.0}
    assert {(c["objective"]["beta"], c["objective"]["delta"], c["forget_weight"]) for _, c in drsim} == {
        (b, d, g) for b in (3.5, 4.5) for d in (0.0, 1.0) for g in (0.125, 0.25)}
    # train_tofu_groupsatimp.sh: 4 × 8, lr {1e-5, 2e-5, 5e-5}, alpha {1, 0.1, 0.01}, beta1 {5, 6}, gamma 0.1
    gsat = grid_points(experiment("tofu_forget01_satimp_g"))
    assert len(gsat) == 18
    assert {(c["retain"]["weight"], c["objective"]["beta1"]) for _, c in gsat} == {
        (a, b) for a in (1.0, 0.1, 0.01) for b in (5.0, 6.0)}
    assert all(c["aggregator"] == {"name": "group", "ratio": 0.5} and c["forget_weight"] == 0.1
               and c["training"]["per_device_train_batch_size"] == 4
               and c["training"]["gradient_accumulation_steps"] == 8 for _, c in gsat)


def test_muse_presets_have_no_warm_up_a_constant_rate_and_no_weight_decay() -> None:
    # muse/default.yaml: lr_scheduler_type constant, no warmup_epochs; finetune.yaml weight_decay 0.0, seed 0;
    # train_muse_npo.sh: 4 × 8, lr 1e-5..5e-5, alpha {1, 2, 5, 10}; tokenizer meta-llama/Llama-2-7b-chat-hf
    points = grid_points(experiment("muse_books_npo"))
    assert len(points) == 20 and {c["retain"]["weight"] for _, c in points} == {1.0, 2.0, 5.0, 10.0}
    config = points[0][1]
    assert config["model"]["path"] == "muse-bench/MUSE-Books_target"
    assert config["model"]["tokenizer"] == "meta-llama/Llama-2-7b-chat-hf"
    assert config["data"] == {"source": "muse-bench/MUSE-Books", "kind": "text", "forget_split": "forget",
                              "retain_split": "retain1", "max_length": 2048}
    t = config["training"]
    assert "warmup_epochs" not in t and t["lr_scheduler_type"] == "constant" and t["weight_decay"] == 0.0
    assert (t["per_device_train_batch_size"], t["gradient_accumulation_steps"], t["seed"]) == (4, 8, 0)
    assert "eval_every" not in config  # MUSE: evaluated after training (a documented difference)
    # train_muse_drsatimp.sh: "4 4" / "4 8" and the DV grid; SatImp.yaml beta1 5, beta2 1
    dr = grid_points(experiment("muse_news_satimp_dv"))
    assert len(dr) == 5 * 2 * 5 and {c["aggregator"]["beta"] for _, c in dr} == {0.5, 1.0, 2.0, 5.0, 10.0}
    assert dr[0][1]["objective"] == {"name": "satimp", "beta1": 5.0, "beta2": 1.0}


def test_the_fig4_grid_shares_the_dv_runs_and_has_a_row_per_beta() -> None:
    fig4, dv = experiment("tofu_forget01_npo_dv_beta"), experiment("tofu_forget01_npo_dv")
    assert fig4.runs == dv.runs and fig4.rows_by == "aggregator.beta"
    assert [name for name, _ in grid_points(fig4)] == [name for name, _ in grid_points(dv)]


def test_overrides_pin_a_key_in_every_point_and_collapse_its_axis() -> None:
    exp = experiment("tofu_forget01_npo")
    points = grid_points(exp, {"training.learning_rate": 2e-5, "training.per_device_train_batch_size": 2,
                               "training.gradient_accumulation_steps": 1, "training.num_train_epochs": 1})
    assert [name for name, _ in points] == ["lr2e-05_b2_ga1_e1"]
    assert points[0][1]["training"]["learning_rate"] == 2e-5
    assert exp.config["training"]["learning_rate"] == 1e-5  # the preset itself is untouched


def test_selection_by_name_and_pattern_with_clear_errors() -> None:
    assert [e.name for e in select(["tofu_forget01_npo_g", "tofu_forget01_npo*"])] == [
        "tofu_forget01_npo_g", "tofu_forget01_npo", "tofu_forget01_npo_dv", "tofu_forget01_npo_dv_beta"]
    with pytest.raises(ConfigError, match="unknown paper experiment 'tofu_forget01_npo_gg'; did you mean"):
        select(["tofu_forget01_npo_gg"])
    with pytest.raises(ConfigError, match="'wmdp_\\*' names no paper experiment"):
        select(["wmdp_*"])
