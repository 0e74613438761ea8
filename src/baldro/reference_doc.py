"""The README's config reference, generated from the registries and the run defaults.

``python -m baldro.reference_doc`` prints it; a test checks that README.md holds the current text between the
``<!-- config-reference -->`` markers, so the documentation cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from baldro import aggregators, objectives, retain
from baldro.core.registry import Registry


def _params(cls: type) -> str:
    fields = [f for f in dataclasses.fields(cls) if f.init]
    return ", ".join(f"`{f.name}={f.default!r}`" for f in fields) or "—"


def registry_table(registry: Registry[Any]) -> str:
    rows = ["| name | parameters (defaults) | definition |", "|---|---|---|"]
    for name in registry.names():
        cls = registry.get(name)
        module_doc = (__import__(cls.__module__, fromlist=["_"]).__doc__ or "").strip()
        summary = " ".join(module_doc.split("\n\n")[0].split()).replace("|", "\\|")
        rows.append(f"| `{name}` | {_params(cls)} | {summary} |")
    return "\n".join(rows)


def config_reference() -> str:
    from baldro.training.unlearn import UNLEARN_DEFAULTS

    parts = [
        "### Objectives (`objective: {name: ..., <parameters>}`)",
        "",
        registry_table(objectives.OBJECTIVES),
        "",
        "### Aggregators (`aggregator: {name: ..., <parameters>}`)",
        "",
        registry_table(aggregators.AGGREGATORS),
        "",
        "### Retain terms (`retain: {name: ..., weight: λ}`)",
        "",
        registry_table(retain.RETAIN_TERMS),
        "",
        "### `baldro unlearn` defaults (every `transformers.TrainingArguments` field goes under `training:`)",
        "",
        "```json",
        json.dumps(UNLEARN_DEFAULTS, indent=1, sort_keys=True),
        "```",
        "",
        "Set only when given (absent from the defaults on purpose): `data.pad_masking` — `position` (absent: padding",
        "masked by position) or `token` (open-unlearning's collator: `attention_mask = input_ids != pad_token_id`);",
        "`compat: released` sets `token` unless the config sets it (docs/pad-masking.md).",
    ]
    return "\n".join(parts)


if __name__ == "__main__":
    print(config_reference())
