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

    python benchmarks/step_bench.py --model tiny-bigvocab --json
    python benchmarks/step_bench.py --model llama-1b --batch 16 --seq 512 --json      # on a GPU
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
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
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}
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
    device = torch.device(args.device)
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


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed_step(fn: Callable[[], Tensor], s: Setup, device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    loss = fn()
    loss.backward()
    s.optimizer.step()
    s.optimizer.zero_grad(set_to_none=True)
    sync(device)
    return (time.perf_counter() - t0) * 1000


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def peak_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def cpu_peak_rss(args: argparse.Namespace, variant: str) -> float:
    cmd = [sys.executable, __file__, "--model", args.model, "--batch", str(args.batch), "--seq", str(args.seq),
           "--device", args.device, "--memory-only", variant]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def _rss_gib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**30


def memory_only(args: argparse.Namespace) -> None:
    """Peak RSS sampled every millisecond while this variant alone runs two steps (set-up excluded)."""
    s = build(args, (args.memory_only,))
    fn, device = loss_fn(args.memory_only, s), torch.device(args.device)
    timed_step(fn, s, device)
    peak, done = [_rss_gib()], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_gib())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for _ in range(2):
        timed_step(fn, s, device)
    done.set()
    sampler.join()
    print(peak[0])


def run(args: argparse.Namespace) -> list[dict]:
    device = torch.device(args.device)
    variants = tuple(args.variants.split(",")) if args.variants else VARIANTS
    s = build(args, variants)
    fns = {v: loss_fn(v, s) for v in variants}
    times: dict[str, list[float]] = {v: [] for v in variants}
    peaks: dict[str, float] = {}
    for round_ in range(args.warmup + args.steps):
        for v in variants:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            ms = timed_step(fns[v], s, device)
            if device.type == "cuda":
                peaks[v] = max(peaks.get(v, 0.0), torch.cuda.max_memory_allocated(device) / 2**30)
            if round_ >= args.warmup:
                times[v].append(ms)
    if device.type == "cpu" and not args.no_memory:
        peaks = {v: cpu_peak_rss(args, v) for v in variants}
    tokens = 2 * args.batch * args.seq
    peak = peak_tflops(device)
    rows = []
    for v in variants:
        med = statistics.median(times[v])
        row = {"name": v, "step_ms_median": round(med, 3), "step_ms_min": round(min(times[v]), 3),
               "peak_mem_GiB": round(peaks[v], 3) if v in peaks else None,
               "tokens_per_s": round(tokens / (med / 1000), 1)}
        if peak is not None:
            row["mfu"] = round(6 * n_params(s.model) * tokens / (med / 1000) / (peak * 1e12), 4)
        rows.append(row)
    return rows


def ratios(rows: list[dict]) -> dict[str, float]:
    med = {r["name"]: r["step_ms_median"] for r in rows}
    pairs = {
        "released-npo/ours-npo": ("released-npo", "ours-npo"),
        "released-npo+dv/ours-npo+dv": ("released-npo+dv", "ours-npo+dv"),
        "released-npo+g/ours-npo+g": ("released-npo+g", "ours-npo+g"),
        "ours-npo+dv/ours-npo (DRO overhead)": ("ours-npo+dv", "ours-npo"),
        "ours-npo/floor": ("ours-npo", "floor"),
    }
    return {k: round(med[a] / med[b], 3) for k, (a, b) in pairs.items() if a in med and b in med}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(MODELS), default="tiny-bigvocab")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--variants", default="", help="comma-separated subset of: " + ", ".join(VARIANTS))
    p.add_argument("--quick", action="store_true", help="tiny shapes and few steps (for tests)")
    p.add_argument("--no-memory", action="store_true", help="skip the per-variant CPU peak-RSS subprocesses")
    p.add_argument("--json", action="store_true")
    p.add_argument("--memory-only", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.model, args.batch, args.seq, args.steps, args.warmup = "tiny", 4, 32, 2, 1
        args.no_memory = True
    if args.memory_only:
        memory_only(args)
        return 0
    rows = run(args)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        print(json.dumps({"ratios": ratios(rows)}))
    else:
        print(f"model={args.model} batch={args.batch} seq={args.seq} device={args.device}")
        for row in rows:
            print(f"{row['name']:>18}  median {row['step_ms_median']:9.1f} ms  min {row['step_ms_min']:9.1f} ms  "
                  f"peak {row['peak_mem_GiB']} GiB  {row['tokens_per_s']:.0f} tok/s" + (f"  mfu {row['mfu']}" if "mfu" in row else ""))
        for k, v in ratios(rows).items():
            print(f"{k}: {v}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
