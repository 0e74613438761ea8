"""The scale of SatImp / WGA per-sample losses on the tiny model, and what it means for BalDRO-DV and BalDRO-G.

Memorise the embedded benchmark's ``full`` split with the tiny model (as ``tiny_memorise.py``), then run plain
gradient ascent (AdamW) on ``forget10`` and, after 0, 1, 2, … GA epochs, report over ``forget10``: the range of the
per-sample SatImp (β1 5, β2 1) and WGA (β 1) losses, the DV weight ratio max/min on batches of 8 for β = 2 and for
the presets' β (SatImp 0.005, WGA 0.1), and how many of BalDRO-G's kept rows (ratio 0.5, batches of 8) ranking by
loss shares with ranking by likelihood.

    .venv/bin/python benchmarks/satimp_scale.py            # ~2 min of CPU on 1 thread
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from transformers import AutoModelForCausalLM, AutoTokenizer

from baldro import aggregators, objectives
from baldro.core.sequence import model_sequence_stats
from baldro.data.collate import QACollator, QADataset
from baldro.data.formatting import PromptFormat
from baldro.data.synth import write_benchmark
from baldro.data.tofu import load_tofu_split
from baldro.modeling.tiny import build_tiny_model
from baldro.objectives import ForgetInputs

PRESET_BETA = {"satimp": 0.005, "wga": 0.1}


def measure(model: torch.nn.Module, loader: DataLoader) -> dict[str, dict[str, float]]:
    model.eval()
    out: dict[str, dict[str, float]] = {}
    with torch.no_grad():
        batches = [model_sequence_stats(model, b["input_ids"], b["labels"], b["attention_mask"]) for b in loader]
    for name in ("satimp", "wga"):
        objective = objectives.build(name)
        ratios = {2.0: [], PRESET_BETA[name]: []}
        overlap, kept, values = 0, 0, []
        for stats in batches:
            losses = objective(ForgetInputs(stats))
            values.append(losses)
            for beta in ratios:
                w = aggregators.build("dv", beta=beta)(losses)[1]
                ratios[beta].append(float(w.max() / w.min()))
            by_loss = aggregators.build("group", rank_by="loss")(losses)[1] > 0
            by_lik = aggregators.build("group", rank_by="likelihood")(losses, nll=stats.nll_mean)[1] > 0
            overlap += int((by_loss & by_lik).sum())
            kept += int(by_lik.sum())
        flat = torch.cat(values)
        out[name] = {
            "min": round(float(flat.min()), 5),
            "median": round(float(flat.median()), 5),
            "max": round(float(flat.max()), 5),
            "dv_ratio_beta2_mean": round(sum(ratios[2.0]) / len(ratios[2.0]), 4),
            f"dv_ratio_beta{PRESET_BETA[name]}_mean": round(
                sum(ratios[PRESET_BETA[name]]) / len(ratios[PRESET_BETA[name]]), 2
            ),
            "group_loss_vs_likelihood_overlap": round(overlap / kept, 3),
        }
    model.train()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--ga-epochs", type=int, default=6)
    ap.add_argument("--ga-lr", type=float, default=5e-4)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        data = write_benchmark(Path(tmp) / "data", seed=0)
        model_dir = build_tiny_model(data, Path(tmp) / "model", layers=2, hidden=128, seed=0, vocab_size=2048)
        tok = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir)
        full = QADataset(load_tofu_split(data, "full"), tok, PromptFormat.auto())
        forget = QADataset(load_tofu_split(data, "forget10"), tok, PromptFormat.auto())
    collate = QACollator(tok)
    loader = DataLoader(full, batch_size=32, shuffle=True, collate_fn=collate,
                        generator=torch.Generator().manual_seed(0))
    forget_loader = DataLoader(forget, batch_size=8, collate_fn=collate)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    steps = args.epochs * len(loader)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    for _ in range(args.epochs):
        for batch in loader:
            model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
    results = {"after_memorising": measure(model, forget_loader)}
    ga = torch.optim.AdamW(model.parameters(), lr=args.ga_lr, weight_decay=0.0)
    for epoch in range(args.ga_epochs):
        for batch in forget_loader:
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
            (-out.loss).backward()
            ga.step()
            ga.zero_grad(set_to_none=True)
        results[f"after_ga_epoch_{epoch + 1}"] = measure(model, forget_loader)
    print(json.dumps({"args": vars(args), "results": results}, indent=1))


if __name__ == "__main__":
    main()
