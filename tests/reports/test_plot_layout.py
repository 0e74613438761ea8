"""Report plots a new user reads: decade ticks on the FQ axis, titles that fit, end labels apart, a target without FQ
said in words."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from baldro.cli.main import main  # noqa: E402
from baldro.reports.plot_axes import fit_title, fq_log_axis, spread_labels  # noqa: E402


def _tick_labels(values):
    fig, ax = plt.subplots()
    ax.scatter([0.4] * len(values), values)
    limits = fq_log_axis(ax, values)
    fig.canvas.draw()
    labels = [t.get_text() for t in [*ax.get_yticklabels(), *ax.get_yticklabels(minor=True)]
              if t.get_text() and limits[0] <= t.get_position()[1] <= limits[1]]
    plt.close(fig)
    return limits, labels


def test_fq_near_1_gets_decade_ticks_not_9_99993():
    limits, labels = _tick_labels([0.99993, 0.99999])
    assert limits[0] < 0.1 and limits[1] > 1.0  # one whole decade, FQ = 1 inside the frame
    assert labels == [r"$\mathdefault{10^{-1}}$", r"$\mathdefault{10^{0}}$"]


def test_fq_over_several_decades_keeps_matplotlibs_limits_and_labels_decades_only():
    limits, labels = _tick_labels([1e-5, 0.3])
    assert limits[0] < 1e-5 and 0.3 < limits[1] < 1.0
    assert labels and all(label.startswith(r"$\mathdefault{10^{") for label in labels)


def test_end_labels_at_one_point_are_stacked_apart_and_far_ones_stay():
    offsets = spread_labels([(100, 50), (100, 50), (101, 51), (300, 50)], height=9, width=15, base=(5, 3))
    assert offsets[3] == (5, 3) and offsets[0] == (5, 3)
    tops = sorted(50 + offsets[i][1] for i in range(2)) + [51 + offsets[2][1]]
    assert sorted(tops) == pytest.approx([53, 62, 71])  # each one label height above the last


def test_title_wraps_to_the_figure_width():
    text = "Asynchronous forgetting: spread of the per-sample nll over the forget set"
    wrapped = fit_title(text, 3.8, 11)
    assert wrapped.replace("\n", " ") == text and wrapped.count("\n") >= 1
    assert fit_title(text, 12, 11) == text


def _run(folder: Path, summary: dict) -> Path:
    (folder / "eval").mkdir(parents=True)
    (folder / "eval" / "TOFU_SUMMARY.json").write_text(json.dumps(summary))
    return folder


def test_report_says_when_the_target_has_no_fq(tmp_path, capsys):
    run = _run(tmp_path / "npo", {"forget_quality": 0.2, "model_utility": 0.4})
    target = _run(tmp_path / "target", {"forget_quality": None, "model_utility": 0.6})  # no --retain-logs
    assert main(["report", str(run), "--target", str(target), "--out", str(tmp_path / "rep")]) == 0
    err = capsys.readouterr().err
    line = (f"the target model ({target}) has no Forget Quality (evaluated without --retain-logs): the FQ–MU plot "
            "marks its Model Utility only, as a dotted vertical line")
    assert f"baldro: warning: {line}\n" in err
    report = (tmp_path / "rep" / "report.md").read_text()
    assert f"**Note:** {line}." in report and (tmp_path / "rep" / "fq_vs_mu.png").is_file()
    assert "**In one line:** highest Forget Quality: npo (FQ 0.2, MU 0.4, 67% of the target's MU)" in report


def test_report_with_a_target_fq_warns_nothing(tmp_path, capsys):
    run = _run(tmp_path / "npo", {"forget_quality": 0.2, "model_utility": 0.4})
    target = _run(tmp_path / "target", {"forget_quality": 1e-4, "model_utility": 0.6})
    assert main(["report", str(run), "--target", str(target), "--out", str(tmp_path / "rep")]) == 0
    assert "warning" not in capsys.readouterr().err
    assert "**Note:**" not in (tmp_path / "rep" / "report.md").read_text()
