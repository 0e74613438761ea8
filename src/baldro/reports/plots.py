"""Report plots (matplotlib, Agg backend): FQ–MU scatter, asynchronous-forgetting panels, DRO weight concentration
(effective sample size, max weight), β* traces."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from baldro.reports.plot_axes import fit_title, fq_log_axis  # noqa: E402
from baldro.reports.records import RunRecord, read_per_sample  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> Path:
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


TARGET_WITHOUT_FQ = "target model: MU only (no FQ: no retain logs)"


def fq_mu_plot(records: list[RunRecord], path: Path, reference: dict[str, RunRecord] | None = None) -> Path:
    """Forget Quality (log scale, whole decades: :func:`~baldro.reports.plot_axes.fq_log_axis`) against Model
    Utility: one point per run; target/retain models marked — a reference without FQ (evaluated without retain logs)
    as a dotted vertical line at its MU, named in the legend."""
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    methods = list(dict.fromkeys(r.method for r in records))
    colors = plt.get_cmap("tab10")
    shown: list[float] = []
    for i, method in enumerate(methods):
        pts = [(r.metric("model_utility"), r.metric("forget_quality")) for r in records if r.method == method]
        pts = [(mu, fq) for mu, fq in pts if fq > 0 and not math.isnan(mu)]
        if pts:
            ax.scatter(*zip(*pts), label=method, color=colors(i % 10), alpha=0.8)
            shown += [fq for _, fq in pts]
    for name, marker in (("target", "X"), ("retain", "*")):
        rec = (reference or {}).get(name)
        if rec is None:
            continue
        fq, mu, label = rec.metric("forget_quality"), rec.metric("model_utility"), f"{name} model"
        if name == "retain" and (math.isnan(fq) or fq == 1.0):
            fq, label = 1.0, "retain model (FQ = 1: the KS test against itself)"
        if fq > 0:
            ax.scatter(mu, fq, marker=marker, s=160, color="black", label=label)
            shown.append(fq)
        elif not math.isnan(mu):
            ax.axvline(mu, color="black", ls=":", lw=1.5,
                       label=TARGET_WITHOUT_FQ if name == "target" else f"{name} model: MU only (no FQ)")
    fq_log_axis(ax, shown)
    ax.set_xlabel("Model Utility")
    ax.set_ylabel("Forget Quality (KS p-value, log scale)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    return _save(fig, path)


MIN_WIDTH_IN = 5.6


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


def _integer_steps(ax: plt.Axes) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _first_seed_logs(records: list[RunRecord]) -> list[tuple[str, list[dict]]]:
    """``(method, per-sample rows)`` of the first run of each method that has a per-sample log."""
    seen: dict[str, list[dict]] = {}
    for record in records:
        if record.method not in seen and record.per_sample_path is not None:
            seen[record.method] = read_per_sample(record.per_sample_path)
    return list(seen.items())


def asynchrony_plot(records: list[RunRecord], path: Path, key: str = "nll") -> Path:
    """Per-sample forget ``key`` over training steps, one panel per method (first seed of each): median line and
    10–90 % band over the forget set (each sample at its latest logged value). The NLL panels share their y axis; the
    objective losses do not (each objective has its own scale)."""
    logs = [(m, _quantile_bands(rows, key)) for m, rows in _first_seed_logs(records)]
    logs = [(m, (steps, bands)) for m, (steps, bands) in logs if len(steps)]
    cols = min(4, max(1, len(logs)))
    rows = max(1, math.ceil(len(logs) / cols))
    width = max(3.2 * cols + 0.6, MIN_WIDTH_IN)  # one panel alone would be narrower than the figure's title
    fig, axes = plt.subplots(rows, cols, figsize=(width, 2.8 * rows + 0.6), sharex=True,
                             sharey=key == "nll", squeeze=False, layout="constrained")
    colors = plt.get_cmap("tab10")
    for i, (ax, (method, (steps, bands))) in enumerate(zip(axes.flat, logs)):
        ax.fill_between(steps, bands[:, 0], bands[:, 2], color=colors(i % 10), alpha=0.25, label="10–90 %")
        ax.plot(steps, bands[:, 1], color=colors(i % 10), label="median")
        ax.set_title(method, fontsize=10)
        ax.grid(alpha=0.3)
        _integer_steps(ax)
    for ax in list(axes.flat)[len(logs):]:
        ax.set_visible(False)
    if not logs:
        axes[0, 0].text(0.5, 0.5, "no per-sample logs", ha="center", va="center", transform=axes[0, 0].transAxes)
    else:
        axes[0, 0].legend(fontsize=8)
    fig.supxlabel("optimizer step")
    fig.supylabel(f"per-sample forget {key}")
    fig.suptitle(fit_title(f"Asynchronous forgetting: spread of the per-sample {key} over the forget set", width, 11),
                 fontsize=11)
    return _save(fig, path)


def dro_statistics(rows: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per logged step: ``(steps, ESS / n, n · max weight)`` of that step's forget-batch weights, ESS = 1 / Σ w²
    (Kish's effective sample size). Uniform weights give 1 and 1; all weight on one sample gives 1/n and n."""
    by_step: dict[int, list[float]] = defaultdict(list)
    for row in rows:
        if "weight" in row:
            by_step[int(row["step"])].append(float(row["weight"]))
    steps = sorted(by_step)
    ess, peak = [], []
    for step in steps:
        w = np.array(by_step[step])
        w = w / w.sum()
        ess.append(1.0 / float(np.sum(w**2)) / len(w))
        peak.append(float(w.max()) * len(w))
    return np.array(steps), np.array(ess), np.array(peak)


def dro_stats_plot(records: list[RunRecord], path: Path) -> Path:
    """How far each method's per-sample weights are from uniform over training (first seed of each): effective sample
    size as a fraction of the batch (1 = uniform) and the largest weight × batch size (1 = uniform)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), sharex=True, layout="constrained")
    colors = plt.get_cmap("tab10")
    for i, (method, rows) in enumerate(_first_seed_logs(records)):
        steps, ess, peak = dro_statistics(rows)
        if len(steps):
            style = {"color": colors(i % 10), "label": method, "marker": "o" if len(steps) < 30 else None,
                     "markersize": 3}
            left.plot(steps, ess, **style)
            right.plot(steps, peak, **style)
    left.set_ylabel("effective sample size / batch (1 = uniform)")
    left.set_ylim(0, 1.05)
    right.set_ylabel("max weight × batch size (1 = uniform)")
    right.set_ylim(bottom=0)
    for ax in (left, right):
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
        _integer_steps(ax)
    if right.get_legend_handles_labels()[0]:  # no per-sample weights logged: no legend (and no warning)
        right.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle("DRO weights: how concentrated each forget batch's weights are", fontsize=11)
    return _save(fig, path)


def beta_star_plot(records: list[RunRecord], path: Path) -> Path | None:
    """β* over steps for kl_radius runs; None when no run logged β*."""
    traces = []
    for record in records:
        if record.per_sample_path is None:
            continue
        points = {int(r["step"]): float(r["beta_star"]) for r in read_per_sample(record.per_sample_path) if "beta_star" in r}
        if points:
            label = record.method if record.seed is None else f"{record.method} seed {record.seed}"
            traces.append((label, sorted(points.items())))
    if not traces:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, pts in traces:
        ax.plot(*zip(*pts), label=method)
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    _integer_steps(ax)
    ax.set_ylabel("β*")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)
