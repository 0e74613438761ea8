"""Measure one benchmark regime for the study (issue 11 item 3): target / retain properties and an NPO trajectory.

Runs the demo pipeline's own stages (``baldro.demo.pipeline``) in ``runs/<name>/`` (cached like the demo): benchmark →
tiny model → base model (``general``) → target (``full + general``) and retain (``retainNN + general``) → their TOFU
evaluations → NPO unlearning of the target with a checkpoint every ``--save-steps`` steps, each checkpoint evaluated
like a finished run. Prints JSON lines: the target's and retain's forget exact match, FQ, MU, truth ratio and the
90 %−10 % spread of per-item forget NLL, then one line per trajectory point. Results: ``docs/study_benchmark.md``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/study_regime.py study --size study --target-epochs 80 --lr 1e-4
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np


def forget_properties(folder: Path) -> dict[str, Any]:
    """EM (greedy generation == answer), FQ, MU, truth ratio, forget NLL median and 90−10 % spread of one eval."""
    ev = json.loads((folder / "TOFU_EVAL.json").read_text())
    summary = json.loads((folder / "TOFU_SUMMARY.json").read_text())
    items = list(ev["forget_Q_A_ROUGE"]["value_by_index"].values())
    nll = [-math.log(max(v["prob"], 1e-300)) for v in ev["forget_Q_A_Prob"]["value_by_index"].values()]
    q10, q50, q90 = np.quantile(nll, [0.1, 0.5, 0.9])
    return {
        "fq": summary.get("forget_quality"), "mu": summary.get("model_utility"), "tr": summary.get("forget_truth_ratio"),
        "em": float(np.mean([it["generation"].strip() == it["ground_truth"].strip() for it in items])),
        "n": len(nll), "nll_median": float(q50), "nll_spread": float(q90 - q10),
    }


def main() -> None:
    import torch

    from baldro.data.synth import size_preset, write_benchmark
    from baldro.data.tofu import partner_splits
    from baldro.demo.methods import method_config
    from baldro.demo.pipeline import DemoSettings, _build_tiny, _evaluate, _finetune, _stage, _training
    from baldro.training import run_unlearn

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", help="folder under runs/")
    p.add_argument("--size", default="study")
    p.add_argument("--uniform", action="store_true")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--base-epochs", type=float, default=15)
    p.add_argument("--target-epochs", type=float, default=80, help="target and retain fine-tune epochs")
    p.add_argument("--finetune-lr", type=float, default=3e-3)
    p.add_argument("--lr", type=float, default=1e-4, help="NPO learning rate")
    p.add_argument("--epochs", type=float, default=5, help="NPO epochs")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--save-steps", type=int, default=13)
    a = p.parse_args()
    torch.set_num_threads(1)
    size = size_preset(a.size)
    forget = size.forget_split
    retain_split = partner_splits(forget).retain
    s = DemoSettings(authors=size.authors, questions=size.questions, uniform=a.uniform, layers=a.layers,
                     hidden=a.hidden, base_epochs=a.base_epochs, target_epochs=a.target_epochs,
                     finetune_lr=a.finetune_lr)
    root = Path("runs") / a.name
    root.mkdir(parents=True, exist_ok=True)
    data = root / "data"

    def bench(out: Path) -> None:
        write_benchmark(out, seed=0, authors=size.authors, questions=size.questions, uniform=a.uniform,
                        percents=size.percents)

    def unlearn(out: Path) -> None:
        cfg = method_config("npo")
        training = _training(s, a.epochs, a.lr, a.batch, 0)
        training.update(save_strategy="steps", save_steps=a.save_steps, save_only_model=True)
        cfg.update({"model": {"path": str(root / "target" / "model")},
                    "data": {"source": str(data), "forget_split": forget, "retain_split": retain_split},
                    "training": training, "output_dir": str(out / "model"), "log_every": 1})
        run_unlearn(cfg)

    t0 = time.perf_counter()
    _stage("benchmark", data, bench)
    _stage("tiny model", root / "tiny", _build_tiny, data, s)
    _stage("base", root / "base", _finetune, root / "tiny", data, "general", s, s.base_epochs)
    _stage("target", root / "target", _finetune, root / "base" / "model", data, ["full", "general"], s, s.target_epochs)
    _stage("retain", root / "retain", _finetune, root / "base" / "model", data, [retain_split, "general"], s,
           s.target_epochs)
    logs = root / "retain" / "eval" / "TOFU_EVAL.json"
    _stage("eval retain", root / "retain" / "eval", _evaluate, root / "retain" / "model", data, forget, s, None)
    _stage("eval target", root / "target" / "eval", _evaluate, root / "target" / "model", data, forget, s, logs)
    print(json.dumps({"target": forget_properties(root / "target" / "eval"),
                      "retain": forget_properties(root / "retain" / "eval"),
                      "fine_tunes_wall_s": round(time.perf_counter() - t0, 1)}), flush=True)
    run = root / f"npo_lr{a.lr:g}_ep{a.epochs:g}"
    _stage("unlearn", run, unlearn)
    points = sorted((run / "model").glob("checkpoint-*"), key=lambda c: int(c.name.split("-")[1]))
    for c in points:
        _stage(f"eval {c.name}", run / f"eval_{c.name}", _evaluate, c, data, forget, s, logs)
        print(json.dumps({"step": int(c.name.split("-")[1]), **forget_properties(run / f"eval_{c.name}")}), flush=True)


if __name__ == "__main__":
    main()
