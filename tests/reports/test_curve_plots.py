"""The FQ–MU trajectory plot: seed averaging by hand, the PNG written, and trajectory files read with clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from baldro.errors import DataError
from baldro.reports.curve_plots import FQ_FLOOR, seed_band, trajectory_plot
from baldro.reports.records import read_trajectory


def _row(step, fq, mu):
    return {"step": step, "forget_quality": fq, "model_utility": mu}


def test_seed_band_geometric_mean_and_shared_steps():
    a = [_row(0, 1e-4, 0.8), _row(5, 1e-2, 0.7), _row(10, 0.1, 0.5)]
    b = [_row(0, 1e-2, 0.6), _row(5, 1.0, 0.5), _row(7, 0.5, 0.5), _row(10, None, 0.4)]
    band = seed_band([a, b])
    assert band["step"].tolist() == [0, 5]  # 7 is only in b; 10 has no FQ in b
    assert np.allclose(band["mu"], [0.7, 0.6])
    assert np.allclose(band["fq"], [1e-3, 1e-1])  # geometric means: sqrt(1e-4 * 1e-2), sqrt(1e-2 * 1)
    assert np.allclose(band["fq_low"], [1e-4, 1e-2]) and np.allclose(band["fq_high"], [1e-2, 1.0])
    assert seed_band([[_row(0, 0.0, 0.5)]])["fq"][0] == pytest.approx(FQ_FLOOR)


def test_trajectory_plot_writes_a_png(tmp_path):
    runs = {
        "npo": [[_row(0, 1e-4, 0.8), _row(5, 1e-2, 0.75)], [_row(0, 1e-4, 0.8), _row(5, 3e-2, 0.7)]],
        "npo+dv": [[_row(0, 1e-4, 0.8), _row(5, 0.2, 0.74)]],
        "empty": [[_row(0, None, 0.8)]],
    }
    path = trajectory_plot(runs, tmp_path / "c.png", target=(0.8, 1e-4), retain=(0.78, None), mu_threshold=0.72)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_read_trajectory_rows_and_errors(tmp_path):
    path = tmp_path / "trajectory.jsonl"
    path.write_text(json.dumps(_row(0, 0.1, 0.5)) + "\n\n" + json.dumps(_row(2, 0.2, 0.4)) + "\n")
    assert [r["step"] for r in read_trajectory(path)] == [0, 2]
    path.write_text(json.dumps(_row(0, 0.1, 0.5)) + "\n{oops\n")
    with pytest.raises(DataError, match="line 2: not valid JSON"):
        read_trajectory(path)
    path.write_text(json.dumps({"forget_quality": 0.1}) + "\n")
    with pytest.raises(DataError, match="line 1: field 'step'"):
        read_trajectory(path)
    with pytest.raises(DataError, match="eval_every"):
        read_trajectory(tmp_path / "missing.jsonl")
