"""`baldro demo --quick` end to end, and `baldro report` on its folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from baldro.cli.main import main
from baldro.experiments.methods import DEFAULT_METHODS
from baldro.experiments.stages import STAGE_LOG, captured_output
from baldro.reports.readme_tables import environment_versions
from baldro.reports.run_summary import TABLE_COLUMNS
from baldro.reports.tables import METRICS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "run"
    with captured_output(out.parent / "console.txt"):
        assert main(["demo", "--quick", "--out", str(out)]) == 0
    return out


def test_summary_values_match_each_runs_evaluation_and_lie_in_range(demo_dir: Path) -> None:
    summary = json.loads((demo_dir / "summary.json").read_text())
    assert list(summary["methods"]) == list(DEFAULT_METHODS) and summary["seeds"] == 1
    assert summary["versions"] == environment_versions()  # recorded by the run itself, not by whoever snapshots it
    for name, entry in summary["methods"].items():
        evaluated = json.loads((demo_dir / "runs" / name.replace("+", "_") / "seed0" / "eval" / "TOFU_SUMMARY.json")
                               .read_text())
        for key in ("forget_quality", "model_utility", "forget_truth_ratio", "privleak"):
            assert entry[key] == pytest.approx(evaluated[key]) and entry["seeds"][0][key] == entry[key], (name, key)
            assert entry["std"][key] == 0.0, (name, key)
        assert 0 < entry["forget_quality"] <= 1 and 0 <= entry["model_utility"] <= 1
        assert 0 <= entry["forget_truth_ratio"] <= 1 and -100 <= entry["privleak"] <= 100
        assert entry["final_loss_iqr"] >= 0 and entry["final_nll_iqr"] >= 0
        assert [s["seed"] for s in entry["seeds"]] == [0]
        assert (Path(entry["model_dir"]) / "config.json").is_file()
    assert summary["retain"]["forget_quality"] == 1.0
    assert 0 < summary["target"]["forget_quality"] < 1
    assert 0 <= summary["target"]["model_utility"] <= 1 and 0 <= summary["retain"]["model_utility"] <= 1
    for name in ("target", "retain"):
        assert Path(summary[name]["model_dir"]) == demo_dir / name / "model"
        assert (Path(summary[name]["model_dir"]) / "config.json").is_file()


def test_each_run_has_a_curve_and_the_matched_utility_summary_is_what_it_says(demo_dir: Path) -> None:
    summary = json.loads((demo_dir / "summary.json").read_text())["matched_utility"]
    assert list(summary["methods"]) == list(DEFAULT_METHODS)
    bar = summary["target"]["mu_bar"]
    final = json.loads((demo_dir / "target" / "eval" / "TOFU_SUMMARY.json").read_text())
    assert bar == pytest.approx(0.9 * final["model_utility"])
    for name, entry in summary["methods"].items():
        folder = demo_dir / "runs" / name.replace("+", "_") / "seed0"
        rows = [json.loads(x) for x in (folder / "train" / "model" / "trajectory.jsonl").read_text().splitlines()]
        assert rows[0]["step"] == 0 and rows[-1]["step"] == max(r["step"] for r in rows) > 0
        evaluated = json.loads((folder / "eval" / "TOFU_SUMMARY.json").read_text())
        assert rows[-1]["forget_quality"] == pytest.approx(evaluated["forget_quality"], abs=1e-6)  # same final model
        kept = [r["forget_quality"] for r in rows if r["model_utility"] >= bar - 1e-12]
        assert entry["per_seed"]["0"]["best_fq"] == pytest.approx(max(kept))
        assert entry["base"] == (None if name == "npo" else "npo")
    report = (demo_dir / "report.md").read_text()
    assert "## Matched-utility comparison and unlearning curves" in report and "(fq_mu_curves.png)" in report
    assert (demo_dir / "fq_mu_curves.png").read_bytes().startswith(PNG_MAGIC)


def test_report_has_every_method_every_column_explained_and_png_plots(demo_dir: Path) -> None:
    report = (demo_dir / "report.md").read_text()
    for name in ("fq_vs_mu.png", "asynchrony.png", "asynchrony_loss.png", "dro_stats.png"):
        data = (demo_dir / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000
        assert f"({name})" in report
    for method in DEFAULT_METHODS:
        assert f"| {method} |" in report
    columns = report.split("## Columns", 1)[1].split("\n## ", 1)[0]
    assert [line.split("`")[1] for line in columns.splitlines() if line.startswith("- `")] == list(METRICS)
    assert "PrivLeak" in columns and "retain model is 1 by construction" in columns
    retain_row = next(line for line in report.splitlines() if line.startswith("| retain |"))
    assert retain_row.split("|")[2].strip() == "1 ± 0"


def test_console_shows_one_line_per_stage_and_stage_logs_hold_the_detail(demo_dir: Path) -> None:
    lines = (demo_dir.parent / "console.txt").read_text().splitlines()
    stage_lines = [line for line in lines if line.startswith("[baldro demo ")]
    total = 3 + 3 + 1 + 2 * len(DEFAULT_METHODS)
    assert [line.split()[2] for line in stage_lines] == [f"{k}/{total}" for k in range(1, total + 1)]
    assert all(": done in " in line for line in stage_lines)
    assert not any("train_runtime" in line or "Loading" in line or "%|" in line for line in lines)
    table = lines[lines.index(next(line for line in lines if line.startswith("model "))):]
    assert table[0].split()[1:] == list(TABLE_COLUMNS)
    assert "train_runtime" in (demo_dir / "runs" / "npo" / "seed0" / "train" / STAGE_LOG).read_text()
    assert (demo_dir / "runs" / "npo" / "seed0" / "eval" / STAGE_LOG).is_file()


def test_per_sample_log_has_weights_that_sum_to_one_per_step(demo_dir: Path) -> None:
    rows = [json.loads(x) for x in (demo_dir / "runs" / "npo_dv" / "seed0" / "train" / "model" / "per_sample.jsonl")
            .read_text().splitlines()]
    by_step: dict[int, float] = {}
    for row in rows:
        by_step[row["step"]] = by_step.get(row["step"], 0.0) + row["weight"]
    assert by_step and all(abs(total - 1.0) < 1e-5 for total in by_step.values())


def test_second_run_reuses_cached_stages(demo_dir: Path) -> None:
    first = json.loads((demo_dir / "summary.json").read_text())
    stamps = {p: p.stat().st_mtime_ns for p in (demo_dir / "target" / "model" / "model.safetensors",
                                               demo_dir / "runs" / "npo" / "seed0" / "eval" / "TOFU_SUMMARY.json")}
    assert main(["demo", "--quick", "--out", str(demo_dir), "--methods", "npo"]) == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    second = json.loads((demo_dir / "summary.json").read_text())
    assert list(second["methods"]) == ["npo"]
    for key in ("forget_quality", "model_utility", "final_loss_iqr"):
        assert second["methods"]["npo"][key] == first["methods"]["npo"][key]
        assert second["target"].get(key) == first["target"].get(key)


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
