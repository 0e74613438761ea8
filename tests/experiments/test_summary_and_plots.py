"""The terminal table (mean ± std, legend), the retain model's FQ = 1, and the DRO weight statistics behind the plot."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from baldro.reports.plots import dro_statistics, dro_stats_plot
from baldro.reports.records import load_reference, load_run
from baldro.reports.run_summary import TABLE_COLUMNS, build_summary, format_table
from baldro.reports.tables import METRIC_DOCS


def _run(folder: Path, fq: float, weights: list[list[float]], method: str, seed: int) -> Path:
    (folder / "eval").mkdir(parents=True)
    (folder / "eval" / "TOFU_SUMMARY.json").write_text(json.dumps(
        {"forget_quality": fq, "model_utility": 0.5, "forget_truth_ratio": 0.6, "privleak": -10.0}))
    rows = [{"step": s + 1, "index": i, "loss": float(i), "weight": w, "nll": 1.0}
            for s, step in enumerate(weights) for i, w in enumerate(step)]
    (folder / "per_sample.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "run_info.json").write_text(json.dumps({"method": method, "seed": seed}))
    return folder


def test_ess_and_max_weight_by_hand(tmp_path: Path) -> None:
    record = load_run(_run(tmp_path / "r", 0.1, [[0.25] * 4, [0.5, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]], "m", 0))
    from baldro.reports.records import read_per_sample

    steps, ess, peak = dro_statistics(read_per_sample(record.per_sample_path))
    assert steps.tolist() == [1, 2, 3]
    assert ess.tolist() == pytest.approx([1.0, 0.5, 0.25])
    assert peak.tolist() == pytest.approx([1.0, 2.0, 4.0])
    assert dro_stats_plot([record], tmp_path / "d.png").stat().st_size > 1000


def test_summary_and_table_show_mean_std_and_a_legend_line_per_column(tmp_path: Path) -> None:
    runs = [load_run(_run(tmp_path / f"s{k}", fq, [[0.5, 0.5]], "npo+dv", k)) for k, fq in enumerate((0.2, 0.4))]
    retain = tmp_path / "retain"
    (retain / "eval").mkdir(parents=True)
    (retain / "eval" / "TOFU_SUMMARY.json").write_text(json.dumps({"forget_quality": None, "model_utility": 0.7}))
    summary = build_summary(runs, {"retain": load_reference(retain, "retain")})
    entry = summary["methods"]["npo+dv"]
    assert entry["forget_quality"] == pytest.approx(0.3)
    assert entry["std"]["forget_quality"] == pytest.approx(math.sqrt(0.02))
    assert [s["forget_quality"] for s in entry["seeds"]] == [0.2, 0.4]
    assert summary["retain"]["forget_quality"] == 1.0 and summary["retain"]["model_utility"] == 0.7
    lines = format_table(summary).splitlines()
    assert lines[1].split()[:4] == ["npo+dv", "0.3", "±", "0.14"]
    assert lines[2].split()[:4] == ["retain", "model", "1", "0.7"]
    for column in TABLE_COLUMNS:
        assert sum(line.startswith(f"  {column}: ") for line in lines) == 1
        assert METRIC_DOCS[column] in "\n".join(lines)
