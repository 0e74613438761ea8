"""``baldro report``: a Markdown report with tables and PNG plots over a set of run folders."""

from __future__ import annotations

from pathlib import Path

from baldro.reports import plots
from baldro.reports.records import RunRecord
from baldro.reports.tables import markdown_table, method_table


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
        ("DRO weights", plots.weights_plot(records, out / "dro_weights.png")),
    ]
    beta = plots.beta_star_plot(records, out / "beta_star.png")
    if beta is not None:
        figures.append(("β* (kl_radius)", beta))
    lines = [f"# {title}", ""]
    if notes:
        lines += [notes, ""]
    lines += [
        "Mean ± std over seeds. `final_loss_iqr` / `final_nll_iqr` = 90 %−10 % inter-quantile range over the forget "
        "set of each sample's last logged objective loss / answer NLL (the spread of forgetting; lower = more "
        "synchronous).",
        "",
        markdown_table(method_table(records)),
        "",
    ]
    if reference:
        lines += ["Reference models:", "", markdown_table(method_table(list(reference.values()))), ""]
    for caption, path in figures:
        lines += [f"## {caption}", "", f"![{caption}]({path.name})", ""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return report
