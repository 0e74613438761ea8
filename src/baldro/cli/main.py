"""Entry point of the ``baldro`` command. Each sub-command lives in its own module with a ``register`` function."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from baldro.cli.failures import environment_error
from baldro.errors import BaldroError

# One line per command module: each exposes ``register(subparsers)`` and sets ``func`` on its parsers.
COMMAND_MODULES: tuple[str, ...] = (
    "baldro.cli.demo_cmd",
    "baldro.cli.report_cmd",
    "baldro.cli.sweep_cmd",
    "baldro.cli.study_cmd",
    "baldro.cli.paper_cmd",
    "baldro.cli.data_cmd",
    "baldro.cli.model_cmd",
    "baldro.cli.eval_cmd",
    "baldro.cli.train_cmd",
    "baldro.cli.config_cmd",
)


QUICKSTARTS = """
quickstart on a CPU (offline, a few minutes: the embedded benchmark and a tiny model):
  baldro demo --out demo_out

quickstart on a real model (TOFU, open-unlearning's Llama-3.2-1B target, a GPU):
  hf download locuslab/TOFU --repo-type dataset --local-dir data/tofu
  hf download open-unlearning/tofu_Llama-3.2-1B-Instruct_full --local-dir models/tofu_1b_full
  hf download open-unlearning/eval --repo-type dataset --include 'tofu_Llama-3.2-1B-Instruct_retain90/*' --local-dir saves/eval
  baldro unlearn --config configs/tofu_npo_dv.yaml --set model.path=models/tofu_1b_full --set data.source=data/tofu --set output_dir=runs/npo_dv
  baldro eval tofu --model runs/npo_dv --data data/tofu --forget-split forget10 --pad-masking token --retain-logs saves/eval/tofu_Llama-3.2-1B-Instruct_retain90/TOFU_EVAL.json --out runs/npo_dv/eval
  baldro report runs/npo_dv --out report

`baldro COMMAND --help` for each command; README.md and docs/ for the rest."""


def package_version() -> str:
    """The installed distribution's version (no heavy import)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("baldro")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="baldro", description="Machine unlearning for LLMs with BalDRO.")
    parser.add_argument("--version", action="version", version=f"baldro {package_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


INTERRUPTED = ("baldro: interrupted; nothing half-written is left in place (a training run keeps its complete "
               "checkpoints: rerun with --resume)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command: exit 0, 2 for bad input or a machine failure (full disk, read-only folder, permissions:
    :mod:`baldro.cli.failures`), one line each, and 130 for Ctrl-C. ``BALDRO_TRACEBACK=1`` re-raises instead."""
    args: argparse.Namespace | None = None
    try:
        parser = build_parser()
        if not (sys.argv[1:] if argv is None else argv):  # no command: what there is, and where to start
            print(parser.format_help() + QUICKSTARTS)
            return 0
        args = parser.parse_args(argv)
        rc = args.func(args)
    except BaldroError as err:
        print(f"baldro: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if os.environ.get("BALDRO_TRACEBACK"):
            raise
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except Exception as err:
        message = environment_error(err, getattr(args, "out", None))
        if message is None or os.environ.get("BALDRO_TRACEBACK"):
            raise
        print(f"baldro: error: {message}", file=sys.stderr)
        return 2
    leave_process_group()
    return int(rc or 0)


def leave_process_group() -> None:
    """Under torchrun / accelerate launch, after a command finished on every process: free what holds the process
    group (the trainer's DDP / FSDP wrapper), wait for the others and destroy the group. A gloo group still alive at
    interpreter teardown can abort a finished run ("terminate called without an active exception", exit -6; 2 of 8
    bare gloo runs here, none with the group destroyed first). Nothing for a command that never imported torch."""
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return
    import gc

    gc.collect()
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
