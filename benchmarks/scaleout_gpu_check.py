"""The scale-out check on a GPU machine (issue 24): DDP, FSDP1, FSDP2 and DeepSpeed ZeRO-2 / ZeRO-3 against one GPU.

The same runs as ``tests/training/test_scaleout.py`` (npo + BalDRO-DV / BalDRO-G, micro and global DRO scope, 3 AdamW
steps of a tiny Llama, ``tests/training/scaleout_step.py``), each engine under ``torchrun --nproc_per_node N`` with
one GPU per process (N = 1 still runs the engine: its hooks, its gather, its saving), against one process on one
GPU with the same effective batch. Prints one JSON line per engine and run (largest loss / weight difference, whether
the lean head stayed on) and exits 1 when any is over tolerance. DeepSpeed is not a baldro dependency:

    pip install deepspeed
    python benchmarks/scaleout_gpu_check.py --out /tmp/scaleout_gpu            # N = min(2, GPUs)
    python benchmarks/scaleout_gpu_check.py --out /tmp/scaleout_gpu --dry-run  # the commands only (the CPU test)

Tolerances: losses 1e-4, weights 1e-4 (CPU: 1e-5 / 5e-5; GPU reductions are not bit-stable run to run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEP = ROOT / "tests" / "training" / "scaleout_step.py"
RUNS = [("group", "global"), ("dv", "global"), ("group", "micro"), ("dv", "micro")]
ENGINES = ("none", "fsdp1", "fsdp2", "zero2", "zero3")  # none under torchrun: DDP
LOSS_TOL = WEIGHT_TOL = 1e-4
BATCH = 4


def specs(nproc: int, one: bool) -> list[str]:
    """Per-device batch 4 under the engine; the one-GPU reference takes N × 4 (global scope) or 4 with N-step
    accumulation (micro scope: the same micro-batches)."""
    out = []
    for aggregator, scope in RUNS:
        batch, accumulation = (BATCH * nproc, 1) if one and scope == "global" else (BATCH, nproc if one else 1)
        out.append(f"{aggregator}:{scope}:{batch}:{accumulation}")
    return out


def commands(out: Path, nproc: int, engines: list[str]) -> list[list[str]]:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    cmds = [[sys.executable, str(STEP), str(out / "one"), "none", *specs(nproc, one=True)]]
    for engine in engines:
        cmds.append([torchrun, "--standalone", "--nproc_per_node", str(nproc), str(STEP), str(out / engine), engine,
                     *specs(nproc, one=False)])
    return cmds


def compare(engine_dir: Path, one_dir: Path) -> list[dict]:
    """One row per run: largest differences of the logged losses and saved weights, and the lean-head check."""
    from safetensors.torch import load_file

    rows = []
    for aggregator, scope in RUNS:
        name = f"{aggregator}-{scope}"
        a = json.loads((engine_dir / name / "result.json").read_text())
        b = json.loads((one_dir / name / "result.json").read_text())
        loss = max(abs(x - y) for key in ("losses", "forget", "retain") for x, y in zip(a[key], b[key]))
        wa = load_file(str(engine_dir / name / "model" / "model.safetensors"))
        wb = load_file(str(one_dir / name / "model" / "model.safetensors"))
        weight = max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wb)
        lean = all(len(s) == 3 and s[1] == 1 for s in a["head_inputs"])
        rows.append({"run": name, "wrapped": a["wrapped"], "loss_diff": loss, "weight_diff": weight, "lean": lean,
                     "ok": loss < LOSS_TOL and weight < WEIGHT_TOL and lean})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--nproc", type=int, default=None, help="processes (GPUs) per engine; default min(2, GPUs)")
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    nproc = args.nproc
    if nproc is None:
        import torch

        nproc = max(1, min(2, torch.cuda.device_count()))
    cmds = commands(args.out, nproc, args.engines)
    if args.dry_run:
        for cmd in cmds:
            print(" ".join(cmd))
        return 0
    env = {**os.environ, "SCALEOUT_DEVICE": "cuda", "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    ok = True
    for cmd, engine in zip(cmds, ["one", *args.engines]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            print(json.dumps({"engine": engine, "error": done.stderr[-2000:]}))
            ok = False
            continue
        if engine != "one":
            for row in compare(args.out / engine, args.out / "one"):
                print(json.dumps({"engine": engine, "processes": nproc, **row}))
                ok = ok and row["ok"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
