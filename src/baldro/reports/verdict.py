"""The headline's honest counts and its one-line verdict, from a study summary (``summarize_study``'s mapping, or its
snapshot in docs/results/).

Step 0 (the target model) keeps the utility bar by definition, so "the run reached the bar" is true of every run whose
step 0 was evaluated and says nothing. What does say something: whether a *trained* step keeps the bar with a Forget
Quality above every earlier one's, step 0's included — i.e. the run's matched FQ comes from a step > 0
(:func:`beats_target`; ties go to the earliest step, so step 0 wins a tie). The verdict line states the pre-registered
comparison with the base method (α = 0.05) and, where it applies, that no run improved on the target at the bar.
No heavy imports: :mod:`baldro.reports.readme_tables` renders the documentation's tables with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ALPHA = 0.05
BEATS_TARGET_COLUMN = "beat target at bar"
BEATS_TARGET_DOC = (f"*{BEATS_TARGET_COLUMN}*: seeds whose matched FQ comes from a trained step (step > 0), i.e. a "
                    "step that keeps the utility bar with a higher FQ than the target model (step 0, which always "
                    "keeps the bar)")


def beats_target(seed: Mapping[str, Any]) -> bool:
    """Whether one seed's matched FQ (``per_seed`` entry: ``reached``, ``step``) comes from a trained step."""
    return bool(seed.get("reached")) and seed.get("step") not in (None, 0)


def beat_count(entry: Mapping[str, Any]) -> str:
    """``k/n``: seeds of a method whose matched FQ comes from a trained step."""
    seeds = entry["per_seed"]
    return f"{sum(1 for s in seeds.values() if beats_target(s))}/{len(seeds)}"


def _num(x: Any) -> str:
    return "n/a" if x is None else f"{x:.2g}"


def one_line_verdict(summary: Mapping[str, Any]) -> str:
    """One sentence: which methods beat (or fall below) their base at matched utility by the pre-registered test
    at α = 0.05, and whether any run improved on the target within the bar at all."""
    methods = {label: e for label, e in summary["methods"].items() if "β=" not in label}
    compared = {label: e for label, e in methods.items() if e.get("base") and e.get("vs_base") and e["vs_base"]["seeds"]}

    def side(sign: int) -> list[str]:
        return [f"{label} (p = {_num(e['vs_base']['p_value'])})" for label, e in compared.items()
                if e["vs_base"]["p_value"] is not None and e["vs_base"]["p_value"] < ALPHA
                and sign * e["vs_base"]["mean_difference"] > 0]

    higher, lower = side(1), side(-1)
    if not compared:
        text = "no method has a base method to be compared with"
    elif higher:
        text = f"matched-utility FQ higher than the base method for {', '.join(higher)}"
        text += f"; lower for {', '.join(lower)}" if lower else ""
    elif lower:
        text = f"no method beats its base; lower than the base method for {', '.join(lower)}"
    else:
        text = f"no method's matched-utility FQ differs detectably from its base method's (α = {ALPHA})"
    improved = sum(1 for e in methods.values() for s in e["per_seed"].values() if beats_target(s))
    total = sum(len(e["per_seed"]) for e in methods.values())
    if total and improved == 0:
        text += ("; and no run improved on the target model within the utility bar (every matched FQ is step 0's), "
                 "so at this bar the comparison says nothing about forgetting")
    elif total:
        text += f"; {improved} of {total} runs improved on the target model within the utility bar"
    return f"**Verdict:** {text}."


__all__ = ["ALPHA", "BEATS_TARGET_COLUMN", "BEATS_TARGET_DOC", "beat_count", "beats_target", "one_line_verdict"]
