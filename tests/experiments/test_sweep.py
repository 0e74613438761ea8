"""`baldro sweep`: a two-point grid on the tiny model; an interrupted sweep resumes and skips the finished point."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

import baldro.training as training
from baldro.cli.main import main
from baldro.experiments.sweep import grid_points, parse_grid, point_name


def _base_config(path: Path, model: Path, data: Path) -> Path:
    cfg = {
        "model": {"path": str(model)},
        "data": {"source": str(data), "forget_split": "forget10", "retain_split": "retain90"},
        "objective": {"name": "npo", "beta": 0.1},
        "aggregator": {"name": "dv", "beta": 2.0},
        "retain": {"name": "nll", "weight": 1.0},
        "training": {"num_train_epochs": 1, "learning_rate": 1e-3, "per_device_train_batch_size": 4,
                     "save_strategy": "no", "report_to": "none", "use_cpu": True, "disable_tqdm": True},
        "output_dir": "unused",
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_grid_parsing_and_point_names() -> None:
    grid = parse_grid(["aggregator.beta=0.5,2", "training.learning_rate=1e-3"])
    assert grid == [("aggregator.beta", ["0.5", "2"]), ("training.learning_rate", ["1e-3"])]
    points = grid_points(grid)
    assert [point_name(p) for p in points] == [
        "aggregator.beta=0.5__training.learning_rate=1e-3", "aggregator.beta=2__training.learning_rate=1e-3"]


def test_bad_grid_spec_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], synth_dir: Path,
                                         tiny_model_dir: Path) -> None:
    cfg = _base_config(tmp_path / "base.yaml", tiny_model_dir, synth_dir)
    assert main(["sweep", "--config", str(cfg), "--grid", "aggregator.beta", "--out", str(tmp_path / "s")]) == 2
    assert "expected key=value1,value2" in capsys.readouterr().err


def test_sweep_runs_grid_and_resumes_after_interruption(tmp_path: Path, synth_dir: Path, tiny_model_dir: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _base_config(tmp_path / "base.yaml", tiny_model_dir, synth_dir)
    out = tmp_path / "sweep"
    from baldro.evaluation.tofu import evaluate_tofu

    evaluate_tofu(tiny_model_dir, synth_dir, out_dir=tmp_path / "retain_eval", max_new_tokens=4, progress=False)
    args = ["sweep", "--config", str(cfg), "--grid", "aggregator.beta=0.5,5", "--max-new-tokens", "4", "--out", str(out),
            "--retain-logs", str(tmp_path / "retain_eval" / "TOFU_EVAL.json")]
    real = training.run_unlearn
    calls: list[str] = []

    def interrupted(config: dict) -> Path:
        calls.append(config["aggregator"]["beta"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(config)

    monkeypatch.setattr(training, "run_unlearn", interrupted)
    assert main(args) == 130  # Ctrl-C: one line, exit 130
    first = out / "aggregator.beta=0.5" / "seed0" / "eval" / "TOFU_SUMMARY.json"
    assert first.is_file()
    stamp = first.stat().st_mtime_ns

    calls.clear()
    monkeypatch.setattr(training, "run_unlearn", lambda config: calls.append(config["aggregator"]["beta"]) or real(config))
    assert main(args) == 0
    assert calls == [5]
    assert first.stat().st_mtime_ns == stamp
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["point"] for r in rows] == ["aggregator.beta=0.5", "aggregator.beta=5"]
    assert all(0 <= float(r["forget_quality"]) <= 1 for r in rows)
    assert (out / "results.md").read_text().count("| aggregator.beta=") == 2
    assert (out / "fq_vs_mu.png").stat().st_size > 1000


def test_each_point_is_evaluated_on_its_own_data_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import baldro.evaluation.tofu as tofu_eval
    from baldro.experiments.sweep import run_sweep

    evaluated: list[tuple[str, str]] = []

    def fake_unlearn(config: dict) -> Path:
        folder = Path(config["output_dir"])
        folder.mkdir(parents=True)
        return folder

    def fake_evaluate(model: Path, source: str, forget_split: str, out_dir: Path, **_: object) -> dict:
        evaluated.append((str(source), forget_split))
        Path(out_dir).mkdir(parents=True)
        (Path(out_dir) / "TOFU_SUMMARY.json").write_text(json.dumps({"forget_quality": 0.5, "model_utility": 0.5}))
        return {}

    monkeypatch.setattr(training, "run_unlearn", fake_unlearn)
    monkeypatch.setattr(tofu_eval, "evaluate_tofu", fake_evaluate)
    base = {"data": {"source": "bench", "forget_split": "forget10"}, "output_dir": "x"}
    run_sweep(base, parse_grid(["data.forget_split=forget01,forget05"]), tmp_path / "s")
    assert evaluated == [("bench", "forget01"), ("bench", "forget05")]


def test_each_point_is_evaluated_with_its_training_prompt_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import baldro.evaluation.tofu as tofu_eval
    from baldro.experiments.sweep import run_sweep

    formats: list[str] = []

    def fake_unlearn(config: dict) -> Path:
        folder = Path(config["output_dir"])
        folder.mkdir(parents=True)
        return folder

    def fake_evaluate(model: Path, source: str, forget_split: str, out_dir: Path, fmt=None, **_: object) -> dict:
        formats.append(fmt.name)
        Path(out_dir).mkdir(parents=True)
        (Path(out_dir) / "TOFU_SUMMARY.json").write_text(json.dumps({"forget_quality": 0.5, "model_utility": 0.5}))
        return {}

    monkeypatch.setattr(training, "run_unlearn", fake_unlearn)
    monkeypatch.setattr(tofu_eval, "evaluate_tofu", fake_evaluate)
    base = {"data": {"source": "bench", "forget_split": "forget10"}, "output_dir": "x"}
    run_sweep(base, parse_grid(["data.format=llama2,gemma-7b-it"]), tmp_path / "s")
    assert formats == ["llama2", "gemma-7b-it"]
