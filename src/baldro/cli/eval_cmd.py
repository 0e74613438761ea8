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
    t.add_argument("--data", required=True, help="TOFU-style folder of <split>.json files, e.g. data/tofu from `hf download locuslab/TOFU --repo-type dataset --local-dir data/tofu`, or a hub id (locuslab/TOFU)")
    t.add_argument("--forget-split", default="forget10")
    t.add_argument("--format", default=None, help=FORMAT_HELP)
    t.add_argument("--max-new-tokens", type=int, default=200)
    t.add_argument("--max-length", type=int, default=512)
    t.add_argument("--generation-batch-size", type=int, default=None,
                   help="questions decoded together, all splits pooled (default 4 × --batch-size; bounds the KV cache)")
    t.add_argument("--no-answer-drafts", action="store_true",
                   help="decode every generated token; by default the leading answer tokens that scoring found to be "
                   "the model's greedy choice are prefilled as a draft and verified there, as in speculative decoding "
                   "(docs/eval-speed.md)")
    t.set_defaults(func=run_tofu)

    m = sub.add_parser("muse", help="MUSE metrics -> DIR/MUSE_EVAL.json and DIR/MUSE_SUMMARY.json")
    _model_args(m)
    m.add_argument("--data", required=True, help="MUSE folder (raw/, knowmem/, verbmem/, privleak/) or hub id")
    m.add_argument("--verbmem-max-new-tokens", type=int, default=128)
    m.add_argument("--knowmem-max-new-tokens", type=int, default=32)
    m.add_argument("--format", default=None,
                   help="the knowmem prompts' format (default: plain, MUSE's base-model Question:/Answer: tags); "
                   "a preset or a YAML mapping of fields as for 'eval tofu'")
    m.set_defaults(func=run_muse)

    s = sub.add_parser("summarize", help="recompute the summary of an existing *_EVAL.json (ours or open-unlearning's)")
    s.add_argument("eval_json", help="path to a TOFU_EVAL.json or MUSE_EVAL.json")
    s.add_argument("--retain-logs", default=None, help="the retain model's *_EVAL.json (Forget Quality, PrivLeak)")
    s.add_argument("--benchmark", choices=("tofu", "muse"), default=None, help="default: inferred from the file's metrics (checked against the file name)")
    s.add_argument("--out", default=None, help="write the summary to this file instead of stdout")
    s.set_defaults(func=run_summarize)


FORMAT_HELP = (
    "prompt format: a preset (plain, llama2, chat, auto or an open-unlearning model config name: llama-2-7b-chat, "
    "llama-3.2-1b-instruct, gemma-7b-it, ...) or a YAML mapping of fields as data.format takes them, e.g. "
    "\"{preset: chat, system_prompt: null}\" or \"{tokenise: separate}\" (fields: system_prompt, template, date_string, "
    "use_chat_template, trim_after_eos, tokenise); default (auto): the open-unlearning preset of the model family "
    "whose chat template the tokenizer has, else the model's chat template as it ships (docs/prompt-formats.md)"
)


def parse_format(value: str | None, option: str = "--format") -> Any:
    """``--format``: None, a preset name, or a YAML mapping of fields (as ``data.format``); a bad value is a
    ConfigError naming the option."""
    from baldro.data.prompt_formats import format_from_spec
    from baldro.errors import ConfigError

    if value is None:
        return None
    spec: Any = value
    if value.lstrip().startswith("{"):
        import yaml

        try:
            spec = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ConfigError(f"{option} {value!r} is not a YAML mapping ({str(err).splitlines()[0]}); "
                              "write e.g. \"{preset: chat, system_prompt: null}\"") from None
    return format_from_spec(spec, option)


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
    """The ``--out`` folder's lock, on its resolved path (held while the evaluation writes it; a failed evaluation
    removes the folder it created); a stale one is taken with --overwrite. ``--out`` may not be or hold an input."""
    from baldro.runfolder import check_out_apart, held_out

    check_out_apart(args.out, {"--model": args.model, "--data": args.data, "--retain-logs": args.retain_logs})
    return held_out(args.out, args.overwrite, stale_hint="pass --overwrite to start again, or delete the lock file")


def _check_pad_masking(args: argparse.Namespace) -> None:
    """A bad ``--pad-masking`` (or count, :mod:`baldro.cli.eval_args`) fails before the ``--out`` folder is touched."""
    from baldro.cli.eval_args import check_eval_args
    from baldro.core.padmask import check_pad_masking

    check_pad_masking(args.pad_masking, "--pad-masking")
    check_eval_args(args)


def _report(summary: dict[str, Any], out: Path | None) -> None:
    for name, reason in summary.get("skipped", {}).items():
        print(f"baldro eval: skipped {name}: {reason}", file=sys.stderr)
    if out is not None:
        print(f"baldro eval: wrote {out}", file=sys.stderr)
    print(json.dumps(summary, indent=4))


def run_tofu(args: argparse.Namespace) -> int:
    from baldro.evaluation.files import summary_file

    _check_pad_masking(args)
    fmt = parse_format(args.format)  # a bad --format fails before the --out folder is touched
    with _out_lock(args):
        summary = _tofu(args, fmt)
    _report(summary, summary_file(args.out, "tofu"))
    return 0


def _tofu(args: argparse.Namespace, fmt: Any) -> dict[str, Any]:
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
        fmt=fmt,
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
    fmt = parse_format(args.format)  # a bad --format fails before the --out folder is touched
    with _out_lock(args):
        summary = _muse(args, fmt)
    _report(summary, summary_file(args.out, "muse"))
    return 0


def _muse(args: argparse.Namespace, fmt: Any) -> dict[str, Any]:
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
        fmt=fmt,
        dtype=args.dtype,
    )


def run_summarize(args: argparse.Namespace) -> int:
    # Not evaluation.assemble: it imports the scoring code (torch); re-scoring a file needs numpy/scipy only.
    from baldro.evaluation.benchmark_check import check_benchmark
    from baldro.evaluation.files import read_eval_json, write_json
    from baldro.evaluation.retain_logs import load_retain_logs
    from baldro.evaluation.summary import summarize

    if args.out:
        from baldro.runfolder import check_out_apart

        check_out_apart(args.out, {"eval_json": args.eval_json, "--retain-logs": args.retain_logs})
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
