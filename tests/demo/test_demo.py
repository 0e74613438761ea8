"""`baldro demo --quick` end to end, and `baldro report` on its folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from baldro.cli.main import main
from baldro.demo.methods import DEFAULT_METHODS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "run"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    return out


def test_summary_has_every_default_method_with_finite_metrics(demo_dir: Path) -> None:
    summary = json.loads((demo_dir / "summary.json").read_text())
    assert list(summary["methods"]) == list(DEFAULT_METHODS)
    for name, entry in summary["methods"].items():
        for key in ("forget_quality", "model_utility", "forget_truth_ratio"):
            assert entry[key] is not None and math.isfinite(entry[key]), (name, key)
        assert 0 <= entry["forget_quality"] <= 1
        assert len(entry["seeds"]) == 1 and entry["seeds"][0]["seed"] == 0
        assert (Path(entry["model_dir"]) / "config.json").is_file()
    assert summary["target"]["forget_quality"] is not None
    assert summary["retain"]["model_utility"] is not None
    for name in ("target", "retain"):
        assert Path(summary[name]["model_dir"]) == demo_dir / name / "model"
        assert (Path(summary[name]["model_dir"]) / "config.json").is_file()


def test_report_and_plots_exist_and_are_png(demo_dir: Path) -> None:
    report = (demo_dir / "report.md").read_text()
    for name in ("fq_vs_mu.png", "asynchrony.png", "dro_weights.png"):
        data = (demo_dir / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000
        assert f"({name})" in report
    for method in DEFAULT_METHODS:
        assert f"| {method} |" in report


def test_per_sample_log_has_weights_that_sum_to_one_per_step(demo_dir: Path) -> None:
    rows = [json.loads(x) for x in (demo_dir / "runs" / "npo_dv" / "seed0" / "train" / "model" / "per_sample.jsonl")
            .read_text().splitlines()]
    by_step: dict[int, float] = {}
    for row in rows:
        by_step[row["step"]] = by_step.get(row["step"], 0.0) + row["weight"]
    assert by_step and all(abs(total - 1.0) < 1e-5 for total in by_step.values())


def test_second_run_reuses_cached_stages(demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (demo_dir / "target" / "model" / "model.safetensors").stat().st_mtime_ns
    assert main(["demo", "--quick", "--out", str(demo_dir), "--methods", "npo"]) == 0
    assert "target model (full + general replay): cached" in capsys.readouterr().err
    assert (demo_dir / "target" / "model" / "model.safetensors").stat().st_mtime_ns == before


def test_report_command_on_the_demo_folder(demo_dir: Path, tmp_path: Path) -> None:
    assert main(["report", str(demo_dir), "--out", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "| npo+dv |" in text and "target" in text
    assert (tmp_path / "rep" / "fq_vs_mu.png").read_bytes().startswith(PNG_MAGIC)


def test_unknown_method_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--quick", "--out", str(tmp_path / "x"), "--methods", "npo+dvv"]) == 2
    err = capsys.readouterr().err
    assert "unknown method 'npo+dvv'" in err and "dv-official" in err
    assert not (tmp_path / "x").exists()


def test_cached_folder_built_with_other_settings_is_refused(demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--quick", "--uniform", "--out", str(demo_dir)]) == 2
    err = capsys.readouterr().err
    assert "other settings (uniform)" in err and "--fresh" in err
