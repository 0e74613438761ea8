"""``baldro report``: a Markdown report with tables and PNG plots over a set of run folders."""

from __future__ import annotations

import math
from pathlib import Path

from baldro.reports import plots
from baldro.reports.records import RunRecord
from baldro.reports.tables import METRIC_DOCS, METRICS, markdown_table, method_table

FIGURE_NOTES = {
    "fq_vs_mu.png": "One point per run; up and right is better. The retain model sits at FQ = 1 by construction (its "
                    "truth ratios tested against themselves); the target model shows where unlearning starts.",
    "asynchrony.png": "One panel per method (first seed): median and 10–90 % band of each forget sample's answer NLL. "
                      "A band that stays wide means some samples are forgotten much later than others.",
    "asynchrony_loss.png": "The same for the objective's per-sample loss, the quantity the DRO aggregator reweights.",
    "dro_stats.png": "Left: effective sample size 1/Σw² as a fraction of the batch (1 = uniform weights, the mean "
                     "aggregator; 0.5 = half the batch carries the weight, as BalDRO-G). Right: the largest weight × "
                     "batch size (1 = uniform).",
    "beta_star.png": "The kl_radius aggregator's dual temperature β* per step (small β* = weights close to a max).",
}


def capped_lines(records: list[RunRecord]) -> list[str]:
    """A warning listing the runs whose evaluation was cut by ``--max-items`` (their summaries' ``capped``), with
    the rows evaluated per split; empty when none was."""
    capped = [r for r in records if isinstance(r.summary.get("capped"), dict)]
    if not capped:
        return []
    lines = ["**Capped evaluations** — only the first rows of each split were evaluated (`--max-items`): these "
             "numbers are not comparable with full evaluations (Forget Quality over fewer items has less power).", ""]
    for record in capped:
        cap = record.summary["capped"]
        items = ", ".join(f"{split} {n}" for split, n in (cap.get("items") or {}).items())
        lines.append(f"- {record.method} (`{record.folder}`): at most {cap.get('max_items')} per split — {items}")
    return [*lines, ""]


def _g(value: float) -> str:
    return f"{value:.3g}"


def summary_line(table: dict[str, dict[str, tuple[float, float]]],
                 reference: dict[str, RunRecord] | None = None) -> str:
    """The report's one-line verdict from the final evaluations (``method_table``'s means): the method with the
    highest Forget Quality and its Model Utility against the target's, the one with the highest utility, and what the
    line does not say (no test: one final point per run, not the matched-utility comparison of ``baldro study``)."""
    fq = {m: v["forget_quality"][0] for m, v in table.items() if not math.isnan(v["forget_quality"][0])}
    mu = {m: v["model_utility"][0] for m, v in table.items() if not math.isnan(v["model_utility"][0])}
    target = reference.get("target") if reference else None
    target_mu = target.metric("model_utility") if target is not None else math.nan

    def kept(method: str) -> str:
        if not target_mu or math.isnan(target_mu):
            return ""
        return f", {mu[method] / target_mu:.0%} of the target's MU"

    parts = []
    if fq:
        best = max(fq, key=fq.__getitem__)
        parts.append(f"highest Forget Quality: {best} (FQ {_g(fq[best])}"
                     + (f", MU {_g(mu[best])}{kept(best)})" if best in mu else ")"))
    else:
        parts.append("no Forget Quality (the evaluations had no retain logs: `baldro eval tofu --retain-logs ...`)")
    if mu and len(table) > 1:
        top = max(mu, key=mu.__getitem__)
        parts.append(f"highest Model Utility: {top} (MU {_g(mu[top])}{kept(top)})")
    return ("**In one line:** " + "; ".join(parts) + " — final evaluations, mean over seeds; no significance test "
            "(`baldro study` compares methods at matched utility).")


def reference_warnings(reference: dict[str, RunRecord] | None) -> list[str]:
    """One line per reference model the FQ–MU plot cannot place (no Forget Quality: evaluated without retain
    logs): it is drawn as a dotted line at its Model Utility instead. Empty when every reference has its FQ."""
    lines = []
    for name, record in (reference or {}).items():
        if math.isnan(record.metric("forget_quality")) or record.metric("forget_quality") <= 0:
            lines.append(f"the {name} model ({record.folder}) has no Forget Quality (evaluated without --retain-logs): "
                         "the FQ–MU plot marks its Model Utility only, as a dotted vertical line")
    return lines


def write_report(
    records: list[RunRecord],
    out_dir: str | Path,
    reference: dict[str, RunRecord] | None = None,
    title: str = "baldro report",
    notes: str = "",
) -> Path:
    """Write ``report.md`` and its plots into ``out_dir``; return the report path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = [
        ("Forget Quality vs Model Utility", plots.fq_mu_plot(records, out / "fq_vs_mu.png", reference)),
        ("Asynchronous forgetting: answer NLL", plots.asynchrony_plot(records, out / "asynchrony.png")),
        ("Asynchronous forgetting: the objective's per-sample loss (what the aggregator balances)",
         plots.asynchrony_plot(records, out / "asynchrony_loss.png", key="loss")),
        ("DRO weights: effective sample size and max weight", plots.dro_stats_plot(records, out / "dro_stats.png")),
    ]
    beta = plots.beta_star_plot(records, out / "beta_star.png")
    if beta is not None:
        figures.append(("β* (kl_radius)", beta))
    lines = [f"# {title}", ""]
    if notes:
        lines += [notes, ""]
    table = method_table(records)
    lines += [
        summary_line(table, reference),
        "",
        "Mean ± std over seeds (± 0 with one seed); n/a = not defined for that row.",
        "",
        markdown_table(table),
        "",
    ]
    if reference:
        lines += ["Reference models (not unlearned, so no per-sample spread):", "",
                  markdown_table(method_table(list(reference.values()))), ""]
    lines += capped_lines([*records, *(reference or {}).values()])
    lines += [f"**Note:** {line}." for line in reference_warnings(reference)]
    lines += [""] if reference_warnings(reference) else []
    lines += ["## Columns", ""]
    lines += [f"- `{name}`: {METRIC_DOCS[name]}." for name in METRICS]
    lines += [""]
    for caption, path in figures:
        lines += [f"## {caption}", "", f"![{caption}]({path.name})", "", FIGURE_NOTES.get(path.name, ""), ""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return report
