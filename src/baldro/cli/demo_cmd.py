"""``baldro demo``: the end-to-end offline run on the embedded benchmark."""

from __future__ import annotations

import argparse

from baldro.cli.names import DEFAULT_METHODS, PRESET_BASES, PRESET_VARIANTS
from baldro.cli.pool_args import add_pool_arguments, pool_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="end-to-end unlearning demo on the embedded benchmark (offline, CPU)")
    p.add_argument("--out", default="demo_out", help="folder for every stage's output (default: demo_out)")
    p.add_argument("--seeds", type=int, default=None, help="unlearning seeds per method (default: 3; 1 with --quick)")
    p.add_argument("--forget-split", default="forget10")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help=f"comma-separated method presets <base>[+<variant>]; base: {', '.join(PRESET_BASES)}; "
                   f"variant: {', '.join(PRESET_VARIANTS)} (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="a smoke-sized run (about a minute)")
    p.add_argument("--uniform", action="store_true", help="benchmark without designed difficulty heterogeneity")
    p.add_argument("--fresh", action="store_true", help="redo every stage instead of reusing cached ones")
    add_pool_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from baldro.experiments.demo import DemoSettings, format_table, log, run_demo

    settings = DemoSettings.quick() if args.quick else DemoSettings()
    settings.uniform = args.uniform
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    summary = run_demo(args.out, methods, args.seeds, args.forget_split, settings, args.fresh, pool_from_args(args, args.out))
    print(format_table(summary))
    if summary.get("matched_utility"):
        from baldro.reports.study_report import headline_table

        print("\nMatched-utility Forget Quality (best FQ along each run's curve while MU ≥ 0.9 × the target's):")
        print(headline_table(summary["matched_utility"]))
    log(f"wrote {args.out}/summary.json and {args.out}/report.md in {summary['wall_time_s']} s")
    return 0
