"""``paper_table.md`` of ``baldro paper``: our results in the paper's layout, the paper's reported value beside each.

Sections follow the paper: Table 1 (TOFU forget01: FQ, MU, Fluency, EM, ES, F-TR, Ra-TR, R-TR, Rw-TR) and Table 3
(its membership-inference AUCs), the forget05 / forget10 results of Fig. 3 in Table 1's columns, Table 2 (MUSE News /
Books: KnowMem on D_r and D_f, VerbMem on D_f, PrivLeak) and the β grid of Fig. 4. A cell reads ``paper / ours``;
``—`` where the paper gives no number (a figure, or a metric baldro does not compute: Fluency) or we have none.
"""

from __future__ import annotations

import math
from typing import Any

from baldro.experiments.paper_values import PaperValue, lookup

TOFU_COLUMNS = (("FQ↑", "forget_quality"), ("MU↑", "model_utility"), ("Fluency↑", "fluency"),
                ("EM↓", "exact_memorization"), ("ES↓", "extraction_strength"), ("F-TR↑", "forget_truth_ratio"),
                ("Ra-TR↑", "ra_Truth_Ratio"), ("R-TR↑", "retain_Truth_Ratio"), ("Rw-TR↑", "wf_Truth_Ratio"))
MIA_COLUMNS = (("LOSS↓", "mia_loss"), ("ZLib↓", "mia_zlib"), ("MinK↓", "mia_min_k"), ("MinK++↓", "mia_min_k_plus_plus"))
MUSE_COLUMNS = (("KM-Dr↑", "retain_knowmem_ROUGE"), ("KM-Df↓", "forget_knowmem_ROUGE"),
                ("VM-Df↓", "forget_verbmem_ROUGE"), ("PL→0", "privleak"))
BETA_COLUMNS = (("FQ↑", "forget_quality"), ("MU↑", "model_utility"))
TITLES = {"forget01": "TOFU forget01 (paper: Table 1)", "forget05": "TOFU forget05 (paper: Fig. 3; FQ from its text)",
          "forget10": "TOFU forget10 (paper: Fig. 3, no numbers typed)", "News": "MUSE-News (paper: Table 2)",
          "Books": "MUSE-Books (paper: Table 2)"}


def _fmt(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
        return "—"
    return f"{value:.4f}"


def _cell(paper: tuple[float, str] | None, ours: Any) -> str:
    return f"{_fmt(paper[0]) if paper else '—'} / {_fmt(ours)}"


def _where(row: dict[str, Any]) -> str:
    epoch = row.get("epoch")
    return row["point"] + (f", epoch {epoch:g}" if isinstance(epoch, int | float) else "")


def _table(columns: tuple[tuple[str, str], ...], rows: list[tuple[str, dict[str, tuple[float, str]], dict[str, Any],
                                                                   str]]) -> list[str]:
    lines = ["| method | " + " | ".join(label for label, _ in columns) + " | ours: grid point |",
             "|---|" + "---|" * (len(columns) + 1)]
    for label, paper, ours, where in rows:
        cells = [_cell(paper.get(metric), ours.get(metric)) for _, metric in columns]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {where} |")
    return lines


def paper_table(summary: dict[str, Any], values: list[PaperValue]) -> str:
    """The markdown of ``paper_table.md`` for a ``baldro paper`` summary."""
    experiments = summary["experiments"]
    lines = ["# baldro paper: the paper's values beside ours", "",
             "Each cell: the paper's value / ours (— : none). Ours: the selected evaluation of each experiment's grid "
             "(" + "; ".join(sorted({e["selection"] for e in experiments.values()})) + "); every evaluation is in "
             "results.csv. The paper's values: src/baldro/experiments/paper_values.csv (check its header)."]
    splits = [s for s in TITLES if any(e["split"] == s and "selected" in e for e in experiments.values())]
    for split in splits:
        chosen = [e for e in experiments.values() if e["split"] == split and "selected" in e]
        benchmark = chosen[0]["benchmark"]
        refs = summary["references"][f"{benchmark}_{split.lower()}"]
        rows = [(name, lookup(values, benchmark, split, name), refs.get(name, {}), "reference")
                for name in ("Original", "Retain")]
        rows += [(e["row"], lookup(values, benchmark, split, e["row"]), e["selected"], _where(e["selected"]))
                 for e in chosen]
        columns = TOFU_COLUMNS if benchmark == "tofu" else MUSE_COLUMNS
        lines += ["", f"## {TITLES[split]}", "", *_table(columns, rows)]
        if split == "forget01":
            lines += ["", "## TOFU forget01, membership inference AUC (paper: Table 3)", "", *_table(MIA_COLUMNS, rows)]
    for name, e in experiments.items():
        if "by" in e:
            rows = [(f"{e['rows_by']} = {r['value']:g}", {}, r, _where(r)) for r in e["by"]]
            lines += ["", f"## {e['row']}, TOFU {e['split']} (paper: Fig. 4, a figure: no numbers typed)", "",
                      f"`{name}`: the best evaluation at each value of `{e['rows_by']}`.", "",
                      *_table(BETA_COLUMNS, rows)]
    if summary.get("substitutions"):
        lines += ["", "## Run on this machine with", "", *[f"* {s}" for s in summary["substitutions"]]]
    return "\n".join(lines) + "\n"


__all__ = ["paper_table"]
