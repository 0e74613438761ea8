"""Unlearning-curve plot: Forget Quality (log scale, a KS p-value) against Model Utility along each run's
trajectory, one line per method averaged over seeds, with the seed range as a band (``matplotlib``, Agg)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from baldro.reports.plot_axes import fq_log_axis, spread_labels  # noqa: E402

FQ_FLOOR = 1e-30  # a KS p-value of 0 (underflow) is drawn here on the log axis


def seed_band(runs: Sequence[Sequence[Mapping[str, Any]]]) -> dict[str, np.ndarray]:
    """Per evaluated step shared by every seed: mean MU, geometric-mean FQ (mean of log10), and min/max FQ.

    Steps missing from any seed or with a non-numeric FQ/MU are dropped (the curves are only compared where all
    seeds were evaluated)."""
    per_run = []
    for rows in runs:
        per_run.append({
            int(r["step"]): (float(r["model_utility"]), max(float(r["forget_quality"]), FQ_FLOOR))
            for r in rows
            if isinstance(r.get("forget_quality"), int | float) and isinstance(r.get("model_utility"), int | float)
            and math.isfinite(r["forget_quality"]) and math.isfinite(r["model_utility"])
        })
    steps = sorted(set.intersection(*(set(p) for p in per_run))) if per_run else []
    mu = np.array([[p[s][0] for p in per_run] for s in steps]).reshape(len(steps), len(per_run))
    fq = np.array([[p[s][1] for p in per_run] for s in steps]).reshape(len(steps), len(per_run))
    return {
        "step": np.array(steps, dtype=int),
        "mu": mu.mean(axis=1),
        "fq": 10 ** np.log10(fq).mean(axis=1) if steps else np.zeros(0),
        "fq_low": fq.min(axis=1) if steps else np.zeros(0),
        "fq_high": fq.max(axis=1) if steps else np.zeros(0),
    }


END_FONT = 7


def _end_labels(ax: Any, ends: Sequence[tuple[float, float, Any]]) -> None:
    """"end" beside each curve's last point, pushed apart where two would overlap (:func:`spread_labels`, in points
    of the laid-out figure)."""
    if not ends:
        return
    scale = 72.0 / ax.figure.dpi
    anchors = [tuple(float(v) * scale for v in ax.transData.transform((mu, fq))) for mu, fq, _ in ends]
    offsets = spread_labels(anchors, height=END_FONT * 1.3, width=END_FONT * 2.2, base=(5.0, 3.0))
    for (mu, fq, color), offset in zip(ends, offsets):
        moved = offset[1] > 3.0 + 1e-6
        ax.annotate("end", (mu, fq), fontsize=END_FONT, color=color, xytext=offset, textcoords="offset points",
                    arrowprops={"arrowstyle": "-", "color": color, "lw": 0.5} if moved else None)


def trajectory_plot(
    runs: Mapping[str, Sequence[Sequence[Mapping[str, Any]]]],
    path: str | Path,
    target: tuple[float, float] | None = None,
    retain: tuple[float, float | None] | None = None,
    mu_threshold: float | None = None,
    title: str | None = None,
) -> Path:
    """``runs[method]`` = the trajectories of its seeds → PNG at ``path``. ``target`` / ``retain`` = (MU, FQ) of those
    models (a retain FQ of None is drawn at 1: the KS test of the retain model against itself); ``mu_threshold``
    (mu_keep · target MU) is drawn as a vertical dashed line."""
    fig, ax = plt.subplots(figsize=(8.5, 4.8))
    colors = plt.get_cmap("tab10")
    ends: list[tuple[float, float, Any]] = []  # (MU, FQ, colour) of each curve's last evaluated step
    shown: list[float] = []
    for i, (method, trajectories) in enumerate(runs.items()):
        band = seed_band(trajectories)
        if band["step"].size == 0:
            continue
        color = colors(i % 10)
        label = f"{method} (n={len(trajectories)})"
        ax.plot(band["mu"], band["fq"], "-o", ms=3, color=color, label=label)
        if len(trajectories) > 1:
            verts = np.concatenate([
                np.stack([band["mu"], band["fq_low"]], 1), np.stack([band["mu"], band["fq_high"]], 1)[::-1]
            ])
            ax.fill(verts[:, 0], verts[:, 1], color=color, alpha=0.15, lw=0)
        ax.plot(band["mu"][-1], band["fq"][-1], "o", ms=7, mfc="none", mec=color, mew=1.5)
        ends.append((float(band["mu"][-1]), float(band["fq"][-1]), color))
        shown += [*band["fq_low"].tolist(), *band["fq_high"].tolist()]
    if target is not None:
        ax.scatter(*target, marker="X", s=150, color="black", zorder=5, label="target model (step 0)")
        shown.append(target[1])
    if retain is not None:
        mu, fq = retain
        label = "retain model" if fq is not None else "retain model (FQ = 1: KS against itself)"
        ax.scatter(mu, 1.0 if fq is None else fq, marker="*", s=200, color="black", zorder=5, label=label)
        shown.append(1.0 if fq is None else fq)
    if mu_threshold is not None:
        ax.axvline(mu_threshold, ls="--", color="gray", lw=1, label=f"utility bar (MU = {mu_threshold:.3g})")
    if ends:
        ax.plot([], [], "o", ms=7, mfc="none", mec="gray", mew=1.5, ls="none", label="end (last evaluated step)")
    fq_log_axis(ax, shown)
    ax.set_xlabel("Model Utility")
    ax.set_ylabel("Forget Quality (KS p-value, log scale)")
    ax.set_title(title or "Unlearning curves: seed mean (geometric for FQ), band = seed min–max")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    _end_labels(ax, ends)
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
