"""``baldro paper``: the paper's experiments with the released scripts' settings — list, show, run (resumable)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from baldro.experiments.paper import PaperPaths


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "paper",
        help="the paper's experiments as the released scripts run them: --list, --show NAME, or run NAME... --out DIR",
        description="Run the BalDRO paper's experiments (TOFU forget01/05/10, MUSE News/Books; NPO, SimNPO, SatImp "
                    "± BalDRO-G / -DV; the β grid of Fig. 4) with the released scripts' settings and grids, and write "
                    "paper_table.md: the paper's values beside ours. docs/paper-presets.md lists every setting. "
                    "Paths may hold {forget_split}, {retain_split}, {holdout_split}, {corpus}, {split}.",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument("--list", action="store_true", help="print the experiments, one per line, name first")
    what.add_argument("--show", metavar="NAME", help="print NAME's run config (its first grid point) as YAML")
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="experiments to run (names or patterns such as 'tofu_forget01_*')")
    p.add_argument("--out", help="folder for every run and the tables (resumable)")
    p.add_argument("--model", help="model folder or hub id instead of the preset's (e.g. a local copy; the tokenizer "
                                   "is then the model's unless --tokenizer)")
    p.add_argument("--tokenizer", help="tokenizer folder or hub id")
    p.add_argument("--data", help="TOFU-style folder or MUSE folder instead of the hub dataset")
    retain = p.add_mutually_exclusive_group()
    retain.add_argument("--retain-logs", help="the retain model's TOFU_EVAL.json / MUSE_EVAL.json (e.g. "
                                              "open-unlearning's published tofu_Llama-2-7b-chat-hf_{retain_split})")
    retain.add_argument("--retain-model", help="retain model to evaluate once per split instead (default: "
                                               "open-unlearning/tofu_Llama-2-7b-chat-hf_{retain_split}, "
                                               "muse-bench/MUSE-{corpus}_retrain)")
    p.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                   help="pin a config key in every grid point (repeatable), e.g. training.learning_rate=1e-5")
    p.add_argument("--max-new-tokens", type=int, help="generated tokens per answer in the evaluation (TOFU: 200; MUSE: "
                                                           "VerbMem 128 and KnowMem 32 unless set)")
    p.add_argument("--eval-batch-size", type=int, help="evaluation batch size (TOFU: 32)")
    p.add_argument("--eval-max-items", type=int, help="evaluate the first N items of every split (quick checks)")
    p.add_argument("--fresh", action="store_true", help="start again instead of reusing finished points")
    p.add_argument("--jobs", type=int, default=1, help="worker processes for the grid points (default: 1)")
    p.set_defaults(func=run)


def _overrides(items: list[str]) -> dict:
    from baldro.errors import ConfigError
    from baldro.training.config import parse_value

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. training.learning_rate=1e-5")
        out[key.strip()] = parse_value(value)
    return out


def _list() -> int:
    from baldro.experiments.paper_presets import paper_experiments

    for exp in paper_experiments().values():
        print(f"{exp.name}  {exp.paper}, {exp.row}; {exp.size} runs; {exp.config['model']['path']}; "
              f"{exp.script.file}")
    return 0


def _show(args: argparse.Namespace) -> int:
    import yaml

    from baldro.experiments.paper import point_config
    from baldro.experiments.paper_presets import experiment, grid_points

    exp = experiment(args.show)
    points = grid_points(exp, _overrides(args.overrides))
    config = point_config(exp, points[0][1], _paths(args))
    print(f"# {exp.name}: {exp.paper}, row {exp.row}; released script {exp.script.file}")
    print(f"# grid ({len(points)} runs; this is the first, {points[0][0]}):")
    for keys, values in exp.axes:
        print(f"#   {' × '.join(keys)}: {', '.join(str(v) for v in values)}")
    print(yaml.safe_dump(config, sort_keys=False, default_flow_style=False, width=120), end="")
    return 0


def _paths(args: argparse.Namespace) -> PaperPaths:
    from baldro.experiments.paper import PaperPaths

    return PaperPaths(args.model, args.tokenizer, args.data, args.retain_logs, args.retain_model)


def run(args: argparse.Namespace) -> int:
    from baldro.errors import ConfigError

    if args.list:
        return _list()
    if args.show:
        return _show(args)
    if not args.names:
        raise ConfigError("name the experiments to run (see baldro paper --list), or pass --list / --show NAME")
    if not args.out:
        raise ConfigError("--out DIR is needed to run experiments (the folder of every run and the tables)")
    for flag in ("max_new_tokens", "eval_batch_size", "eval_max_items", "jobs"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ConfigError(f"--{flag.replace('_', '-')}={value}: give a positive number")
    from baldro.experiments.paper import run_paper
    from baldro.experiments.paper_presets import select

    experiments = select(args.names)
    eval_options = {"max_new_tokens": args.max_new_tokens, "batch_size": args.eval_batch_size,
                    "max_items": args.eval_max_items}
    summary = run_paper(experiments, args.out, _paths(args), _overrides(args.overrides), eval_options,
                        fresh=args.fresh, jobs=args.jobs)
    print((Path(args.out) / "paper_table.md").read_text(), end="")
    print(f"wrote {args.out}/paper_table.md, results.csv and summary.json in {summary['wall_time_s']} s")
    return 0
