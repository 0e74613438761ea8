"""``baldro finetune`` and ``baldro unlearn``: a YAML config plus ``--set key=value`` overrides → one run folder."""

from __future__ import annotations

import argparse

from baldro.cli.names import components_epilog
from baldro.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    for name, text in (
        ("finetune", "supervised fine-tuning on TOFU-style QA or raw text (target, retain and base models)"),
        ("unlearn", "unlearning: objective x DRO aggregator x retain term on the Hugging Face Trainer"),
    ):
        p = subparsers.add_parser(name, help=text, description=text,
                                  epilog=components_epilog() if name == "unlearn" else None)
        p.add_argument("--config", required=True, help="YAML config file (see configs/)")
        p.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a config key (dotted, e.g. training.learning_rate=1e-5); repeatable",
        )
        p.add_argument("--overwrite", action="store_true", help="replace a non-empty output_dir")
        p.add_argument("--resume", action="store_true", help="continue from the last checkpoint of output_dir")
        p.add_argument("--allow-config-change", action="store_true",
                       help="with --resume: accept a config that differs from the saved one (recorded in run_info.json)")
        p.set_defaults(func=run, command_name=name)


def run(args: argparse.Namespace) -> int:
    from baldro.training.config import apply_overrides, load_yaml

    config = apply_overrides(load_yaml(args.config), args.overrides)
    if args.overwrite:
        config["overwrite"] = True
    if args.resume:
        config["resume"] = True
    if args.allow_config_change:
        if not args.resume:
            raise ConfigError("--allow-config-change only applies with --resume")
        config["allow_config_change"] = True
    from baldro.training.device import check_bf16_device

    if args.command_name == "finetune":
        from baldro.training.finetune import parse_finetune, run_finetune

        tuned = parse_finetune(config)
        check_bf16_device(tuned.raw.get("training") or {})  # bf16 on a CPU: our line, before anything is loaded
        out = run_finetune(tuned)
    else:
        from baldro.evaluation.trajectory import trajectory_callback
        from baldro.training.unlearn import parse_unlearn, run_unlearn

        parsed = parse_unlearn(config)  # the one parse: typed and validated before anything runs
        check_bf16_device(parsed.raw.get("training") or {})  # bf16 on a CPU: our line, before anything is loaded
        curve = trajectory_callback(parsed.raw)  # checks data and retain logs before training
        out = run_unlearn(parsed, callbacks=[curve] if curve is not None else [])
    print(out)
    return 0
