"""``baldro demo``: the end-to-end offline run on the embedded benchmark."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="end-to-end unlearning demo on the embedded benchmark (offline, CPU)")
    p.add_argument("--out", default="demo_out")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(
        "baldro demo is not built yet: the data, training and evaluation stages are still in progress.\n"
        "Working today: the BalDRO core (objectives x aggregators), see README.md.",
        file=sys.stderr,
    )
    return 1
