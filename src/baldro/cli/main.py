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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="baldro", description="Machine unlearning for LLMs with BalDRO.")
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
