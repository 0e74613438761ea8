"""The step benchmark runs in --quick mode and prints one JSON row per variant plus the ratios line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "step_bench.py"


def test_step_bench_quick_prints_every_variant_and_ratios() -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--json"], check=True, capture_output=True, text=True)
    lines = [json.loads(line) for line in out.stdout.strip().splitlines()]
    rows, ratios = lines[:-1], lines[-1]["ratios"]
    names = [r["name"] for r in rows]
    assert names == ["floor", "ours-npo", "ours-npo+dv", "ours-npo+g", "ours-simnpo+dv",
                     "released-npo", "released-npo+dv", "released-npo+g"]
    for row in rows:
        assert row["step_ms_median"] > 0 and row["step_ms_min"] <= row["step_ms_median"]
        assert row["tokens_per_s"] > 0 and row["step_cpu_ms_median"] > 0
    assert set(ratios) >= {"released-npo/ours-npo", "released-npo+g/ours-npo+g", "ours-npo+dv/ours-npo (DRO overhead)"}
    assert "released-npo+g/ours-npo+g (CPU time)" in ratios
    assert all(v > 0 for v in ratios.values())
