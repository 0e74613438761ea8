"""Report plots (matplotlib, Agg backend): FQ–MU scatter, asynchronous-forgetting bands, DRO weights, β* traces."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from baldro.reports.records import RunRecord, read_per_sample  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fq_mu_plot(records: list[RunRecord], path: Path, reference: dict[str, RunRecord] | None = None) -> Path:
    """Forget Quality (log scale) against Model Utility: one point per run; target/retain models marked."""
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    methods = list(dict.fromkeys(r.method for r in records))
    colors = plt.get_cmap("tab10")
    for i, method in enumerate(methods):
        pts = [(r.metric("model_utility"), r.metric("forget_quality")) for r in records if r.method == method]
        pts = [(mu, fq) for mu, fq in pts if fq > 0 and not math.isnan(mu)]
        if pts:
            ax.scatter(*zip(*pts), label=method, color=colors(i % 10), alpha=0.8)
    for name, marker in (("target", "X"), ("retain", "*")):
        rec = (reference or {}).get(name)
        if rec is None:
            continue
        fq, label = rec.metric("forget_quality"), f"{name} model"
        if name == "retain" and math.isnan(fq):
            fq, label = 1.0, "retain model (FQ = 1: the KS test against itself)"
        if fq > 0:
            ax.scatter(rec.metric("model_utility"), fq, marker=marker, s=160, color="black", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("Model Utility")
    ax.set_ylabel("Forget Quality (KS p-value, log scale)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _quantile_bands(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """10/50/90 % quantiles over all forget samples of each sample's latest logged value, after every step."""
    by_step: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for row in rows:
        if key in row:
            by_step[int(row["step"])].append((int(row["index"]), float(row[key])))
    latest: dict[int, float] = {}
    steps, bands = [], []
    for step in sorted(by_step):
        latest.update(by_step[step])
        steps.append(step)
        bands.append(np.quantile(list(latest.values()), [0.1, 0.5, 0.9]))
    return np.array(steps), np.array(bands).reshape(-1, 3)


def asynchrony_plot(records: list[RunRecord], path: Path, key: str = "nll") -> Path:
    """Per-sample forget NLL over training steps: median and 10–90 % band over the forget set (each sample at its
    latest logged value), per method (first seed of each)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    seen: set[str] = set()
    colors = plt.get_cmap("tab10")
    for record in records:
        if record.method in seen or record.per_sample_path is None:
            continue
        seen.add(record.method)
        steps, bands = _quantile_bands(read_per_sample(record.per_sample_path), key)
        if len(steps) == 0:
            continue
        color = colors((len(seen) - 1) % 10)
        ax.plot(steps, bands[:, 1], color=color, label=f"{record.method} (median)")
        ax.fill_between(steps, bands[:, 0], bands[:, 2], color=color, alpha=0.15)
    ax.set_xlabel("training step")
    ax.set_ylabel(f"per-sample forget {key} (10/50/90 % quantiles)")
    ax.set_title(f"Asynchronous forgetting ({key})")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def weights_plot(records: list[RunRecord], path: Path, n_steps: int = 3) -> Path:
    """Distribution of the DRO weights × batch size (1 = uniform) at a few steps, per method."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    seen: set[str] = set()
    for record in records:
        if record.method in seen or record.per_sample_path is None:
            continue
        seen.add(record.method)
        by_step: dict[int, list[float]] = defaultdict(list)
        for row in read_per_sample(record.per_sample_path):
            if "weight" in row:
                by_step[int(row["step"])].append(float(row["weight"]))
        steps = sorted(by_step)
        if not steps:
            continue
        picks = sorted({steps[int(i)] for i in np.linspace(0, len(steps) - 1, min(n_steps, len(steps)))})
        for step in picks:
            w = np.array(by_step[step]) * len(by_step[step])
            ax.hist(w, bins=20, alpha=0.4, label=f"{record.method} step {step}")
    ax.set_xlabel("DRO weight × batch size (1 = uniform)")
    ax.set_ylabel("samples")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def beta_star_plot(records: list[RunRecord], path: Path) -> Path | None:
    """β* over steps for kl_radius runs; None when no run logged β*."""
    traces = []
    for record in records:
        if record.per_sample_path is None:
            continue
        points = {int(r["step"]): float(r["beta_star"]) for r in read_per_sample(record.per_sample_path) if "beta_star" in r}
        if points:
            traces.append((record.method, sorted(points.items())))
    if not traces:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, pts in traces:
        ax.plot(*zip(*pts), label=method)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("β*")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)
