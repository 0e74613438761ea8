"""The documentation's result tables, rendered from the ``summary.json`` files that ``baldro demo`` / ``baldro study``
wrote.

The documents of :data:`DOCUMENTS` (the README, ``docs/demo.md``, ``docs/studies.md``, ``docs/real_study.md``) hold
generated blocks between ``<!-- KIND-table -->`` / ``<!-- /KIND-table -->``, one per kind of :data:`RENDERERS`:
``demo``, one per study benchmark (``baldro study --size KIND``: ``study-retain5-e85``, the default, ``study``,
``study-own``, ``study-retain5``; ``study-long`` is the default benchmark with ``--unlearn-epochs 20``), and the
real-model study (``baldro study --model``: ``real-study``, and ``real-study-seeds`` rendered from its snapshot). Their source
is a snapshot of each run's ``summary.json`` in ``docs/results/`` (numbers only; folder paths dropped), so a test can
check that the documents say exactly what the snapshots say, and ``--compare`` checks that a fresh run reproduces
the snapshot::

    python -m baldro.reports.readme_tables --snapshot demo demo_out/summary.json      # after `make demo`
    python -m baldro.reports.readme_tables --snapshot study-retain5-e85 study_out/summary.json   # `baldro study`
    python -m baldro.reports.readme_tables --snapshot study-own OUT/summary.json      # after `baldro study --size study-own`
    python -m baldro.reports.readme_tables --snapshot real-study real_study/summary.json   # `baldro study --model ...`
    python -m baldro.reports.readme_tables --write                                     # re-render every document's blocks
    python -m baldro.reports.readme_tables --check                                     # exit 1 if one differs or is missing
    python -m baldro.reports.readme_tables --check docs/studies.md                     # only the files named
    python -m baldro.reports.readme_tables --compare demo demo_out/summary.json        # exit 1 if a value differs
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
RESULTS = ROOT / "docs" / "results"
DOCUMENTS = ("README.md", "docs/demo.md", "docs/studies.md", "docs/real_study.md")  # where the generated blocks live (relative to ROOT)
VOLATILE = ("wall_time_s", "model_dir", "model_dirs")  # not results: where and how fast a run happened
VERSIONS_KEY = "versions"  # what a snapshot was made with: not a result, compared only to explain a difference
VERSIONED = ("torch", "transformers", "tokenizers", "accelerate", "safetensors", "numpy", "scipy", "rouge-score")


def environment_versions() -> dict[str, str]:
    """Python's and the result-relevant packages' versions in this environment (``constraints.txt`` pins them)."""
    import platform
    from importlib import metadata

    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    return found
DEMO_COLUMNS = (("forget_quality", "FQ"), ("model_utility", "MU"), ("forget_truth_ratio", "TR"),
                ("final_loss_iqr", "loss IQR"), ("final_nll_iqr", "NLL IQR"))


def strip_volatile(value: Any) -> Any:
    """``summary.json`` without folder paths and timings (what a snapshot keeps)."""
    if isinstance(value, dict):
        return {k: strip_volatile(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [strip_volatile(v) for v in value]
    return value


def snapshot_path(kind: str, results: Path | None = None) -> Path:
    """The snapshot a kind is rendered from (``results``: another folder than :data:`RESULTS`)."""
    return (results or RESULTS) / f"{SNAPSHOT_OF.get(kind, kind)}_summary.json"  # RESULTS read at call time (tests)


def _num(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:.{digits}g}"


def demo_table(summary: dict[str, Any]) -> str:
    """Mean ± std over seeds per method, then the target and retain models (the demo's terminal table)."""
    head = "| model | " + " | ".join(label for _, label in DEMO_COLUMNS) + " |"
    lines = [head, "|---" * (len(DEMO_COLUMNS) + 1) + "|"]
    for name in ("target", "retain"):
        entry = summary.get(name, {})
        lines.append(f"| {name} model | " + " | ".join(_num(entry.get(k)) if k in entry else "" for k, _ in DEMO_COLUMNS)
                     + " |")
    for name, entry in summary["methods"].items():
        std = entry.get("std", {})
        cells = [f"{_num(entry.get(k))} ± {_num(std.get(k), 2)}" if entry.get(k) is not None else "—"
                 for k, _ in DEMO_COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    per_seed = "; ".join(
        f"{name}: " + ", ".join(f"({_num(s['forget_quality'])}, {_num(s['model_utility'])})" for s in entry["seeds"])
        for name, entry in summary["methods"].items())
    text = "\n".join(lines) + f"\n\nPer seed (FQ, MU): {per_seed}."
    if summary.get("matched_utility"):
        text += ("\n\nMatched-utility FQ along the curves (the study's statistic; coarse with 32 forget items):\n\n"
                 + study_table(summary["matched_utility"]).split("\n\nβ grid")[0])
    return text


def _interval(entry: dict[str, Any]) -> str:
    if entry.get("mean") is None:
        return "—"
    if entry.get("low") is None:
        return _num(entry["mean"])
    return f"{_num(entry['mean'])} [{_num(entry['low'])}, {_num(entry['high'])}]"


def study_table(summary: dict[str, Any]) -> str:
    """Headline: matched-utility FQ per method (mean, 95 % bootstrap CI), seeds whose matched FQ comes from a trained
    step (:func:`baldro.reports.verdict.beats_target`), final FQ / MU, and the paired test against the base method;
    then the DV β grid, the target's bar and the one-line verdict."""
    from baldro.reports.verdict import BEATS_TARGET_COLUMN, BEATS_TARGET_DOC, beat_count, one_line_verdict

    lines = [f"| method | matched FQ, mean [95 % CI] | {BEATS_TARGET_COLUMN} | final FQ | final MU | final NLL spread | "
             "vs base: +/−/tie | mean Δ | p (test) |", "|---|---|---|---|---|---|---|---|---|"]
    for label, entry in summary["methods"].items():
        if "β=" in label:
            continue
        seeds = entry["per_seed"]
        vs = entry.get("vs_base")
        test = "—" if vs is None else f"{vs['n_positive']}/{vs['n_negative']}/{vs['n_ties']}"
        delta = "—" if vs is None else _num(vs["mean_difference"])
        p = "—" if vs is None else f"{_num(vs['p_value'], 2)} ({vs['test']})"
        spreads = [s["final_nll_iqr"] for s in seeds.values() if s.get("final_nll_iqr") is not None]
        spread = _num(sum(spreads) / len(spreads)) if spreads else "—"
        lines.append(f"| {label} | {_interval(entry['matched'])} | {beat_count(entry)} | "
                     f"{_interval(entry['final'])} | {_num(entry['final_mu']['mean'])} | {spread} | {test} | {delta} | "
                     f"{p} |")
    grid = summary.get("beta_grid")
    if grid and grid.get("points"):
        lines += ["", f"β grid of {grid['method']} (paper sign), matched-utility FQ vs its base:", "",
                  "| β | matched FQ, mean [95 % CI] | +/−/tie | mean Δ | p (test) |", "|---|---|---|---|---|"]
        for point in grid["points"]:
            vs = point.get("vs_base")
            lines.append(f"| {point['beta']:g} | {_interval(point['matched'])} | "
                         + ("— | — | —" if vs is None else f"{vs['n_positive']}/{vs['n_negative']}/{vs['n_ties']} | "
                            f"{_num(vs['mean_difference'])} | {_num(vs['p_value'], 2)} ({vs['test']})") + " |")
    target = summary["target"]
    lines += ["", f"Target model: MU {_num(target['model_utility'])}, FQ {_num(target['forget_quality'])}; utility "
                  f"bar MU ≥ {summary['mu_keep']:g} × {_num(target['model_utility'])} = {_num(target['mu_bar'])}. "
                  f"{BEATS_TARGET_DOC}.", "", one_line_verdict(summary)]
    return "\n".join(lines)


def made_with(summary: dict[str, Any]) -> str:
    """The retain model (the Forget Quality reference) and the package versions the run was made with."""
    text = (f"Retain model (fine-tuned without the forget authors; the FQ reference): "
            f"MU {_num(summary['retain']['model_utility'])}.")
    versions = summary.get(VERSIONS_KEY)
    if versions:
        text += " Made with " + ", ".join(f"{name} {version}" for name, version in versions.items()) + "."
    return text


def per_seed_table(summary: dict[str, Any]) -> str:
    """Each run's matched-utility FQ with the step it comes from, and its final FQ / MU: one row per method, one
    column per seed; the secondary utility bars (:func:`baldro.reports.study_report.secondary_table`); the retain
    model and the versions (:func:`made_with`)."""
    from baldro.reports.study_report import secondary_table

    methods = {label: entry for label, entry in summary["methods"].items() if "β=" not in label}
    seeds = sorted({int(seed) for entry in methods.values() for seed in entry["per_seed"]})
    lines = ["| method | " + " | ".join(f"seed {seed}" for seed in seeds) + " |", "|---" * (len(seeds) + 1) + "|"]
    for label, entry in methods.items():
        cells = []
        for seed in seeds:
            run = entry["per_seed"].get(str(seed))
            cells.append("—" if run is None else f"{_num(run['best_fq'])} @ {run['step']}; "
                                                 f"{_num(run['final_fq'])} / {_num(run['final_mu'])}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    text = "Per run: matched FQ @ the step it comes from; final FQ / final MU.\n\n" + "\n".join(lines)
    if summary.get("secondary_bars"):
        text += "\n\nSecondary utility bars (raw p-values, no claims):\n\n" + secondary_table(summary)
    return text + "\n\n" + made_with(summary)


RENDERERS = {"demo": demo_table, "study-retain5-e85": study_table, "study-long": study_table, "study": study_table,
             "study-own": study_table, "study-retain5": study_table, "real-study": study_table,
             "real-study-seeds": per_seed_table}
SNAPSHOT_OF = {"real-study-seeds": "real-study"}  # kinds rendered from another kind's snapshot


def render_blocks(text: str, results: Path | None = None) -> str:
    """``text`` with every generated block re-rendered from its snapshot (blocks whose snapshot is missing stay)."""
    for kind, render in RENDERERS.items():
        path = snapshot_path(kind, results)
        if not path.is_file():
            continue
        body = render(json.loads(path.read_text()))
        pattern = re.compile(rf"<!-- {kind}-table -->\n.*?<!-- /{kind}-table -->", re.S)
        block = f"<!-- {kind}-table -->\n{body}\n<!-- /{kind}-table -->"
        text = pattern.sub(lambda m, block=block: block, text)
    return text


def differences(fresh: Any, saved: Any, path: str = "") -> list[str]:
    """Where two snapshots differ (floats compared exactly: the pipeline is deterministic on one machine)."""
    if isinstance(fresh, dict) and isinstance(saved, dict):
        out = [f"{path}/{k}: only in {'the fresh run' if k in fresh else 'the snapshot'}"
               for k in sorted(set(fresh) ^ set(saved))]
        for key in sorted(set(fresh) & set(saved)):
            out += differences(fresh[key], saved[key], f"{path}/{key}")
        return out
    if isinstance(fresh, list) and isinstance(saved, list) and len(fresh) == len(saved):
        return [d for i, (a, b) in enumerate(zip(fresh, saved)) for d in differences(a, b, f"{path}[{i}]")]
    return [] if fresh == saved else [f"{path}: fresh {fresh!r}, snapshot {saved!r}"]


def version_note(made_with: dict[str, str] | None, now: dict[str, str]) -> str:
    """Why a run may differ from its snapshot: the package versions that differ (or that the snapshot has none)."""
    if not made_with:
        return "the snapshot records no package versions (made before they were recorded)"
    changed = [f"{k} {made_with[k]} → {now.get(k, 'absent')}" for k in made_with if made_with[k] != now.get(k, "absent")]
    if not changed:
        return "same package versions as the snapshot: the difference comes from the machine (CPU, BLAS) or the code"
    return ("package versions differ from the snapshot's (" + ", ".join(changed) + "); install the pinned ones: "
            "make install (pip install -c constraints.txt)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m baldro.reports.readme_tables", description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--snapshot", nargs=2, metavar=("KIND", "SUMMARY"), help="save a run's summary as the snapshot")
    group.add_argument("--write", nargs="*", metavar="FILE",
                       help="re-render the generated blocks of these files (default: every document of DOCUMENTS)")
    group.add_argument("--check", nargs="*", metavar="FILE",
                       help="exit 1 when a file's blocks differ from the snapshots (default: every document of "
                            "DOCUMENTS, and exit 1 also when a kind has no block in any of them)")
    group.add_argument("--compare", nargs=2, metavar=("KIND", "SUMMARY"), help="exit 1 when a run differs from its snapshot")
    args = parser.parse_args(argv)
    if args.snapshot:
        kind, source = args.snapshot
        RESULTS.mkdir(parents=True, exist_ok=True)
        data = strip_volatile(json.loads(Path(source).read_text()))
        data[VERSIONS_KEY] = data.get(VERSIONS_KEY) or environment_versions()
        snapshot_path(kind).write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        print(snapshot_path(kind))
        return 0
    if args.compare:
        kind, source = args.compare
        fresh, saved = strip_volatile(json.loads(Path(source).read_text())), json.loads(snapshot_path(kind).read_text())
        made_with, now = saved.pop(VERSIONS_KEY, None), fresh.pop(VERSIONS_KEY, None) or environment_versions()
        diff = differences(fresh, saved)
        print("\n".join(diff) if diff else f"{source} reproduces {snapshot_path(kind)}")
        if diff:
            print(version_note(made_with, now))
        return 1 if diff else 0
    given = args.write if args.write is not None else args.check
    defaults = not given
    paths = [Path(p) for p in given] or [ROOT / name for name in DOCUMENTS]
    stale, kinds = [], set()
    for path in paths:
        text = path.read_text()
        kinds |= {kind for kind in RENDERERS if f"<!-- {kind}-table -->" in text}
        rendered = render_blocks(text)
        if args.write is not None and rendered != text:
            path.write_text(rendered)
        elif rendered != text:
            stale.append(path)
    for path in stale:
        print(f"{path}: generated tables differ from docs/results/*_summary.json; run --write", file=sys.stderr)
    missing = sorted(set(RENDERERS) - kinds) if defaults else []
    if missing:
        print(f"no document of {', '.join(DOCUMENTS)} holds the block of: {', '.join(missing)}", file=sys.stderr)
    return 1 if stale or missing else 0


if __name__ == "__main__":
    sys.exit(main())
