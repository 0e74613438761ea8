"""Names and defaults that ``--help`` shows, found without importing any heavy library.

The registries (objectives, aggregators, retain terms) fill themselves by importing torch modules, and the tiny
model's defaults live beside transformers imports; importing them only to print ``--help`` cost seconds. Component
names are therefore read from the ``@REGISTRY.register("name")`` lines of the package's source files (a new
objective or aggregator file shows up in ``--help`` with nothing else to edit); the presets and tiny-model defaults
are plain copies that ``tests/cli/test_names.py`` checks against their sources.
"""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]


def registered_names(package: str, registry: str) -> tuple[str, ...]:
    """Sorted names registered with ``@<registry>.register("...")`` in ``baldro/<package>/*.py`` (no import)."""
    pattern = re.compile(rf"^@{registry}\.register\(\s*[\"']([^\"']+)[\"']", re.M)
    found: set[str] = set()
    for path in (PACKAGE / package).glob("*.py"):
        found.update(pattern.findall(path.read_text(encoding="utf-8")))
    return tuple(sorted(found))


OBJECTIVES: tuple[str, ...] = registered_names("objectives", "OBJECTIVES")
AGGREGATORS: tuple[str, ...] = registered_names("aggregators", "AGGREGATORS")
RETAIN_TERMS: tuple[str, ...] = registered_names("retain", "RETAIN_TERMS")

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
