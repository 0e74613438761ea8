"""configs/*.yaml are generated from the Python presets, and `baldro demo` runs exactly the tiny presets."""

from __future__ import annotations

from pathlib import Path

import pytest

import baldro.training as training
from baldro.experiments import demo as demo_module
from baldro.experiments.demo import demo_plan
from baldro.experiments.methods import BASES, VARIANTS, method_config
from baldro.experiments.presets import (
    DEMO_ONLY_TRAINING,
    DemoSettings,
    describe,
    main,
    preset_files,
    stale_files,
    write_presets,
)
from baldro.training.config import load_yaml

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_configs_folder_is_in_sync_with_the_presets() -> None:
    assert stale_files(CONFIGS) == [], "run: python -m baldro.experiments.presets --write configs"


def test_written_files_read_back_as_the_preset_configs(tmp_path: Path) -> None:
    write_presets(tmp_path)
    for name, (_, config) in preset_files().items():
        assert load_yaml(tmp_path / name) == config, name
    assert stale_files(tmp_path) == []


def test_check_reports_an_edited_a_missing_and_a_foreign_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_presets(tmp_path)
    path = tmp_path / "tiny_npo_dv.yaml"
    path.write_text(path.read_text().replace("beta: 2.0", "beta: 3.0"))
    (tmp_path / "tofu_ga.yaml").unlink()
    (tmp_path / "mine.yaml").write_text("a: 1\n")
    assert stale_files(tmp_path) == ["tiny_npo_dv.yaml", "tofu_ga.yaml", "mine.yaml"]
    assert main(["--check", str(tmp_path)]) == 1
    assert "tiny_npo_dv.yaml" in capsys.readouterr().err
    assert main(["--write", str(tmp_path)]) == 0 and stale_files(tmp_path) == []
    assert not (tmp_path / "mine.yaml").exists()


def test_every_method_section_is_the_method_preset() -> None:
    for name, (_, config) in preset_files().items():
        if "finetune" in name:
            continue
        stem = name.removesuffix(".yaml")
        base, variant = stem.split("_", 2 if stem.startswith("muse_") else 1)[-1], ""
        for v in sorted((v for v in VARIANTS if v), key=len, reverse=True):
            if base.endswith(f"_{v}"):
                base, variant = base.removesuffix(f"_{v}"), v
        assert base in BASES
        expected = method_config(base + (f"+{variant}" if variant else ""))
        assert config["objective"] == expected["objective"] and config["aggregator"] == expected["aggregator"]
        assert config["retain"] == expected["retain"]
        assert config["forget_weight"] == expected.get("forget_weight", 1.0)


def test_header_line_is_built_from_the_values() -> None:
    assert describe("npo+dv") == ("NPO (beta 0.1) + retain NLL (lambda 1); aggregator: BalDRO-DV: soft maximum "
                                  "(beta 2, sign paper).")
    assert describe("ga").startswith("gradient ascent on the forget set, no retain term; aggregator: mean")
    assert "(beta 4.5, delta 0, gamma 0.125)" in describe("simnpo+g")


def _plan_configs(settings: DemoSettings, seeds: int = 2) -> dict[str, dict]:
    """Every config the demo hands to a training stage, by stage name."""
    phases = demo_plan(Path("demo_out"), ("npo", "npo+g", "npo+dv", "simnpo+dv", "satimp", "ga"), seeds, "forget10",
                       settings)
    return {stage.name: stage.args[0] for jobs in phases for job in jobs for stage in job.stages
            if stage.build in (demo_module._unlearn, demo_module._finetune)}


@pytest.mark.parametrize("method", ["npo", "npo+g", "npo+dv", "simnpo+dv", "satimp", "ga"])
def test_demo_unlearning_runs_equal_the_tiny_presets(method: str) -> None:
    configs = _plan_configs(DemoSettings())
    preset = load_yaml(CONFIGS / f"tiny_{method.replace('+', '_')}.yaml")
    for seed in (0, 1):
        ran = configs[f"unlearn {method} seed {seed}"]
        assert ran["output_dir"] == f"demo_out/runs/{method.replace('+', '_')}/seed{seed}/train/model"
        assert ran["training"]["seed"] == seed
        expected = {**preset, "output_dir": ran["output_dir"], "training": {**preset["training"], "seed": seed}}
        assert ran == expected
    assert preset["training"]["warmup_steps"] == 0 and "warmup_ratio" not in preset["training"]


def test_demo_finetunes_equal_the_tiny_finetune_presets() -> None:
    configs = _plan_configs(DemoSettings())
    for stage, stem in (("base model (general split)", "base"), ("target model (full + general replay)", "target"),
                        ("retain model (retain90 + general replay)", "retain")):
        assert configs[stage] == load_yaml(CONFIGS / f"tiny_finetune_{stem}.yaml"), stage


def test_what_reaches_run_unlearn_is_the_preset_plus_the_demo_only_keys(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    seen: list[dict] = []
    monkeypatch.setattr(training, "run_unlearn", lambda config, callbacks=(): seen.append(config) or tmp_path)
    config = _plan_configs(DemoSettings())["unlearn npo+dv seed 0"]
    demo_module._unlearn(tmp_path / "train", config)
    preset = load_yaml(CONFIGS / "tiny_npo_dv.yaml")
    assert seen == [{**preset, "output_dir": str(tmp_path / "train" / "model"),
                     "training": {**preset["training"], **DEMO_ONLY_TRAINING}}]


def test_the_demo_adds_only_its_curve_keys_to_the_preset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With the curve keys (what demo_plan passes), run_unlearn gets the preset + demo-only training keys + eval_every
    / eval, and the trajectory callback built from that config."""
    import baldro.evaluation.trajectory as trajectory
    import baldro.training.unlearn as unlearn

    seen: list[tuple[dict, list]] = []
    monkeypatch.setattr(training, "run_unlearn", lambda config, callbacks=(): seen.append((config, list(callbacks))) or tmp_path)
    monkeypatch.setattr(unlearn, "resolve_unlearn", lambda config: {"resolved": config})
    monkeypatch.setattr(trajectory, "trajectory_callback", lambda cfg: ("callback for", cfg["resolved"]["eval_every"]))
    settings = DemoSettings()
    curve = demo_module.curve_keys(settings, tmp_path / "TOFU_EVAL.json")
    assert curve == {"eval_every": 4, "eval": {"retain_logs": str(tmp_path / "TOFU_EVAL.json"), "batch_size": 64,
                                               "max_new_tokens": 48, "max_length": 512}}
    config = _plan_configs(settings)["unlearn npo+dv seed 0"]
    demo_module._unlearn(tmp_path / "train", config, curve)
    preset = load_yaml(CONFIGS / "tiny_npo_dv.yaml")
    expected = {**preset, "output_dir": str(tmp_path / "train" / "model"),
                "training": {**preset["training"], **DEMO_ONLY_TRAINING}, **curve}
    assert seen == [(expected, [("callback for", 4)])]


def test_seeds_default_to_the_settings_three_and_one_when_quick() -> None:
    assert DemoSettings().seeds == 3 and DemoSettings.quick().seeds == 1
    assert "seeds" not in DemoSettings().cache_key()


def test_own_phrasings_enters_the_cache_key_only_when_set() -> None:
    from dataclasses import replace

    plain = DemoSettings().cache_key()
    assert "own_phrasings" not in plain  # folders cached before the option existed stay valid
    assert replace(DemoSettings(), own_phrasings=True).cache_key() == {**plain, "own_phrasings": True}
