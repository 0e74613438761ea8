"""Measure one benchmark regime for the study (issue 11 item 3): target / retain properties and an NPO trajectory.

The regime search (docs/study_benchmark.md) ran the demo pipeline's stages with NPO checkpoints; the same measurement
now comes from the study pipeline, which records unlearning curves::

    .venv/bin/baldro study --methods npo --seeds 1 --betas "" --out runs/regime     # models + one NPO curve
    .venv/bin/python benchmarks/study_regime.py runs/regime

Prints JSON lines: the target's and retain's forget exact match, FQ, MU, truth ratio and the 90 %−10 % spread of
per-item forget NLL, then one line per point of each run's trajectory (step, FQ, MU, forget NLL spread).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np


def forget_properties(folder: Path) -> dict[str, Any]:
    """EM (greedy generation == answer), FQ, MU, truth ratio, forget NLL median and 90−10 % spread of one eval."""
    ev = json.loads((folder / "TOFU_EVAL.json").read_text())
    summary = json.loads((folder / "TOFU_SUMMARY.json").read_text())
    items = list(ev["forget_Q_A_ROUGE"]["value_by_index"].values())
    nll = [-math.log(max(v["prob"], 1e-300)) for v in ev["forget_Q_A_Prob"]["value_by_index"].values()]
    q10, q50, q90 = np.quantile(nll, [0.1, 0.5, 0.9])
    return {
        "fq": summary.get("forget_quality"), "mu": summary.get("model_utility"), "tr": summary.get("forget_truth_ratio"),
        "em": float(np.mean([it["generation"].strip() == it["ground_truth"].strip() for it in items])),
        "n": len(nll), "nll_median": float(q50), "nll_spread": float(q90 - q10),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study_dir", type=Path, help="a `baldro study` output folder")
    a = p.parse_args(argv)
    for name in ("target", "retain"):
        print(json.dumps({"model": name, **forget_properties(a.study_dir / name / "eval")}))
    for path in sorted(a.study_dir.glob("runs/*/seed*/train/model/trajectory.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            print(json.dumps({"run": str(path.parents[2].relative_to(a.study_dir)), "step": row["step"],
                              "fq": row.get("forget_quality"), "mu": row.get("model_utility"),
                              "nll_spread": row.get("forget_nll_iqr")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
