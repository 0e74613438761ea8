"""The CLI start-up benchmark runs in --quick mode and prints sane rows (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "cli_bench.py"


def test_cli_bench_quick_prints_every_row_and_the_load() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--json", "--items", "8"], check=True,
                          capture_output=True, text=True)
    lines = [json.loads(line) for line in done.stdout.strip().splitlines()]
    rows, footer = lines[:-1], lines[-1]
    assert [r["command"].split(" TMP")[0] for r in rows] == ["baldro --help", "baldro eval --help",
                                                             "baldro eval summarize"]
    for row in rows:
        assert 0 < row["wall_s_min"] <= row["wall_s_median"] and row["modules"] > 10 and row["cpu_s_median"] > 0
        assert "torch" not in row["heavy"] and "transformers" not in row["heavy"]
        assert row["met"] == (row["wall_s_median"] <= row["target_s"])
        assert all(s >= 0 for _, s in row["top_imports_s"]) and len(row["top_imports_s"]) <= 5
    help_row, summarize = rows[0], rows[2]
    assert help_row["heavy"] == [] and summarize["modules"] > help_row["modules"]
    assert "scipy" in summarize["heavy"]  # the KS test of Forget Quality really ran
    assert len(footer["loadavg"]) == 3 and footer["repeats"] == 1
