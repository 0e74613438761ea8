"""Unlearning curves and the matched-utility table on a demo folder (an illustration of the instrument, issue 11).

    python benchmarks/curve_example.py DEMO_DIR OUT_DIR [--methods npo,npo+dv] [--seeds 2] [--eval-every 2]
        [--epochs 3] [--lr 1e-3] [--mu-keep 0.9] [--max-new-tokens 16]

DEMO_DIR is a folder written by ``baldro demo`` (``data/``, ``target/model``, ``retain/eval/TOFU_EVAL.json``). Every
method × seed is unlearned from the target model with ``eval_every``; OUT_DIR gets the runs, ``curves.png``
(FQ vs MU per method) and ``matched_utility.json``; the table is printed. The target MU is the step-0 row of the
curves (the target model evaluated on the same items with the same generation settings).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

BASES = {
    "npo": {"objective": {"name": "npo", "beta": 0.1}, "retain": {"name": "nll", "weight": 1.0}},
    "simnpo": {"objective": {"name": "simnpo", "beta": 4.5, "delta": 0.0}, "forget_weight": 0.125,
               "retain": {"name": "nll", "weight": 1.0}},
}
VARIANTS = {"": {"name": "mean"}, "g": {"name": "group", "ratio": 0.5}, "dv": {"name": "dv", "beta": 2.0, "sign": "paper"}}


def _config(method: str, seed: int, demo: Path, out: Path, args: argparse.Namespace) -> dict:
    base, _, variant = method.partition("+")
    cfg = {**BASES[base], "aggregator": VARIANTS[variant]}
    cfg.update({
        "model": {"path": str(demo / "target" / "model")},
        "data": {"source": str(demo / "data"), "forget_split": "forget10", "retain_split": "retain90"},
        "training": {"num_train_epochs": args.epochs, "learning_rate": args.lr, "per_device_train_batch_size": 8,
                     "lr_scheduler_type": "constant", "seed": seed, "save_strategy": "no", "logging_strategy": "no",
                     "report_to": "none", "disable_tqdm": True, "use_cpu": True},
        "output_dir": str(out),
        "log_every": None,
        "eval_every": args.eval_every,
        "eval": {"retain_logs": str(demo / "retain" / "eval" / "TOFU_EVAL.json"), "max_new_tokens": args.max_new_tokens},
    })
    return cfg


def main() -> int:
    from baldro.evaluation.trajectory import TRAJECTORY_FILE, trajectory_callback
    from baldro.reports.curve_plots import trajectory_plot
    from baldro.reports.matched_utility import compare
    from baldro.reports.records import read_trajectory
    from baldro.training.unlearn import parse_unlearn, run_unlearn

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("demo", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--methods", default="npo,npo+dv")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--eval-every", type=int, default=2)
    p.add_argument("--epochs", type=float, default=3)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--mu-keep", type=float, default=0.9)
    p.add_argument("--max-new-tokens", type=int, default=16)
    args = p.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    runs: dict[str, dict[int, list[dict]]] = {}
    for method in methods:
        for seed in range(args.seeds):
            folder = args.out / method.replace("+", "_") / f"seed{seed}"
            if not (folder / TRAJECTORY_FILE).is_file():
                cfg = _config(method, seed, args.demo, folder, args)
                parsed = parse_unlearn(cfg)
                run_unlearn(parsed, callbacks=[trajectory_callback(parsed.raw)])
            runs.setdefault(method, {})[seed] = read_trajectory(folder / TRAJECTORY_FILE)
    target_mu = next(r["model_utility"] for r in next(iter(runs[methods[0]].values())) if r["step"] == 0)
    target_fq = next(r["forget_quality"] for r in next(iter(runs[methods[0]].values())) if r["step"] == 0)
    retain = json.loads((args.demo / "retain" / "eval" / "TOFU_SUMMARY.json").read_text())
    bases = {m: m.partition("+")[0] for m in methods if "+" in m and m.partition("+")[0] in methods}
    table = compare(runs, target_mu, bases, mu_keep=args.mu_keep)
    trajectory_plot({m: list(runs[m].values()) for m in methods}, args.out / "curves.png", target=(target_mu, target_fq),
                    retain=(retain["model_utility"], None), mu_threshold=args.mu_keep * target_mu,
                    title=f"Unlearning curves (tiny model; mu_keep={args.mu_keep}; band = seed min-max)")
    rows = {}
    print(f"target MU {target_mu:.4f}, bar {args.mu_keep * target_mu:.4f}, target FQ {target_fq:.3g}")
    print("| method | matched FQ per seed (step) | mean [95 % CI] | final FQ mean | vs base: +/-/= , test, p |")
    print("|---|---|---|---|---|")
    for m, res in table.items():
        per = ", ".join(f"{v.best_fq:.3g} ({v.step})" for v in res.per_seed.values())
        ci = res.matched
        ci_text = f"{ci.mean:.3g} [{ci.low:.3g}, {ci.high:.3g}]" + (f" ({ci.note})" if ci.note else "")
        vs = res.vs_base
        vs_text = (f"{vs.n_positive}/{vs.n_negative}/{vs.n_ties}, {vs.test}, {vs.p_value:.3g}" if vs else "-")
        print(f"| {m} | {per} | {ci_text} | {res.final.mean:.3g} | {vs_text} |")
        rows[m] = {"matched_fq": {s: (None if math.isnan(v.best_fq) else v.best_fq) for s, v in res.per_seed.items()},
                   "step": {s: v.step for s, v in res.per_seed.items()}, "mean": ci.mean, "low": ci.low,
                   "high": ci.high, "final_fq_mean": res.final.mean, "vs_base": vars(vs) if vs else None}
    (args.out / "matched_utility.json").write_text(json.dumps(
        {"target_mu": target_mu, "mu_keep": args.mu_keep, "methods": rows}, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
