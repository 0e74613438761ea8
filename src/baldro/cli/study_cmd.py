"""``baldro study``: the matched-utility experiment (BalDRO vs NPO / SimNPO, seeds, β grid), resumable."""

from __future__ import annotations

import argparse

from baldro.cli.pool_args import add_pool_arguments, pool_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "study",
        help="does BalDRO beat its base method at matched utility? seeds × methods × β grid with curves (CPU)",
    )
    p.add_argument("--out", default="study_out", help="folder for every stage's output (default: study_out)")
    p.add_argument("--methods", default=None,
                   help="comma-separated method presets (default: npo,npo+g,npo+dv,npo+dv-official,simnpo,simnpo+dv)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per method (default: 6; 2 with --quick)")
    p.add_argument("--betas", default=None, help="comma-separated DV β grid for npo+dv (default: 0.5,1,2,5,10)")
    p.add_argument("--size", default=None,
                   help="study benchmark: study-retain5-e85 (default: retain weight 5, target / retain 85 epochs), "
                        "study, study-own (own forget values) or study-retain5 (retain weight 5); "
                        "see docs/study_benchmark.md")
    p.add_argument("--mu-keep", type=float, default=None, help="utility bar as a fraction of the target's MU (0.9)")
    p.add_argument("--unlearn-epochs", type=float, default=None,
                   help="unlearning epochs of every run (default: the benchmark's, 5 = 65 steps); a new --out folder")
    p.add_argument("--model", default=None,
                   help="real-model study: the pretrained model (a GGUF file, a folder holding one, or a Hugging Face "
                        "folder); with --data (docs/real_study.md)")
    p.add_argument("--data", default=None, help="real-model study: a folder of TOFU's files (locuslab/TOFU)")
    p.add_argument("--models-only", action="store_true",
                   help="real-model study: stop after the target / retain models and their evaluations")
    p.add_argument("--quick", action="store_true", help="a smoke-sized study (tests; minutes)")
    p.add_argument("--fresh", action="store_true", help="redo every stage instead of reusing cached ones")
    add_pool_arguments(p)
    p.set_defaults(func=run)


def _floats(text: str) -> tuple[float, ...]:
    from baldro.errors import ConfigError

    try:
        return tuple(float(b) for b in text.split(",") if b.strip())
    except ValueError as err:
        raise ConfigError(f"--betas={text!r}: give comma-separated numbers, e.g. 0.5,1,2") from err


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from baldro.errors import ConfigError
    from baldro.experiments.study import DEFAULT_STUDY_SIZE, QUICK_SETTINGS, StudyProtocol, run_study, study_settings
    from baldro.reports.study_report import headline_table

    protocol = StudyProtocol.quick() if args.quick else StudyProtocol()
    changes: dict = {}
    if args.methods:
        changes["methods"] = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    if args.seeds is not None:
        changes["seeds"] = args.seeds
    if args.betas is not None:
        changes["beta_grid"] = _floats(args.betas)
    if args.mu_keep is not None:
        if not 0 < args.mu_keep <= 1:
            raise ConfigError(f"--mu-keep={args.mu_keep}: give a fraction in (0, 1]")
        changes["mu_keep"] = args.mu_keep
    if (args.model is None) != (args.data is None):
        raise ConfigError("the real-model study needs both --model and --data")
    if args.model is not None:
        return _run_real(args, changes)
    if args.models_only:
        raise ConfigError("--models-only belongs to the real-model study (--model, --data)")
    protocol = replace(protocol, **changes)
    settings = study_settings(args.size or DEFAULT_STUDY_SIZE)  # checked before --quick replaces it, so a misspelt name never runs
    if args.quick:
        settings = QUICK_SETTINGS
    if args.unlearn_epochs is not None:
        if not 0 < args.unlearn_epochs < float("inf"):
            raise ConfigError(f"--unlearn-epochs={args.unlearn_epochs}: give a positive number of epochs")
        settings = replace(settings, unlearn_epochs=args.unlearn_epochs)
    summary = run_study(args.out, protocol, settings, fresh=args.fresh, workers=pool_from_args(args, args.out))
    print(headline_table(summary))
    print(f"wrote {args.out}/summary.json and {args.out}/report.md in {summary['wall_time_s']} s")
    return 0


def _run_real(args: argparse.Namespace, changes: dict) -> int:
    from dataclasses import replace

    from baldro.errors import ConfigError
    from baldro.experiments.real_study import QUICK_REAL_PROTOCOL, REAL_PROTOCOL, RealSettings, run_real_study
    from baldro.reports.study_report import headline_table

    if args.size is not None or args.unlearn_epochs is not None or args.betas is not None:
        raise ConfigError("--size, --unlearn-epochs and --betas belong to the synthetic study; the real-model study's "
                          "settings are fixed in docs/real_study.md")
    protocol = replace(QUICK_REAL_PROTOCOL if args.quick else REAL_PROTOCOL, **changes)
    settings = RealSettings.quick() if args.quick else RealSettings()
    summary = run_real_study(args.out, args.model, args.data, protocol, settings, fresh=args.fresh,
                             workers=pool_from_args(args, args.out),
                             models_only=args.models_only)
    if args.models_only:
        print(f"target model: {summary['target']}")
        return 0
    print(headline_table(summary))
    print(f"wrote {args.out}/summary.json and {args.out}/report.md in {summary['wall_time_s']} s")
    return 0
