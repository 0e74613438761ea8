"""``baldro data ...``: ``inspect SOURCE`` prints ``{split: row_count}`` as JSON; ``synth`` writes the benchmark."""

from __future__ import annotations

import argparse
import json

from baldro.cli.data_synth import add_synth_parser


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="inspect datasets, generate the embedded benchmark")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    inspect = data_sub.add_parser(
        "inspect", help="validate a TOFU-style (or MUSE) source and print {split: row_count} as JSON"
    )
    inspect.add_argument("source", help="a local folder of split files, or a hub id such as locuslab/TOFU")
    inspect.add_argument("--split", action="append", help="only this split (repeatable); default: every split found")
    inspect.add_argument("--muse", action="store_true", help="read the source as MUSE (auto for local MUSE folders)")
    inspect.set_defaults(func=run_inspect)
    add_synth_parser(data_sub)


def run_inspect(args: argparse.Namespace) -> int:
    from baldro.data.muse import is_muse_folder, muse_split_counts
    from baldro.data.tofu import tofu_split_counts

    if args.muse or is_muse_folder(args.source):
        counts = muse_split_counts(args.source, args.split)
    else:
        counts = tofu_split_counts(args.source, args.split)
    print(json.dumps(counts, indent=2))
    return 0
