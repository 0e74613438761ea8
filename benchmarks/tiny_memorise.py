"""How fast does the tiny model memorise the embedded benchmark's ``full`` split on this machine?

Plain PyTorch loop (no Trainer): write the benchmark, build the tiny model, train on ``full`` with AdamW and a
linear warm-up/decay schedule, and report wall time, the final epoch's mean train loss and the answer-token accuracy
(teacher-forced argmax on the answer tokens + EOS) over ``full`` and over ``forget10``. Wall time depends on what
else runs on the machine; CPU time (all threads of this process) is reported beside it, with the load average.

    .venv/bin/python benchmarks/tiny_memorise.py            # defaults: 40 authors x 8 questions, 25 epochs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from transformers import AutoModelForCausalLM, AutoTokenizer

from baldro.data.collate import QACollator, QADataset
from baldro.data.formatting import PromptFormat
from baldro.data.synth import DEFAULT_AUTHORS, DEFAULT_QUESTIONS, write_benchmark
from baldro.data.tofu import load_tofu_split
from baldro.modeling.tiny import build_tiny_model


def answer_accuracy(model: torch.nn.Module, loader: DataLoader) -> tuple[float, float]:
    """(share of answer tokens (labels != -100) predicted by argmax given the true prefix, share of rows whose
    answer tokens are all predicted)."""
    hits = total = rows_ok = rows = 0
    model.eval()
    with torch.no_grad():
        for batch in loader:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            pred, gold = logits[:, :-1].argmax(-1), batch["labels"][:, 1:]
            mask = gold != -100
            hits += int((pred[mask] == gold[mask]).sum())
            total += int(mask.sum())
            rows_ok += int(((pred == gold) | ~mask).all(dim=1).sum())
            rows += len(gold)
    model.train()
    return hits / max(total, 1), rows_ok / max(rows, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--authors", type=int, default=DEFAULT_AUTHORS)
    ap.add_argument("--questions", type=int, default=DEFAULT_QUESTIONS)
    ap.add_argument("--uniform", action="store_true")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        data = write_benchmark(Path(tmp) / "data", seed=args.seed, authors=args.authors, questions=args.questions,
                               uniform=args.uniform)
        model_dir = build_tiny_model(data, Path(tmp) / "model", layers=args.layers, hidden=args.hidden,
                                     seed=args.seed, vocab_size=args.vocab)
        tok = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir)
        fmt = PromptFormat.auto()
        full = QADataset(load_tofu_split(data, "full"), tok, fmt)
        forget = QADataset(load_tofu_split(data, "forget10"), tok, fmt)
    collate = QACollator(tok)
    loader = DataLoader(full, batch_size=args.batch_size, shuffle=True, collate_fn=collate,
                        generator=torch.Generator().manual_seed(args.seed))
    steps = args.epochs * len(loader)
    warmup = max(1, steps // 20)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    n_tokens = sum(len(it["input_ids"]) for it in full.items)
    start, cpu_start = time.perf_counter(), time.process_time()
    history = []
    for epoch in range(args.epochs):
        losses = []
        for batch in loader:
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(out.loss.item())
        history.append(round(sum(losses) / len(losses), 4))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        print(f"epoch {epoch + 1}: loss {history[-1]:.4f}  (wall {wall:.0f}s, cpu {cpu:.0f}s)", flush=True)
    train_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    eval_loader = DataLoader(full, batch_size=64, collate_fn=collate)
    forget_loader = DataLoader(forget, batch_size=64, collate_fn=collate)
    acc_full, acc_forget = answer_accuracy(model, eval_loader), answer_accuracy(model, forget_loader)
    result = {
        "args": vars(args),
        "params": sum(p.numel() for p in model.parameters()),
        "rows_full": len(full),
        "tokens_full": n_tokens,
        "steps": steps,
        "train_wall_minutes": round(train_s / 60, 2),
        "train_cpu_minutes": round(cpu_s / 60, 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "final_epoch_loss": history[-1],
        "loss_by_epoch": history,
        "answer_token_accuracy_full": round(acc_full[0], 4),
        "answer_exact_full": round(acc_full[1], 4),
        "answer_token_accuracy_forget10": round(acc_forget[0], 4),
        "answer_exact_forget10": round(acc_forget[1], 4),
        "machine": f"{platform.machine()} {platform.processor() or ''} torch {torch.__version__}, {args.threads} threads",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
