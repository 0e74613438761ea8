"""Names and defaults that ``--help`` shows, kept here so that building the parser imports no heavy library.

The registries (objectives, aggregators, retain terms) fill themselves by importing torch modules, and the tiny
model's defaults live beside transformers imports; importing them only to print ``--help`` cost seconds. These are
plain copies: ``tests/cli/test_names.py`` checks each one against its source, so adding an objective or changing a
default fails that test until this file is updated too.
"""

from __future__ import annotations

OBJECTIVES: tuple[str, ...] = ("ga", "idk_dpo", "idk_nll", "npo", "satimp", "simnpo", "wga")
AGGREGATORS: tuple[str, ...] = ("chi2", "dv", "group", "kl_radius", "mean")
RETAIN_TERMS: tuple[str, ...] = ("kl", "nll")

# Method presets ``<base>[+<variant>]`` of ``baldro demo`` (source: baldro.experiments.methods).
PRESET_BASES: tuple[str, ...] = ("ga", "graddiff", "npo", "simnpo", "satimp", "wga", "idk_dpo")
PRESET_VARIANTS: tuple[str, ...] = ("g", "dv", "dv-official", "kl_radius", "chi2")
DEFAULT_METHODS: tuple[str, ...] = ("npo", "npo+g", "npo+dv", "npo+dv-official")

# ``baldro model tiny`` defaults (source: baldro.modeling.tiny).
TINY_LAYERS = 2
TINY_HIDDEN = 128
TINY_VOCAB = 2048


def components_epilog() -> str:
    """The component names a config can use, for the ``unlearn`` help text."""
    return (
        f"objective.name: {', '.join(OBJECTIVES)}; aggregator.name: {', '.join(AGGREGATORS)} "
        f"(group = BalDRO-G, dv = BalDRO-DV); retain.name: {', '.join(RETAIN_TERMS)}"
    )
