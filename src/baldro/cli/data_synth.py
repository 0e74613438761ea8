"""``baldro data synth --out DIR [--seed N] [--authors N] [--questions Q] [--uniform]``: the embedded benchmark."""

from __future__ import annotations

import argparse
import json


def add_synth_parser(data_subparsers: argparse._SubParsersAction) -> None:
    """Add ``synth`` to the ``baldro data`` sub-commands."""
    from baldro.data.synth import DEFAULT_AUTHORS, DEFAULT_QUESTIONS

    p = data_subparsers.add_parser(
        "synth", help="write the embedded fictitious-author benchmark (TOFU split names and schema) to a folder"
    )
    p.add_argument("--out", required=True, help="folder to create (refused if not empty, unless --overwrite)")
    p.add_argument("--seed", type=int, default=0, help="same seed, byte-identical files (default 0)")
    p.add_argument("--authors", type=int, default=DEFAULT_AUTHORS, help=f"authors in full (default {DEFAULT_AUTHORS})")
    p.add_argument(
        "--questions", type=int, default=DEFAULT_QUESTIONS, help=f"questions per author (default {DEFAULT_QUESTIONS})"
    )
    p.add_argument(
        "--uniform", action="store_true", help="remove the designed heterogeneity of forgetting difficulty"
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    p.set_defaults(func=run_synth)


def run_synth(args: argparse.Namespace) -> int:
    from baldro.data.synth import write_benchmark
    from baldro.data.synth.writer import check_sizes
    from baldro.runfolder import check_out_dir, staged

    check_sizes(args.authors, args.questions)
    out = check_out_dir(args.out, args.overwrite)
    with staged(out, args.overwrite) as tmp:
        write_benchmark(tmp, seed=args.seed, authors=args.authors, questions=args.questions, uniform=args.uniform)
    rows = json.loads((out / "META.json").read_text())["rows"]
    print(json.dumps({"out": str(out), "rows": rows}, indent=2))
    return 0
