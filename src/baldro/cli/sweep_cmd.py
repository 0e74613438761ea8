"""``baldro sweep --config BASE.yaml --grid 'aggregator.beta=0.5,1,2' [--grid ...] [--seeds N] --out DIR``."""

from __future__ import annotations

import argparse

from baldro.cli.pool_args import add_pool_arguments, pool_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sweep", help="cartesian grid of unlearn + eval runs (resumable)")
    p.add_argument("--config", required=True, help="base unlearning config (YAML)")
    p.add_argument("--grid", action="append", default=[], help="key=v1,v2,... (repeatable; dotted config keys)")
    p.add_argument("--set", action="append", default=[], dest="overrides", help="key=value applied to the base config")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--retain-logs", help="the retain model's TOFU_EVAL.json (Forget Quality reference)")
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--out", required=True)
    add_pool_arguments(p, default_jobs=1)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from baldro.experiments.sweep import parse_grid, run_sweep
    from baldro.runfolder import FolderLock
    from baldro.training.config import apply_overrides, load_yaml

    base = apply_overrides(load_yaml(args.config), args.overrides)
    grid = parse_grid(args.grid)
    with FolderLock(args.out, stale_hint="delete the lock file to resume the sweep"):
        records = run_sweep(base, grid, args.out, args.seeds, args.retain_logs, {"max_new_tokens": args.max_new_tokens},
                            workers=pool_from_args(args, args.out))
    print(f"{len(records)} runs; results in {args.out}/results.csv")
    return 0
