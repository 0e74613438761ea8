"""``baldro model tiny --data DIR --out DIR [--layers L --hidden H]``: tokenizer + untrained tiny Llama."""

from __future__ import annotations

import argparse
import json

from baldro.cli.names import TINY_HIDDEN, TINY_LAYERS, TINY_VOCAB


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("model", help="build models")
    sub = p.add_subparsers(dest="model_command", required=True)
    t = sub.add_parser(
        "tiny", help="train a byte-level BPE tokenizer on a benchmark folder and save an untrained small Llama"
    )
    t.add_argument("--data", required=True, help="benchmark folder (e.g. from `baldro data synth`)")
    t.add_argument("--out", required=True, help="folder to create (refused if not empty, unless --overwrite)")
    t.add_argument("--layers", type=int, default=TINY_LAYERS, help=f"decoder layers (default {TINY_LAYERS})")
    t.add_argument("--hidden", type=int, default=TINY_HIDDEN, help=f"hidden size (default {TINY_HIDDEN})")
    t.add_argument("--vocab", type=int, default=TINY_VOCAB, help=f"max tokenizer size (default {TINY_VOCAB})")
    t.add_argument("--seed", type=int, default=0, help="weight initialisation seed (default 0)")
    t.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    t.set_defaults(func=run_tiny)


def run_tiny(args: argparse.Namespace) -> int:
    from baldro.modeling.tiny import benchmark_text, build_tiny_model, check_shape
    from baldro.runfolder import check_out_dir, staged

    check_shape(args.layers, args.hidden, args.vocab)
    benchmark_text(args.data)
    out = check_out_dir(args.out, args.overwrite)
    with staged(out, args.overwrite) as tmp:
        build_tiny_model(args.data, tmp, layers=args.layers, hidden=args.hidden, seed=args.seed, vocab_size=args.vocab)
    config = json.loads((out / "config.json").read_text())
    print(json.dumps({"out": str(out), "vocab_size": config["vocab_size"], "layers": args.layers, "hidden": args.hidden}))
    return 0
