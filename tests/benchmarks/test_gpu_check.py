"""The GPU check's dry run on CPU: what it would run, at full TOFU size, without running it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_dry_run_lists_the_step_benchmark_and_the_full_size_study(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    run = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_check.py"), "--model", str(tmp_path / "m.gguf"),
                          "--data", str(tmp_path), "--out", str(tmp_path / "out"), "--dry-run"],
                         capture_output=True, text=True, check=True)
    plan, last = (json.loads(line) for line in run.stdout.splitlines())
    assert plan["step_bench"][1:5] == ["--model", "llama-1b", "--batch", "8"] and "cuda" in plan["step_bench"]
    assert plan["settings"]["retain_authors"] == 198 and plan["settings"]["device"] == "gpu"  # all 3,960 retain rows
    assert plan["stages"][:3] == ["TOFU subset", "base model (GGUF dequantised)", "target model (full)"]
    assert sum(s.startswith("unlearn ") for s in plan["stages"]) == 6  # 3 methods × 2 seeds
    training = last["last_run_config"]["training"]
    assert training.get("bf16") is True and "use_cpu" not in training
    assert last["last_run_config"]["eval_every"] == 25
    assert not (tmp_path / "out").exists()  # a dry run writes nothing
