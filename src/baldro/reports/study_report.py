"""The study's summary and report: matched-utility Forget Quality per method with intervals and paired tests, the
β sensitivity of BalDRO-DV, and the plots (unlearning curves, β, asynchrony). Definitions in
:mod:`baldro.reports.matched_utility`; protocol in docs/evidence_protocol.md.

``summary.json``::

    {"target": {model_utility, forget_quality, mu_bar}, "retain": {...}, "methods": {label: {"base", "beta",
     "per_seed": {seed: {best_fq, step, reached, final_fq, final_mu, final_nll_iqr, final_loss_iqr}},
     "matched": {n, n_missing, mean, low, high, note}, "final": {...}, "final_mu": {...},
     "vs_base": {seeds, n_positive, n_negative, n_ties, mean_difference, ..., test, p_value, note}}},
     "beta_grid": {"method": ..., "points": [{"beta", "label", "matched": {...}, "vs_base": {...}}]}}
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from baldro.errors import DataError
from baldro.reports.matched_utility import MU_KEEP, Interval, MethodResult, bootstrap_mean, compare
from baldro.reports.records import load_reference, load_run
from baldro.reports.tables import final_iqr
from baldro.reports.verdict import BEATS_TARGET_COLUMN, BEATS_TARGET_DOC, beat_count, one_line_verdict

TRAJECTORY = "trajectory.jsonl"
ALPHA = 0.05


def _plain(value: Any) -> Any:
    """JSON-safe: NaN/inf → None, numpy scalars → Python, tuples → lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_trajectory(folder: Path) -> list[dict[str, Any]]:
    for path in (folder / "train" / "model" / TRAJECTORY, folder / TRAJECTORY):
        if path.is_file():
            return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    raise DataError(f"{folder}: no {TRAJECTORY} (the run was not trained with eval_every)")


def _label_beta(label: str) -> float | None:
    return float(label.rsplit("β=", 1)[1]) if "β=" in label else None


def summarize_study(
    out: Path,
    folders: Mapping[str, Sequence[tuple[int, Path]]],
    bases: Mapping[str, str],
    beta_method: str | None = None,
    beta_of: Mapping[str, float] | None = None,
    mu_keep: float = MU_KEEP,
    secondary_keeps: Sequence[float] = (),
) -> dict[str, Any]:
    """Read every run's trajectory and per-sample log under ``out`` → the summary (see the module docstring).
    ``bases[label]``: the label it is tested against; ``beta_of[label]``: its DV β (for the β grid of
    ``beta_method``)."""
    target = load_reference(out / "target", "target")
    retain = load_reference(out / "retain", "retain")
    target_mu = target.metric("model_utility")
    trajectories = {label: {seed: read_trajectory(folder) for seed, folder in runs} for label, runs in folders.items()}
    results = compare(trajectories, target_mu, {k: v for k, v in bases.items() if k in folders}, mu_keep)
    methods: dict[str, Any] = {}
    for label, result in results.items():
        per_seed = {}
        for seed, folder in folders[label]:
            record = load_run(folder)
            last = trajectories[label][seed][-1]
            per_seed[seed] = {**asdict(result.per_seed[seed]), "final_nll_iqr": last.get("forget_nll_iqr"),
                              "final_loss_iqr": final_iqr(record, "loss")}
        methods[label] = {
            "base": result.base,
            "beta": (beta_of or {}).get(label),
            "per_seed": per_seed,
            "matched": asdict(result.matched),
            "final": asdict(result.final),
            "final_mu": asdict(bootstrap_mean([m.final_mu for m in result.per_seed.values()])),
            "vs_base": None if result.vs_base is None else asdict(result.vs_base),
        }
    summary: dict[str, Any] = {
        "target": {"model_utility": target_mu, "forget_quality": target.metric("forget_quality"),
                   "mu_bar": mu_keep * target_mu},
        "retain": {"model_utility": retain.metric("model_utility"), "forget_quality": retain.metric("forget_quality")},
        "mu_keep": mu_keep,
        "methods": methods,
    }
    secondary: dict[str, Any] = {}
    for keep in secondary_keeps:
        extra = compare(trajectories, target_mu, {k: v for k, v in bases.items() if k in folders}, keep)
        secondary[f"{keep:g}"] = {label: {"matched": asdict(r.matched),
                                          "vs_base": None if r.vs_base is None else asdict(r.vs_base)}
                                  for label, r in extra.items()}
    if secondary:
        summary["secondary_bars"] = secondary
    if beta_method is not None and beta_of:
        points = [{"beta": beta, "label": label, "matched": methods[label]["matched"],
                   "vs_base": methods[label]["vs_base"]}
                  for label, beta in sorted(beta_of.items(), key=lambda kv: kv[1]) if label in methods]
        summary["beta_grid"] = {"method": beta_method, "points": points}
    return _plain(summary)


def _fmt(x: Any, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}g}"


def _interval(entry: Mapping[str, Any]) -> str:
    if entry["mean"] is None:
        return "n/a"
    if entry["low"] is None:
        return f"{_fmt(entry['mean'])} ({entry['note']})"
    return f"{_fmt(entry['mean'])} [{_fmt(entry['low'])}, {_fmt(entry['high'])}]"


def _versus(entry: Mapping[str, Any] | None) -> str:
    if entry is None:
        return "—"
    return (f"{entry['n_positive']}/{entry['n_negative']}/{entry['n_ties']}, Δ̄ = {_fmt(entry['mean_difference'])}, "
            f"{entry['test']} p = {_fmt(entry['p_value'])}")


def verdict(label: str, entry: Mapping[str, Any]) -> str:
    """One sentence: does ``label`` beat its base at matched utility, by the pre-registered test at α = 0.05?"""
    vs = entry["vs_base"]
    if vs is None or not vs["seeds"]:
        return f"- **{label}**: no paired comparison."
    direction = "higher" if vs["mean_difference"] > 0 else "lower" if vs["mean_difference"] < 0 else "equal"
    significant = vs["p_value"] is not None and vs["p_value"] < ALPHA
    claim = ("a difference the test detects" if significant else "no difference the test can detect")
    return (f"- **{label}** vs **{entry['base']}**: matched-utility FQ {direction} on average "
            f"(mean difference {_fmt(vs['mean_difference'])}; higher in {vs['n_positive']}, lower in "
            f"{vs['n_negative']}, tied in {vs['n_ties']} of {len(vs['seeds'])} seeds; {vs['test']} test "
            f"p = {_fmt(vs['p_value'])}) — {claim} at α = {ALPHA}.")


def headline_table(summary: Mapping[str, Any]) -> str:
    lines = [f"| method | matched FQ, mean [95 % CI] | {BEATS_TARGET_COLUMN} | final FQ | final MU | "
             "vs base (+/−/tie, mean Δ, test p) |", "|---|---|---|---|---|---|"]
    for label, entry in summary["methods"].items():
        if entry["beta"] is not None and "β=" in label:
            continue
        lines.append(f"| {label} | {_interval(entry['matched'])} | {beat_count(entry)} | "
                     f"{_interval(entry['final'])} | {_fmt(entry['final_mu']['mean'])} | {_versus(entry['vs_base'])} |")
    return "\n".join(lines)


def secondary_table(summary: Mapping[str, Any]) -> str:
    """Matched FQ at the secondary utility bars (pre-registered as secondary; no significance claims)."""
    bars = summary.get("secondary_bars") or {}
    if not bars:
        return ""
    keeps = list(bars)
    lines = ["| method | " + " | ".join(f"matched FQ at MU ≥ {k} × target (vs base p)" for k in keeps) + " |",
             "|---" * (len(keeps) + 1) + "|"]
    for label in summary["methods"]:
        if "β=" in label:
            continue
        cells = []
        for k in keeps:
            entry = bars[k][label]
            vs = entry["vs_base"]
            cells.append(_interval(entry["matched"]) + ("" if vs is None else f" ({_fmt(vs['p_value'], 2)})"))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def beta_table(summary: Mapping[str, Any]) -> str:
    grid = summary.get("beta_grid")
    if not grid:
        return ""
    lines = ["| β | matched FQ, mean [95 % CI] | vs base (+/−/tie, mean Δ, test p) |", "|---|---|---|"]
    for point in grid["points"]:
        lines.append(f"| {point['beta']:g} | {_interval(point['matched'])} | {_versus(point['vs_base'])} |")
    return "\n".join(lines)


def beta_plot(summary: Mapping[str, Any], path: Path) -> Path | None:
    """Matched-utility FQ of the β grid (mean and 95 % interval; log y) with the base method's mean and interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = summary.get("beta_grid")
    if not grid or not grid["points"]:
        return None
    points = [p for p in grid["points"] if p["matched"]["mean"] is not None]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    betas = [p["beta"] for p in points]
    means = [p["matched"]["mean"] for p in points]
    low = [p["matched"]["low"] if p["matched"]["low"] is not None else p["matched"]["mean"] for p in points]
    high = [p["matched"]["high"] if p["matched"]["high"] is not None else p["matched"]["mean"] for p in points]
    ax.errorbar(betas, means, yerr=[np.subtract(means, low), np.subtract(high, means)], fmt="-o", capsize=4,
                label=f"{grid['method']} (mean, 95 % bootstrap CI)")
    base = points[0]["vs_base"] and summary["methods"].get(summary["methods"][points[0]["label"]]["base"])
    if base and base["matched"]["mean"] is not None:
        m = base["matched"]
        ax.axhline(m["mean"], color="gray", ls="--", label=f"{summary['methods'][points[0]['label']]['base']} (mean)")
        if m["low"] is not None:
            ax.axhspan(m["low"], m["high"], color="gray", alpha=0.15, label="its 95 % CI")
    ax.set_xscale("log")
    ax.set_xticks(betas, [f"{b:g}" for b in betas])
    ax.minorticks_off()
    ax.set_xlabel("DV temperature β (small = closer to the max, large = closer to the mean)")
    ax.set_ylabel("matched-utility Forget Quality")
    ax.set_title("β sensitivity of BalDRO-DV at matched utility", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_study_report(out: Path, summary: Mapping[str, Any], folders: Mapping[str, Sequence[tuple[int, Path]]],
                       title: str = "baldro study: BalDRO vs its base methods at matched utility") -> Path:
    """``out/report.md`` with the headline table, the verdicts, the β table and the plots it links."""
    from baldro.reports.curve_plots import trajectory_plot
    from baldro.reports.plots import asynchrony_plot

    main_labels = [label for label in summary["methods"] if "β=" not in label]
    curves = {label: [read_trajectory(folder) for _, folder in folders[label]] for label in main_labels}
    target, retain = summary["target"], summary["retain"]
    trajectory_plot(curves, out / "fq_mu_curves.png", target=(target["model_utility"], target["forget_quality"]),
                    retain=(retain["model_utility"], retain["forget_quality"]), mu_threshold=target["mu_bar"])
    beta_png = beta_plot(summary, out / "beta_sensitivity.png")
    records = [load_run(folders[label][0][1]) for label in main_labels]
    asynchrony_plot(records, out / "asynchrony.png", key="nll")
    protocol = summary.get("protocol", {})
    seeds = protocol.get("seeds")
    lines = [
        f"# {title}", "",
        f"Protocol (fixed before the runs; docs/evidence_protocol.md): {seeds} seeds (0…{seeds - 1 if seeds else '?'}), "
        f"curves every {protocol.get('eval_every', '?')} steps, utility bar MU ≥ {summary['mu_keep']:g} × target MU = "
        f"{_fmt(target['mu_bar'])}. *Matched FQ* = the best Forget Quality along a run's trajectory among the "
        "evaluations that keep the bar (step 0, the target model, counts, so it is never below doing nothing). "
        "Intervals: 95 % percentile bootstrap of the seed mean. *vs base*: paired by seed (same data order); "
        "+/−/tie = seeds where the method's matched FQ is higher / lower / equal; the test is Wilcoxon's signed-rank "
        "from 6 non-tied pairs, else the exact sign test.", "",
        f"Target model: MU {_fmt(target['model_utility'])}, FQ {_fmt(target['forget_quality'])}. Retain model: MU "
        f"{_fmt(retain['model_utility'])}, FQ 1 (KS test against itself).", "",
        one_line_verdict(summary), "",
        "## Headline: matched-utility Forget Quality", "", headline_table(summary), "", BEATS_TARGET_DOC + ".", "",
        *[verdict(label, summary["methods"][label]) for label in main_labels if summary["methods"][label]["base"]],
        "",
    ]
    if summary.get("secondary_bars"):
        lines += ["## Secondary: lower utility bars", "",
                  "The same statistic with the bar at a lower fraction of the target's MU (secondary in the protocol: "
                  "raw p-values, no claims).", "", secondary_table(summary), ""]
    if beta_png is not None:
        lines += ["## β sensitivity of BalDRO-DV", "", beta_table(summary), "", "![β](beta_sensitivity.png)", ""]
    lines += [
        "## Unlearning curves", "",
        "Forget Quality (log) against Model Utility along training, seed mean (geometric for FQ), band = seed range; "
        "the dashed line is the utility bar. A method is better where its curve lies higher at the same MU.", "",
        "![curves](fq_mu_curves.png)", "",
        "## Asynchronous forgetting", "",
        "Per-sample forget NLL over training (first seed of each method): median and 10–90 % band over the forget set.",
        "", "![asynchrony](asynchrony.png)", "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def append_curves_section(out: Path, summary: Mapping[str, Any],
                          folders: Mapping[str, Sequence[tuple[int, Path]]]) -> Path:
    """Add the matched-utility comparison and the FQ–MU curves to an existing ``out/report.md`` (the demo's)."""
    from baldro.reports.curve_plots import trajectory_plot

    target, retain = summary["target"], summary["retain"]
    curves = {label: [read_trajectory(folder) for _, folder in folders[label]] for label in summary["methods"]}
    trajectory_plot(curves, out / "fq_mu_curves.png", target=(target["model_utility"], target["forget_quality"]),
                    retain=(retain["model_utility"], retain["forget_quality"]), mu_threshold=target["mu_bar"])
    lines = [
        "", "## Matched-utility comparison and unlearning curves", "",
        f"Each run was evaluated along training (`trajectory.jsonl`). *Matched FQ* = the best Forget Quality while MU ≥ "
        f"{summary['mu_keep']:g} × the target's ({_fmt(target['mu_bar'])}); intervals: 95 % bootstrap of the seed mean; "
        "vs base: paired by seed (sign test below 6 untied pairs, else Wilcoxon). The protocol and its limits: "
        "docs/evidence_protocol.md; the demo's 32 forget items make FQ coarse — `baldro study` is the instrument.", "",
        one_line_verdict(summary), "",
        headline_table(summary), "", BEATS_TARGET_DOC + ".", "",
        *[verdict(label, entry) for label, entry in summary["methods"].items() if entry["base"]],
        "", "![FQ vs MU along training](fq_mu_curves.png)", "",
    ]
    path = out / "report.md"
    path.write_text(path.read_text().rstrip("\n") + "\n" + "\n".join(lines))
    return path


__all__ = ["append_curves_section", "Interval", "MethodResult", "beta_plot", "headline_table", "read_trajectory", "secondary_table",
           "summarize_study", "verdict", "write_study_report"]
