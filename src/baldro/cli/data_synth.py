"""``baldro data synth --out DIR [--size NAME] [--seed N] [--authors N] [--questions Q] [--uniform]
[--own-forget-values] [--own-phrasings] [--own-forget-fraction F] [--graded-copies]``: the embedded benchmark (``--authors`` / ``--questions`` override the named size; a size may
turn ``--own-forget-values`` on, see :data:`baldro.data.synth.sizes.DESIGNS`)."""

from __future__ import annotations

import argparse
import json


def add_synth_parser(data_subparsers: argparse._SubParsersAction) -> None:
    """Add ``synth`` to the ``baldro data`` sub-commands."""
    from baldro.data.synth import SIZES

    p = data_subparsers.add_parser(
        "synth", help="write the embedded fictitious-author benchmark (TOFU split names and schema) to a folder"
    )
    p.add_argument("--out", required=True, help="folder to create (refused if not empty, unless --overwrite)")
    p.add_argument("--seed", type=int, default=0, help="same seed, byte-identical files (default 0)")
    sizes = ", ".join(f"{k}: {s.authors} authors x {s.questions} questions, {s.forget_split}" for k, s in SIZES.items())
    p.add_argument("--size", default="demo", help=f"named size ({sizes}; default demo)")
    p.add_argument("--authors", type=int, default=None, help="authors in full (default: the --size's)")
    p.add_argument("--questions", type=int, default=None, help="questions per author (default: the --size's)")
    p.add_argument(
        "--uniform", action="store_true", help="remove the designed heterogeneity of forgetting difficulty"
    )
    p.add_argument(
        "--own-forget-values", action="store_true",
        help="forget and holdout authors (and their perturbed answers) use values no retain author has "
             "(on by default for the sizes that name it)",
    )
    p.add_argument(
        "--own-phrasings", action="store_true",
        help="forget and holdout authors' answers (paraphrased and perturbed too) use answer templates no retain "
             "author uses",
    )
    p.add_argument(
        "--own-forget-fraction", type=float, default=None, metavar="F",
        help="only this share of the designed forget authors (0.5: every second one) owns its values like "
             "--own-forget-values; the others share values with retain authors (mixed design; default off)",
    )
    p.add_argument(
        "--graded-copies", action="store_true",
        help="grade the designed forget facts' extra copies (11 facts 5-7, 6 facts 2-3, the rest none) at about "
             "the same number of rows in full",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    p.set_defaults(func=run_synth)


def run_synth(args: argparse.Namespace) -> int:
    from baldro.data.synth import size_preset, write_benchmark
    from baldro.data.synth.sizes import size_design
    from baldro.data.synth.writer import check_own_fraction, check_sizes
    from baldro.runfolder import check_out_dir, staged

    size = size_preset(args.size)
    own = args.own_forget_values or size_design(args.size).get("own_forget_values", False)
    args.authors = size.authors if args.authors is None else args.authors
    args.questions = size.questions if args.questions is None else args.questions
    check_sizes(args.authors, args.questions)
    fraction = getattr(args, "own_forget_fraction", None)
    if fraction is None:
        fraction = size_design(args.size).get("own_forget_fraction")
    check_own_fraction(fraction)
    if fraction is not None and own:
        from baldro.errors import ConfigError
        raise ConfigError("--own-forget-fraction and --own-forget-values: use one (--own-forget-values is fraction 1)")
    out = check_out_dir(args.out, args.overwrite)
    with staged(out, args.overwrite) as tmp:
        write_benchmark(tmp, seed=args.seed, authors=args.authors, questions=args.questions, uniform=args.uniform,
                        percents=size.percents, own_forget_values=own,
                        own_phrasings=args.own_phrasings, own_forget_fraction=fraction,
                        graded_copies=args.graded_copies)
    rows = json.loads((out / "META.json").read_text())["rows"]
    print(json.dumps({"out": str(out), "rows": rows}, indent=2))
    return 0
