"""Two processes (torchrun, gloo, CPU) × batch 4 with ``dro_scope: global`` = one process × batch 8 (first update)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

SCRIPT = Path(__file__).resolve().parent / "ddp_step.py"


def _run(cmd: list[str], cwd: Path) -> None:
    """Run ``cmd`` in its own process group; on a time-out kill the whole group (torchrun's workers too), so a hung
    rendezvous leaves no worker behind to disturb the next test."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        pytest.fail(f"{Path(cmd[0]).name} timed out after 300 s: {err[-3000:]}")
    assert proc.returncode == 0, err[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("aggregator", ["dv", "group"])
def test_two_processes_global_scope_equal_one_process(tmp_path, aggregator):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun is not None
    two, one = tmp_path / "two", tmp_path / "one"
    _run([torchrun, "--standalone", "--nproc_per_node", "2", str(SCRIPT), str(two), aggregator, "4"], tmp_path)
    _run([sys.executable, str(SCRIPT), str(one), aggregator, "8"], tmp_path)
    a, b = load_file(str(two / "delta.safetensors")), load_file(str(one / "delta.safetensors"))
    assert max(float(v.abs().max()) for v in b.values()) > 1e-3
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    rows = [json.loads(line) for line in (two / "run" / "per_sample.jsonl").read_text().splitlines()]
    assert sorted(r["index"] for r in rows) == list(range(8)) and abs(sum(r["weight"] for r in rows) - 1) < 1e-5


@pytest.mark.slow
def test_two_processes_micro_scope_log_every_rank(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun is not None
    _run([torchrun, "--standalone", "--nproc_per_node", "2", str(SCRIPT), str(tmp_path), "dv", "4", "micro"], tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "run" / "per_sample.jsonl").read_text().splitlines()]
    assert sorted(r["index"] for r in rows) == list(range(8))
    assert abs(sum(r["weight"] for r in rows) - 2) < 1e-5  # each process's micro-batch sums to 1
