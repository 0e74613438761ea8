"""Training-step benchmark: baldro's loss path against the released BalDRO code's pattern, side by side in one run.

Variants (interleaved, one step each per round, median of the timed rounds after warm-up):

* ``floor``            plain HF step: −(forget ``outputs.loss``) + retain ``outputs.loss`` (labels passed in).
* ``ours-*``           the real :class:`baldro.training.trainer.UnlearnTrainer` ``compute_loss`` (cached reference,
                       lean per-sample NLL from hidden states, no-grad ranking for BalDRO-G).
* ``released-*``       the released code's pattern re-created from its description: labels passed to the model (a
                       second loss), cross-entropy over transposed ``[B, V, T]`` float logits, a resident reference
                       model run every NPO step, and for BalDRO-G a grad-on ranking pass then a second pass on the kept
                       half with the retain batch subsampled to the kept size.

Peak memory: CUDA ``max_memory_allocated`` per variant; on CPU the peak RSS, sampled every millisecond, of a fresh
subprocess that runs only that variant (``--memory-only``; after one warm-up step, so set-up is excluded). ``--json`` prints one JSON object per variant, then one line of ratios.
Besides wall time, each row has the median process CPU time of a step (user + sys over all threads,
``step_cpu_ms_median``) and the ratios line the same ratios in CPU time: on a machine shared with other jobs, wall
time measures the scheduler as much as the code (a 2-thread step loses most when a core is taken away).

One code path for CPU and CUDA (``benchmarks/bench_device.py``): the clock is read after ``torch.cuda.synchronize``;
bfloat16 on CUDA, float32 on CPU. MFU = 6·N·tokens per step / step time / peak FLOP/s, with N the parameters in
matrix products (all but the input embedding), tokens = 2·batch·seq (forget + retain) — the useful work of one
unlearning step, so a variant that runs extra passes shows a lower MFU. The peak comes from the device table or
``--peak-tflops`` (on CPU MFU is printed only with ``--peak-tflops``).

    python benchmarks/step_bench.py --model tiny-bigvocab --json
    python benchmarks/step_bench.py --model llama-1b --batch 16 --seq 512 --json      # on a GPU
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import LlamaConfig, LlamaForCausalLM, TrainingArguments

from baldro.aggregators import dv_aggregate
from baldro.core.sequence import model_sequence_stats
from baldro.training.reference_cache import ReferenceCache
from baldro.training.trainer import UnlearnTrainer
from bench_device import PeakMemory, matmul_params, mfu, peak_tflops, resolve_device, sync

MODELS: dict[str, dict[str, int]] = {
    "tiny": dict(vocab_size=2048, hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=4),
    "tiny-bigvocab": dict(vocab_size=128256, hidden_size=128, intermediate_size=512, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=4),
    "llama-1b": dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                     num_attention_heads=32, num_key_value_heads=8),
}
VARIANTS = ("floor", "ours-npo", "ours-npo+dv", "ours-npo+g", "ours-simnpo+dv",
            "released-npo", "released-npo+dv", "released-npo+g")
NPO_BETA, DV_BETA, GAMMA, ALPHA = 0.1, 2.0, 1.0, 1.0


@dataclass
class Setup:
    model: nn.Module
    reference: nn.Module
    optimizer: torch.optim.Optimizer
    forget: dict[str, Tensor]
    retain: dict[str, Tensor]
    cache: ReferenceCache
    trainers: dict[str, UnlearnTrainer]


def make_batch(batch: int, seq: int, vocab: int, device: torch.device, seed: int) -> dict[str, Tensor]:
    """Random token ids; the first third of each row is the prompt (label −100), the rest the answer."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (batch, seq), generator=g)
    labels = ids.clone()
    labels[:, : seq // 3] = -100
    return {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device),
            "labels": labels.to(device), "index": torch.arange(batch, device=device)}


# ----- the released pattern ------------------------------------------------------------------------------------------
def released_batch_nll(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """Per-sample summed NLL as the released code computes it: labels in, transposed float cross-entropy."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
    logits = out.logits[..., :-1, :].contiguous()
    shifted = batch["labels"][..., 1:].contiguous()
    return F.cross_entropy(logits.transpose(-1, -2).float(), shifted, ignore_index=-100, reduction="none").sum(-1)


def released_npo_losses(model: nn.Module, reference: nn.Module, forget: dict[str, Tensor]) -> Tensor:
    current = released_batch_nll(model, forget)
    with torch.no_grad():
        ref = released_batch_nll(reference, forget)
    return -F.logsigmoid(NPO_BETA * (current - ref)) * 2 / NPO_BETA


def released_retain(model: nn.Module, retain: dict[str, Tensor]) -> Tensor:
    return model(input_ids=retain["input_ids"], attention_mask=retain["attention_mask"], labels=retain["labels"]).loss


def _subset(batch: dict[str, Tensor], rows: Tensor) -> dict[str, Tensor]:
    return {k: v[rows] for k, v in batch.items()}


def released_loss(variant: str, s: Setup) -> Tensor:
    if variant == "released-npo+g":
        nll = released_batch_nll(s.model, s.forget)  # the grad-on ranking pass, thrown away
        kept = torch.sort(nll.detach(), stable=True).indices[: math.ceil(0.5 * nll.numel())]
        forget = released_npo_losses(s.model, s.reference, _subset(s.forget, kept)).mean()
        return GAMMA * forget + ALPHA * released_retain(s.model, _subset(s.retain, kept))
    per_sample = released_npo_losses(s.model, s.reference, s.forget)
    forget = dv_aggregate(per_sample, DV_BETA, "official")[0] if variant == "released-npo+dv" else per_sample.mean()
    return GAMMA * forget + ALPHA * released_retain(s.model, s.retain)


def floor_loss(s: Setup) -> Tensor:
    f = s.model(input_ids=s.forget["input_ids"], attention_mask=s.forget["attention_mask"], labels=s.forget["labels"])
    return -f.loss + released_retain(s.model, s.retain)


# ----- ours: the real trainer code path -------------------------------------------------------------------------------
OURS = {
    "ours-npo": dict(objective={"name": "npo", "beta": NPO_BETA}, aggregator="mean"),
    "ours-npo+dv": dict(objective={"name": "npo", "beta": NPO_BETA}, aggregator={"name": "dv", "beta": DV_BETA}),
    "ours-npo+g": dict(objective={"name": "npo", "beta": NPO_BETA}, aggregator={"name": "group", "ratio": 0.5}),
    "ours-simnpo+dv": dict(objective={"name": "simnpo", "beta": 4.5}, aggregator={"name": "dv", "beta": DV_BETA}),
}


def make_trainer(model: nn.Module, spec: dict, cache: ReferenceCache, device: torch.device, out: str) -> UnlearnTrainer:
    args = TrainingArguments(output_dir=out, report_to=[], use_cpu=device.type == "cpu", save_strategy="no")
    return UnlearnTrainer(model=model, args=args, data_collator=lambda rows: rows, reference_cache=cache,
                          retain={"name": "nll"}, forget_weight=GAMMA, retain_weight=ALPHA, log_every=None, **spec)


def loss_fn(variant: str, s: Setup) -> Callable[[], Tensor]:
    if variant == "floor":
        return lambda: floor_loss(s)
    if variant.startswith("released"):
        return lambda: released_loss(variant, s)
    trainer = s.trainers[variant]
    return lambda: trainer.compute_loss(s.model, {"forget": dict(s.forget), "retain": dict(s.retain)})


# ----- harness -------------------------------------------------------------------------------------------------------
def build(args: argparse.Namespace, variants: tuple[str, ...]) -> Setup:
    device = resolve_device(args.device)
    torch.manual_seed(0)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    config = LlamaConfig(**MODELS[args.model], max_position_embeddings=max(args.seq, 128), tie_word_embeddings=False)
    config._attn_implementation = "sdpa"
    model = LlamaForCausalLM(config).to(device=device, dtype=dtype).train()
    reference = LlamaForCausalLM(config).to(device=device, dtype=dtype).eval().requires_grad_(False)
    reference.load_state_dict(model.state_dict())
    forget = make_batch(args.batch, args.seq, config.vocab_size, device, 1)
    retain = make_batch(args.batch, args.seq, config.vocab_size, device, 2)
    with torch.no_grad():
        ref_logp = model_sequence_stats(reference, forget["input_ids"], forget["labels"], forget["attention_mask"]).logp_sum
    cache = ReferenceCache.from_pairs({"forget": (forget["index"].cpu(), ref_logp.cpu())})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=device.type == "cuda")
    out = tempfile.mkdtemp(prefix="step_bench_")
    trainers = {v: make_trainer(model, OURS[v], cache, device, out) for v in variants if v in OURS}
    return Setup(model, reference, optimizer, forget, retain, cache, trainers)


def timed_step(fn: Callable[[], Tensor], s: Setup, device: torch.device, cpu_ms: list[float] | None = None) -> float:
    """Wall milliseconds of one step (loss, backward, optimizer); its process CPU time (user + sys, every thread) is
    appended to ``cpu_ms`` when given."""
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    loss = fn()
    loss.backward()
    s.optimizer.step()
    s.optimizer.zero_grad(set_to_none=True)
    sync(device)
    if cpu_ms is not None:
        cpu_ms.append((time.process_time() - c0) * 1000)
    return (time.perf_counter() - t0) * 1000


def cpu_peak_rss(args: argparse.Namespace, variant: str) -> float:
    cmd = [sys.executable, __file__, "--model", args.model, "--batch", str(args.batch), "--seq", str(args.seq),
           "--device", args.device, "--threads", str(args.threads), "--memory-only", variant]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def memory_only(args: argparse.Namespace) -> None:
    """Peak RSS sampled every millisecond while this variant alone runs two steps (set-up excluded)."""
    s = build(args, (args.memory_only,))
    fn, device = loss_fn(args.memory_only, s), resolve_device(args.device)
    timed_step(fn, s, device)
    with PeakMemory(device) as peak:
        for _ in range(2):
            timed_step(fn, s, device)
    print(peak.gib)


def run(args: argparse.Namespace) -> tuple[list[dict], dict]:
    device = resolve_device(args.device)
    variants = tuple(args.variants.split(",")) if args.variants else VARIANTS
    s = build(args, variants)
    fns = {v: loss_fn(v, s) for v in variants}
    times: dict[str, list[float]] = {v: [] for v in variants}
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    peaks: dict[str, float] = {}
    for round_ in range(args.warmup + args.steps):
        for v in variants:
            cpu_ms = cpu[v] if round_ >= args.warmup else None
            if device.type == "cuda":
                with PeakMemory(device) as mem:
                    ms = timed_step(fns[v], s, device, cpu_ms)
                peaks[v] = max(peaks.get(v, 0.0), mem.gib)
            else:  # CPU RSS is per process: measured below, one fresh process per variant
                ms = timed_step(fns[v], s, device, cpu_ms)
            if round_ >= args.warmup:
                times[v].append(ms)
    if device.type == "cpu" and not args.no_memory:
        peaks = {v: cpu_peak_rss(args, v) for v in variants}
    tokens = 2 * args.batch * args.seq
    peak = peak_tflops(device, args.peak_tflops)
    n = matmul_params(s.model)
    rows = []
    for v in variants:
        med = statistics.median(times[v])
        row = {"name": v, "step_ms_median": round(med, 3), "step_ms_min": round(min(times[v]), 3),
               "step_cpu_ms_median": round(statistics.median(cpu[v]), 3),
               "peak_mem_GiB": round(peaks[v], 3) if v in peaks else None,
               "tokens_per_s": round(tokens / (med / 1000), 1),
               "model_tflops_per_s": round(6 * n * tokens / (med / 1000) / 1e12, 6)}
        util = mfu(6 * n * tokens, med / 1000, peak)
        row["mfu"] = round(util, 6) if util is not None else None
        rows.append(row)
    info = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "dtype": str(next(s.model.parameters()).dtype).removeprefix("torch."), "model": args.model,
            "matmul_params": n, "tokens_per_step": tokens, "peak_tflops": peak,
            "peak_mem_kind": None if not peaks else ("cuda_max_memory_allocated" if device.type == "cuda" else "cpu_rss")}
    return rows, info


def ratios(rows: list[dict]) -> dict[str, float]:
    med = {r["name"]: r["step_ms_median"] for r in rows}
    pairs = {
        "released-npo/ours-npo": ("released-npo", "ours-npo"),
        "released-npo+dv/ours-npo+dv": ("released-npo+dv", "ours-npo+dv"),
        "released-npo+g/ours-npo+g": ("released-npo+g", "ours-npo+g"),
        "ours-npo+dv/ours-npo (DRO overhead)": ("ours-npo+dv", "ours-npo"),
        "ours-npo/floor": ("ours-npo", "floor"),
    }
    out = {k: round(med[a] / med[b], 3) for k, (a, b) in pairs.items() if a in med and b in med}
    cpu = {r["name"]: r["step_cpu_ms_median"] for r in rows}
    out.update({f"{k} (CPU time)": round(cpu[a] / cpu[b], 3) for k, (a, b) in pairs.items() if a in cpu and b in cpu})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(MODELS), default="tiny-bigvocab")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="the device's peak TFLOP/s for MFU (default: table of GPUs, bf16 dense; none on CPU)")
    p.add_argument("--memory", action="store_true", help="measure CPU peak RSS even with --quick")
    p.add_argument("--variants", default="", help="comma-separated subset of: " + ", ".join(VARIANTS))
    p.add_argument("--quick", action="store_true", help="tiny shapes and few steps (for tests)")
    p.add_argument("--no-memory", action="store_true", help="skip the per-variant CPU peak-RSS subprocesses")
    p.add_argument("--json", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: torch's own choice)")
    p.add_argument("--memory-only", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.model, args.batch, args.seq, args.steps, args.warmup = "tiny", 4, 32, 2, 1
        args.no_memory = not args.memory
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_only:
        memory_only(args)
        return 0
    rows, info = run(args)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        print(json.dumps({"ratios": ratios(rows), **info}))
    else:
        print(f"model={args.model} batch={args.batch} seq={args.seq} " + " ".join(f"{k}={v}" for k, v in info.items()))
        for row in rows:
            print(f"{row['name']:>18}  median {row['step_ms_median']:9.1f} ms  min {row['step_ms_min']:9.1f} ms  "
                  f"peak {row['peak_mem_GiB']} GiB  {row['tokens_per_s']:.0f} tok/s  "
                  f"{row['model_tflops_per_s']} TFLOP/s  mfu {row['mfu']}")
        for k, v in ratios(rows).items():
            print(f"{k}: {v}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
