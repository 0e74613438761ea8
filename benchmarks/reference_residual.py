"""The NPO reference cache against the live forward at lr = 0 under bf16 autocast (issue 22, item 9).

At learning rate 0 the policy *is* the reference, so every NPO log-ratio log π_θ(y|x) − log π_ref(y|x) of a
training batch should be 0. The reference cache (:mod:`baldro.training.reference_cache`) runs the forget set once,
in dataset order, ``per_device_train_batch_size`` rows a batch, under the training step's autocast; the training
step runs shuffled batches, each right-padded to its own longest row. This script runs ``UnlearnTrainer`` (NPO, no
retain term, ``bf16=True``, lr 0, ``--epochs`` over ``--items`` forget rows) and compares the policy's Σ log π of
each training row with four references, each computed without autograd in the same forward context:

* ``cache``       the reference cache as training uses it (dataset-order batches of the same size);
* ``same_batch``  the very same collated training batch (same rows, same padded width);
* ``same_width``  each row alone, right-padded to its training batch's width;
* ``alone``       each row alone, unpadded (what a batch-size-1 cache would hold).

A difference that vanishes for ``same_batch`` and ``same_width`` but not for ``cache`` or ``alone`` depends on the
padded width, not on the other rows. ``--attn eager`` repeats it with the eager attention kernel. Differences are
in nats (Σ over a row's answer tokens; ``per_token``: divided by the row's answer-token count).

    python benchmarks/reference_residual.py --json                     # tiny model, embedded benchmark (seconds)
    python benchmarks/reference_residual.py --model /tmp/smol_base --data /work/shared/data/tofu --items 64 --json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments

from baldro.core.sequence import model_sequence_stats
from baldro.data.collate import QADataset
from baldro.data.synth import write_benchmark
from baldro.data.tofu import load_tofu_split
from baldro.modeling.tiny import build_tiny_model
from baldro.training.trainer import UnlearnTrainer

REFERENCES = ("cache", "same_batch", "same_width", "alone")


def _forget_batch_spy(trainer: UnlearnTrainer, found: dict[str, list[torch.Tensor]]) -> None:
    """Wrap ``trainer.forget_inputs``: record the policy's Σ log π and the four references of every training row."""
    original = trainer.forget_inputs

    def spy(model: Any, inputs: dict[str, Any], rows: Any = None) -> Any:
        fi = original(model, inputs, rows)
        part = inputs["forget"]
        context = trainer._policy_context(model)

        def logp(ids: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return model_sequence_stats(model, ids, labels, mask, trainer.chunk_tokens, context).logp_sum

        ids, labels, mask = part["input_ids"], part["labels"], part["attention_mask"]
        width = mask.sum(dim=1)
        policy = fi.stats.logp_sum.detach()
        found["policy"].append(policy)
        found["n_tokens"].append(fi.stats.n_tokens)
        found["cache"].append(fi.ref_logp)
        found["same_batch"].append(logp(ids, labels, mask))
        found["same_width"].append(torch.cat([logp(ids[r : r + 1], labels[r : r + 1], mask[r : r + 1])
                                              for r in range(ids.shape[0])]))
        found["alone"].append(torch.cat([
            logp(ids[r : r + 1, : int(width[r])], labels[r : r + 1, : int(width[r])], mask[r : r + 1, : int(width[r])])
            for r in range(ids.shape[0])
        ]))
        return fi

    trainer.forget_inputs = spy  # type: ignore[method-assign]


def measure(model: Any, tokenizer: Any, rows: list[dict], batch_size: int, epochs: int, work: Path) -> dict[str, Any]:
    """Train at lr 0 under bf16 autocast and summarise policy − reference for each reference."""
    dataset = QADataset(rows, tokenizer, max_length=512, name="forget")
    args = TrainingArguments(
        output_dir=str(work / "run"), per_device_train_batch_size=batch_size, learning_rate=0.0,
        num_train_epochs=epochs, bf16=True, use_cpu=not torch.cuda.is_available(), report_to="none",
        save_strategy="no", logging_strategy="no", disable_tqdm=True, seed=0, data_seed=0, dataloader_num_workers=0,
    )
    trainer = UnlearnTrainer(model=model, args=args, forget_dataset=dataset, processing_class=tokenizer,
                             objective={"name": "npo", "beta": 0.1}, retain=None, log_every=None)
    found: dict[str, list[torch.Tensor]] = {k: [] for k in ("policy", "n_tokens", *REFERENCES)}
    _forget_batch_spy(trainer, found)
    trainer.train()
    policy = torch.cat(found["policy"]).double().cpu()
    n_tokens = torch.cat(found["n_tokens"]).double().cpu().clamp(min=1)
    out: dict[str, Any] = {"rows_compared": int(policy.numel()), "answer_tokens_mean": round(float(n_tokens.mean()), 1),
                           "logp_mean": round(float(policy.mean()), 3)}
    for name in REFERENCES:
        gap = (policy - torch.cat(found[name]).double().cpu()).abs()
        out[name] = {"max_abs": float(gap.max()), "median_abs": float(gap.median()),
                     "max_per_token": float((gap / n_tokens).max()), "rows_exact": int((gap == 0).sum())}
    return out


def _model(args: argparse.Namespace, work: Path) -> tuple[Any, Any, list[dict]]:
    data = Path(args.data) if args.data else write_benchmark(work / "data", seed=0, authors=20, questions=10)
    rows = [{"question": r["question"], "answer": r["answer"]} for r in load_tofu_split(str(data), args.split)]
    path = Path(args.model) if args.model else build_tiny_model(data, work / "model", seed=0)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.weights]
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation=args.attn)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, rows[: args.items]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="Hugging Face model folder (default: the untrained tiny model)")
    p.add_argument("--data", help="TOFU-style folder (default: the embedded benchmark)")
    p.add_argument("--split", default="forget10")
    p.add_argument("--items", type=int, default=32, help="forget rows")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--weights", choices=("float32", "bfloat16"), default="float32",
                   help="the model's dtype (training.bf16 autocast either way; real configs: bfloat16)")
    p.add_argument("--attn", choices=("sdpa", "eager"), default="sdpa")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer, rows = _model(args, Path(tmp))
        result = measure(model, tokenizer, rows, args.batch_size, args.epochs, Path(tmp))
    result = {"model": args.model or "tiny", "weights": args.weights, "attn": args.attn, "items": len(rows),
              "batch_size": args.batch_size, "epochs": args.epochs, "torch": torch.__version__, **result}
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
