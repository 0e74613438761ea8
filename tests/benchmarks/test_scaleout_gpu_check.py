"""The scale-out GPU check on CPU: its commands (dry run) and its comparison of an engine's runs with one GPU's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import scaleout_gpu_check as check  # noqa: E402


def test_dry_run_lists_one_reference_and_one_torchrun_per_engine(tmp_path):
    run = subprocess.run([sys.executable, str(BENCHMARKS / "scaleout_gpu_check.py"), "--out", str(tmp_path / "o"),
                          "--nproc", "2", "--dry-run"], capture_output=True, text=True, check=True)
    lines = run.stdout.splitlines()
    assert len(lines) == 1 + 5 and lines[0].split()[3:] == [
        "none", "group:global:8:1", "dv:global:8:1", "group:micro:4:2", "dv:micro:4:2"]
    engines = [line.split()[6] for line in lines[1:]]
    assert engines == ["none", "fsdp1", "fsdp2", "zero2", "zero3"]
    assert all("--nproc_per_node 2" in line and line.endswith("dv:micro:4:1") for line in lines[1:])
    assert not (tmp_path / "o").exists()


def write_run(folder: Path, losses: list[float], weight: float, head_inputs: list[list[int]]) -> None:
    for aggregator, scope in check.RUNS:
        run = folder / f"{aggregator}-{scope}"
        (run / "model").mkdir(parents=True)
        (run / "result.json").write_text(json.dumps({"losses": losses, "forget": losses, "retain": losses,
                                                     "head_inputs": head_inputs, "wrapped": "X"}))
        save_file({"w": torch.full((2, 2), weight)}, str(run / "model" / "model.safetensors"))


def test_compare_flags_differences_over_tolerance_and_a_full_logit_head(tmp_path):
    write_run(tmp_path / "one", [1.0, 2.0, 3.0], 0.5, [[4, 1, 8]])
    write_run(tmp_path / "close", [1.0, 2.0 + 5e-5, 3.0], 0.5 + 5e-5, [[4, 1, 8]])
    write_run(tmp_path / "far", [1.0, 2.0, 3.0], 0.5 + 1e-3, [[4, 1, 8]])
    write_run(tmp_path / "full", [1.0, 2.0, 3.0], 0.5, [[4, 9, 8]])
    assert all(row["ok"] for row in check.compare(tmp_path / "close", tmp_path / "one"))
    far = check.compare(tmp_path / "far", tmp_path / "one")
    assert not any(row["ok"] for row in far) and abs(far[0]["weight_diff"] - 1e-3) < 1e-6
    assert not any(row["ok"] or row["lean"] for row in check.compare(tmp_path / "full", tmp_path / "one"))
