"""The eval benchmark runs in --quick mode, prints items/s of both evaluators and their ratio, and they agree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "eval_bench.py"


def test_eval_bench_quick_prints_ratio_and_agrees() -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--json"], check=True, capture_output=True, text=True)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    assert row["ours_items_per_s"] > 0 and row["anchor_items_per_s"] > 0
    assert row["speedup"] == pytest.approx(row["anchor_s"] / row["ours_s"], abs=0.05)
    assert row["max_rel_prob_diff"] < 1e-4
    assert row["generations_equal"] is True
    assert set(row["mia_auc_ours"]) == {"mia_min_k", "mia_min_k_plus_plus", "mia_loss", "mia_zlib"}
    for name, auc in row["mia_auc_ours"].items():
        assert auc == pytest.approx(row["mia_auc_anchor"][name], abs=1e-9)
