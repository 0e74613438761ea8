"""``baldro report RUN_DIR... --out DIR``: tables and plots over run folders."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="Markdown report with plots over unlearning run folders")
    p.add_argument("runs", nargs="+", help="run folders, each with TOFU_SUMMARY.json or eval/TOFU_SUMMARY.json (and optionally per_sample.jsonl), or folders holding such run folders (a demo's, a sweep's)")
    p.add_argument("--out", required=True, help="folder to create (refused if not empty, unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    p.add_argument("--target", help="the target model's folder: its TOFU_SUMMARY.json, directly or under eval/ "
                   "(marked on the FQ-MU plot; evaluated with --retain-logs, or only its MU is marked)")
    p.add_argument("--retain", help="the retain model's folder: its TOFU_SUMMARY.json, directly or under eval/ "
                   "(marked on the FQ-MU plot at FQ = 1)")
    p.set_defaults(func=run)


def expand(paths: list[str]) -> list[Path]:
    """Run folders: each given folder, or the run folders below it (the demo's folder, a sweep's folder)."""
    out: list[Path] = []
    for p in map(Path, paths):
        found = sorted({f.parent.parent if f.parent.name == "eval" else f.parent for f in p.rglob("TOFU_SUMMARY.json")})
        top = [f for f in found if f.name not in ("target", "retain") or f == p]
        out.extend(top or [p])
    return out


def run(args: argparse.Namespace) -> int:
    from baldro.reports.records import check_one_benchmark, load_reference, load_run
    from baldro.reports.report import reference_warnings, write_report
    from baldro.runfolder import check_out_apart, check_out_dir, staged

    check_out_apart(args.out, {"run": args.runs, "--target": args.target, "--retain": args.retain})
    out = check_out_dir(args.out, args.overwrite)
    records = [load_run(p) for p in expand(args.runs)]
    reference = {}
    for name in ("target", "retain"):
        folder = getattr(args, name) or next((str(Path(r) / name) for r in args.runs if (Path(r) / name / "eval").is_dir()), None)
        if folder:
            reference[name] = load_reference(folder, name)
    check_one_benchmark([*records, *reference.values()])
    for line in reference_warnings(reference):
        print(f"baldro: warning: {line}", file=sys.stderr)
    with staged(out, args.overwrite) as tmp:
        write_report(records, tmp, reference or None)
    print(out / "report.md")
    return 0
