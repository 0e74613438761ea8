"""``baldro config schema [--out FILE]``: the JSON Schema of a run config (for an editor's YAML checks)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("config", help="run-config tools")
    sub = p.add_subparsers(dest="config_command", required=True)
    s = sub.add_parser("schema", help="write the JSON Schema of a run config (unlearn or finetune)")
    s.add_argument("--out", help="file to write (default: print it)")
    s.set_defaults(func=run_schema)


def schema_text() -> str:
    from baldro.training.schema import schema

    return json.dumps(schema(), indent=1, ensure_ascii=False) + "\n"


def run_schema(args: argparse.Namespace) -> int:
    text = schema_text()
    if args.out:
        from baldro.readback import replace_text

        replace_text(Path(args.out), text)
        print(args.out)
    else:
        print(text, end="")
    return 0
