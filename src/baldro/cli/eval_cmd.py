"""``baldro eval tofu|muse|summarize``: evaluate a model into open-unlearning-compatible files, or re-score a file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="evaluate a model on TOFU or MUSE, or re-summarize an *_EVAL.json")
    sub = p.add_subparsers(dest="eval_command", required=True)

    t = sub.add_parser("tofu", help="TOFU metrics -> DIR/TOFU_EVAL.json and DIR/TOFU_SUMMARY.json")
    _model_args(t)
    t.add_argument("--data", required=True, help="TOFU-style folder (e.g. ../shared/data/tofu) or hub id")
    t.add_argument("--forget-split", default="forget10")
    t.add_argument(
        "--format", default=None,
        help="prompt format preset: plain, llama2, chat or an open-unlearning model config name (llama-3.2-1b-instruct, "
        "gemma-7b-it, ...; see docs/prompt-formats.md); default: the chat template if the tokenizer has one",
    )
    t.add_argument("--max-new-tokens", type=int, default=200)
    t.add_argument("--max-length", type=int, default=512)
    t.add_argument("--generation-batch-size", type=int, default=None,
                   help="questions decoded together, all splits pooled (default 4 × --batch-size; bounds the KV cache)")
    t.add_argument("--no-answer-drafts", action="store_true",
                   help="decode every generated token; by default the leading answer tokens that scoring found to be "
                   "the model's greedy choice are prefilled as a draft (same generations; docs/eval-speed.md)")
    t.set_defaults(func=run_tofu)

    m = sub.add_parser("muse", help="MUSE metrics -> DIR/MUSE_EVAL.json and DIR/MUSE_SUMMARY.json")
    _model_args(m)
    m.add_argument("--data", required=True, help="MUSE folder (raw/, knowmem/, verbmem/, privleak/) or hub id")
    m.add_argument("--verbmem-max-new-tokens", type=int, default=128)
    m.add_argument("--knowmem-max-new-tokens", type=int, default=32)
    m.set_defaults(func=run_muse)

    s = sub.add_parser("summarize", help="recompute the summary of an existing *_EVAL.json (ours or open-unlearning's)")
    s.add_argument("eval_json", help="path to a TOFU_EVAL.json or MUSE_EVAL.json")
    s.add_argument("--retain-logs", default=None, help="the retain model's *_EVAL.json (Forget Quality, PrivLeak)")
    s.add_argument("--benchmark", choices=("tofu", "muse"), default=None, help="default: inferred from the file's metrics (checked against the file name)")
    s.add_argument("--out", default=None, help="write the summary to this file instead of stdout")
    s.set_defaults(func=run_summarize)


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="Hugging Face model folder or hub id")
    p.add_argument("--retain-logs", default=None, help="the retain model's *_EVAL.json (Forget Quality, PrivLeak)")
    p.add_argument("--out", required=True, help="output folder (must be empty unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace results in a non-empty --out")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-items", type=int, default=None, help="evaluate only the first N rows of each split (quick checks)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--pad-masking", default="position",
        help="position (default): mask padding positions only; token: mask every token equal to the pad id, real "
        "ones included, as open-unlearning's collator does (differs where the pad token occurs in the prompt, e.g. "
        "pad = EOS with a chat template; slower: full-sequence scoring and transformers' generate)",
    )
    p.add_argument(
        "--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"),
        help="precision the model is loaded in; auto (default): the dtype its config.json names, as open-unlearning "
        "evaluates in its model config's torch_dtype (bfloat16), but float32 on a CPU in place of bfloat16/float16 "
        "(slow there); recorded as model_dtype in the eval files",
    )


def _out_lock(args: argparse.Namespace) -> Any:
    """The ``--out`` folder's lock (held while the evaluation writes it); a stale one is taken with --overwrite."""
    from baldro.runfolder import FolderLock

    return FolderLock(args.out, take_stale=args.overwrite,
                      stale_hint="pass --overwrite to start again, or delete the lock file")


def _check_pad_masking(args: argparse.Namespace) -> None:
    """A bad ``--pad-masking`` fails before the ``--out`` folder is touched."""
    from baldro.core.padmask import check_pad_masking

    check_pad_masking(args.pad_masking, "--pad-masking")


def _report(summary: dict[str, Any], out: Path | None) -> None:
    for name, reason in summary.get("skipped", {}).items():
        print(f"baldro eval: skipped {name}: {reason}", file=sys.stderr)
    if out is not None:
        print(f"baldro eval: wrote {out}", file=sys.stderr)
    print(json.dumps(summary, indent=4))


def run_tofu(args: argparse.Namespace) -> int:
    from baldro.evaluation.files import summary_file

    _check_pad_masking(args)
    with _out_lock(args):
        summary = _tofu(args)
    _report(summary, summary_file(args.out, "tofu"))
    return 0


def _tofu(args: argparse.Namespace) -> dict[str, Any]:
    from baldro.data.formatting import PromptFormat
    from baldro.evaluation.tofu import evaluate_tofu

    return evaluate_tofu(
        args.model,
        args.data,
        forget_split=args.forget_split,
        retain_logs=args.retain_logs,
        out_dir=args.out,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        max_items=args.max_items,
        fmt=PromptFormat.preset(args.format) if args.format else None,
        overwrite=args.overwrite,
        max_length=args.max_length,
        progress=not args.no_progress,
        generation_batch_size=args.generation_batch_size,
        pad_masking=args.pad_masking,
        draft_answers=not args.no_answer_drafts,
        dtype=args.dtype,
    )


def run_muse(args: argparse.Namespace) -> int:
    from baldro.evaluation.files import summary_file

    _check_pad_masking(args)
    with _out_lock(args):
        summary = _muse(args)
    _report(summary, summary_file(args.out, "muse"))
    return 0


def _muse(args: argparse.Namespace) -> dict[str, Any]:
    from baldro.evaluation.muse import evaluate_muse

    return evaluate_muse(
        args.model,
        args.data,
        retain_logs=args.retain_logs,
        out_dir=args.out,
        batch_size=args.batch_size,
        max_items=args.max_items,
        overwrite=args.overwrite,
        verbmem_max_new_tokens=args.verbmem_max_new_tokens,
        knowmem_max_new_tokens=args.knowmem_max_new_tokens,
        progress=not args.no_progress,
        pad_masking=args.pad_masking,
        dtype=args.dtype,
    )


def run_summarize(args: argparse.Namespace) -> int:
    # Not evaluation.assemble: it imports the scoring code (torch); re-scoring a file needs numpy/scipy only.
    from baldro.evaluation.benchmark_check import check_benchmark
    from baldro.evaluation.files import read_eval_json, write_json
    from baldro.evaluation.retain_logs import load_retain_logs
    from baldro.evaluation.summary import summarize

    data = read_eval_json(args.eval_json)
    benchmark = check_benchmark(data, args.eval_json, args.benchmark)
    retain = load_retain_logs(args.retain_logs) if args.retain_logs else None
    name = args.retain_logs or "the retain logs"
    summary = summarize(data, retain, benchmark, retain_name=name)
    if args.out:
        write_json(args.out, summary)
        print(f"baldro eval: wrote {args.out}", file=sys.stderr)
    else:
        print(json.dumps(summary, indent=4))
    return 0
