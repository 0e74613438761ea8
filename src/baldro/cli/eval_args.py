"""Ranges of ``baldro eval tofu|muse``'s numeric arguments, checked before ``--out`` is touched (one line, exit 2):
argparse checks only that they are integers, and a negative ``--max-new-tokens`` gave empty generations (ROUGE 0)
while ``--max-items 0`` evaluated everything."""

from __future__ import annotations

import argparse

from baldro.errors import ConfigError

AT_LEAST_ONE = {"batch_size": "--batch-size", "max_length": "--max-length",
                "generation_batch_size": "--generation-batch-size", "max_items": "--max-items"}
AT_LEAST_ZERO = {"max_new_tokens": "--max-new-tokens", "verbmem_max_new_tokens": "--verbmem-max-new-tokens",
                 "knowmem_max_new_tokens": "--knowmem-max-new-tokens"}


def check_eval_args(args: argparse.Namespace) -> None:
    """ConfigError for a count < 1 (``--max-items``: leave it out to evaluate every row) or a token budget < 0."""
    for name, flag in AT_LEAST_ONE.items():
        value = getattr(args, name, None)
        if value is not None and value < 1:
            hint = " (leave it out to evaluate every row)" if name == "max_items" else ""
            raise ConfigError(f"{flag} {value}: must be ≥ 1{hint}")
    for name, flag in AT_LEAST_ZERO.items():
        value = getattr(args, name, None)
        if value is not None and value < 0:
            raise ConfigError(f"{flag} {value}: must be ≥ 0")
