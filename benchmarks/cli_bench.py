"""CLI start-up benchmark: wall time of ``baldro --help``, ``baldro <cmd> --help`` and ``baldro eval summarize``.

Each command runs in a fresh interpreter (``python -m baldro.cli.main ...``, what the ``baldro`` script runs) and its
wall time is taken around ``subprocess.run``; the median and the minimum of ``--repeats`` runs are reported. Wall
time depends on the machine's load (the child's user+sys CPU time, ``cpu_s_median``, less so), so each row also carries two figures that do not: ``modules`` (how many modules
``python -X importtime`` saw imported) and ``heavy`` (which of torch, transformers, datasets, matplotlib, scipy,
sklearn, pandas, nltk were among them), plus the ``--top`` largest cumulative top-level imports.

``eval summarize`` runs twice: on a file with an MIA entry (ROC AUC) and on one without; both need numpy + scipy only.

Targets (issue 12): ``--help`` and every ``<cmd> --help`` ≤ 0.5 s, ``eval summarize`` on a small file ≤ 1.5 s.

    python benchmarks/cli_bench.py [--repeats 5] [--json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HEAVY = ("torch", "transformers", "datasets", "matplotlib", "scipy", "sklearn", "pandas", "nltk")
COMMANDS = ("demo", "report", "sweep", "data", "model", "eval", "finetune", "unlearn")
HELP_TARGET_S = 0.5
SUMMARIZE_TARGET_S = 1.5
_UTILITY = ("retain_Q_A_Prob", "ra_Q_A_Prob_normalised", "wf_Q_A_Prob_normalised")
_ROUGE = ("retain_Q_A_ROUGE", "ra_Q_A_ROUGE", "wf_Q_A_ROUGE")
_TR = ("retain_Truth_Ratio", "ra_Truth_Ratio", "wf_Truth_Ratio", "forget_truth_ratio")


def small_eval(n: int, shift: float, mia: bool = True) -> dict[str, Any]:
    """A TOFU_EVAL.json in open-unlearning's shape with ``n`` deterministic items per metric (values in (0, 1));
    ``mia`` adds a ``mia_min_k`` entry (scored by its ROC AUC)."""

    def items(field: str, k: int) -> dict[str, Any]:
        by_index = {str(i): {field: 0.05 + 0.9 * ((i * 0.618 + k * 0.1 + shift) % 1.0)} for i in range(n)}
        return {"agg_value": None, "value_by_index": by_index}

    out: dict[str, Any] = {}
    for k, key in enumerate(_UTILITY):
        out[key] = items("prob", k)
    for k, key in enumerate(_ROUGE):
        out[key] = items("rougeL_recall", k)
    for k, key in enumerate(_TR):
        out[key] = items("score", k)
    if mia:
        out["mia_min_k"] = {"agg_value": 0.5, "forget": items("score", 1), "holdout": items("score", 2)}
    return out


def parse_importtime(stderr: str, top: int) -> tuple[int, list[str], list[tuple[str, float]]]:
    """(number of modules imported, heavy packages among them, the ``top`` largest top-level cumulative times in s)."""
    names, roots = [], []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or line.rstrip().endswith("imported package"):
            continue
        _, cumulative, name = line.split("|", 2)
        names.append(name.strip())
        if not name[1:].startswith(" "):  # one space of indent: imported by the script itself
            roots.append((name.strip(), int(cumulative) / 1e6))
    heavy = sorted({n.split(".")[0] for n in names} & set(HEAVY))
    return len(names), heavy, sorted(roots, key=lambda r: -r[1])[:top]


def measure(args: list[str], repeats: int, top: int, env: dict[str, str]) -> dict[str, Any]:
    """Wall times of ``repeats`` fresh runs, then one ``-X importtime`` run for the load-independent figures."""
    cmd = [sys.executable, "-m", "baldro.cli.main", *args]
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"cli_bench: `baldro {' '.join(args)}` failed (exit {done.returncode}): {done.stderr}")
    traced = subprocess.run([sys.executable, "-X", "importtime", *cmd[1:]], capture_output=True, text=True, env=env)
    modules, heavy, roots = parse_importtime(traced.stderr, top)
    return {
        "command": "baldro " + " ".join(args),
        "wall_s_median": round(statistics.median(walls), 3),
        "wall_s_min": round(min(walls), 3),
        "cpu_s_median": round(statistics.median(cpus), 3),
        "modules": modules,
        "heavy": heavy,
        "top_imports_s": [[name, round(s, 3)] for name, s in roots],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="fresh runs per command (default 5)")
    p.add_argument("--top", type=int, default=5, help="top-level imports listed per command (default 5)")
    p.add_argument("--items", type=int, default=40, help="items per metric in the summarized file (default 40)")
    p.add_argument("--quick", action="store_true", help="1 run each, only --help, eval --help and summarize")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    args = p.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    with tempfile.TemporaryDirectory() as tmp:
        model, retain = Path(tmp) / "TOFU_EVAL.json", Path(tmp) / "retain_TOFU_EVAL.json"
        model.write_text(json.dumps(small_eval(args.items, 0.0)))
        retain.write_text(json.dumps(small_eval(args.items, 0.3)))
        no_mia = Path(tmp) / "no_mia_TOFU_EVAL.json"
        no_mia.write_text(json.dumps(small_eval(args.items, 0.0, mia=False)))
        runs = [["--help"]] + [[c, "--help"] for c in (("eval",) if args.quick else COMMANDS)]
        runs.append(["eval", "summarize", str(model), "--retain-logs", str(retain)])
        if not args.quick:
            runs.append(["eval", "summarize", str(no_mia), "--retain-logs", str(retain)])
        rows = [measure(r, repeats, args.top, env) for r in runs]
    for row in rows:
        target = SUMMARIZE_TARGET_S if "summarize" in row["command"] else HELP_TARGET_S
        row["command"] = row["command"].replace(tmp, "TMP")
        row["target_s"], row["met"] = target, row["wall_s_median"] <= target
        if args.json:
            print(json.dumps(row))
        else:
            tops = ", ".join(f"{n} {s:.2f}" for n, s in row["top_imports_s"])
            print(f"{row['command']:<58} {row['wall_s_median']:6.3f} s (min {row['wall_s_min']:.3f}, target "
                  f"{target} s: {'met' if row['met'] else 'NOT met'}; cpu {row['cpu_s_median']:.3f} s)  {row['modules']} modules, heavy "
                  f"{row['heavy'] or 'none'}; top: {tops}")
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    footer = {"loadavg": [float(x) for x in load], "cpus": os.cpu_count(), "repeats": repeats,
              "all_met": all(r["met"] for r in rows), "python": sys.version.split()[0]}
    print(json.dumps(footer) if args.json else f"load average {load}, {os.cpu_count()} CPUs, {repeats} runs each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
