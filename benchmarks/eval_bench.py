"""TOFU evaluation benchmark: baldro's evaluator against the anchor's (open-unlearning's) pattern, same model and items.

* ``ours``   :func:`baldro.evaluation.tofu.evaluate_tofu` — each split tokenised once, every (item, answer variant)
             scored in one length-batched forward pass (LM head only at answer positions) that serves probability,
             truth ratio, Min-K%, loss-MIA, exact memorization and extraction strength; one batched greedy generation
             per question (left padding, KV cache) scored against the answer, the paraphrase and each perturbed answer.
* ``anchor`` a re-creation of open-unlearning's evaluator loop: every metric builds and tokenises its own dataset,
             iterates it in fixed index order (batch 32), runs ``model(**batch)`` with labels over full ``[B, T, V]``
             logits (probabilities, EM, ES and each MIA attack separately; a multi-answer dataset runs one pass per
             answer slot), and every ROUGE metric generates again (``*_PERT_ROUGE`` once per perturbed answer).
             Metrics computed from others (truth ratio, normalised probability, forget quality, model utility,
             privleak) reuse cached results, as open-unlearning's pre-compute cache does.

Both evaluate the same metric set on the first ``--items`` rows of forget10_perturbed, retain_perturbed,
real_authors_perturbed, world_facts_perturbed and holdout10. Items/s = rows evaluated / wall seconds. The run also
checks the two agree (per-item probabilities and greedy generations).

One code path for CPU and CUDA (``benchmarks/bench_device.py``): ``--device`` (default: CUDA when available), clocks
read after ``torch.cuda.synchronize``, peak memory per evaluator (CUDA ``max_memory_allocated``; on CPU the process
RSS sampled every millisecond, so the second evaluator's figure includes what the first left resident), and MFU from
the forward FLOPs each evaluator really ran: 2·N_decoder per token position the decoder ran on plus 2·N_head per row
the LM head projected (hooks count them; padding and repeated passes included), over the device's peak FLOP/s
(table of GPUs or ``--peak-tflops``). The default dtype is bfloat16 on CUDA (the per-item agreement fields then show
bf16 noise; pass ``--dtype float32`` to check agreement on a GPU) and float32 on CPU.

    python benchmarks/eval_bench.py                      # embedded benchmark + untrained tiny model, CPU
    python benchmarks/eval_bench.py --quick --json       # seconds (used by the test)
    python benchmarks/eval_bench.py --device cuda --json # on a GPU
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from baldro.data.collate import QACollator
from baldro.data.formatting import PromptFormat, encode_prompt, encode_qa
from baldro.data.synth import write_benchmark
from baldro.data.tofu import load_tofu_split
from baldro.evaluation import metrics
from baldro.evaluation.generation import cut_at_stops
from baldro.evaluation.tofu import evaluate_tofu
from baldro.modeling.tiny import build_tiny_model
from bench_device import FlopCounter, PeakMemory, mfu, peak_tflops, resolve_device, timed

IGNORE = -100
SPLITS = {
    "forget": "forget10_perturbed",
    "retain": "retain_perturbed",
    "ra": "real_authors_perturbed",
    "wf": "world_facts_perturbed",
    "holdout": "holdout10",
}


class Anchor:
    """open-unlearning's evaluation pattern (see the module docstring)."""

    def __init__(self, model: nn.Module, tok: Any, fmt: PromptFormat, batch_size: int, max_new_tokens: int) -> None:
        self.model, self.tok, self.fmt = model, tok, fmt
        self.device = next(model.parameters()).device
        self.bs, self.max_new = batch_size, max_new_tokens
        self.right = QACollator(tok, "right")

    def _dataset(self, rows: list[dict], key: str) -> list[dict]:
        """Tokenised per metric: item = {"0": enc, "1": enc, ...} for list answers, else one encoding."""
        out = []
        for i, r in enumerate(rows):
            answers = r[key]
            if isinstance(answers, list):
                out.append({str(k): {**encode_qa(self.tok, r["question"], a, self.fmt), "index": i}
                            for k, a in enumerate(answers)})
            else:
                out.append({"0": {**encode_qa(self.tok, r["question"], answers, self.fmt), "index": i}})
        return out

    def _batches(self, data: list[dict]):
        for s in range(0, len(data), self.bs):
            chunk = data[s : s + self.bs]
            for slot in chunk[0]:
                yield slot, self.right([d[slot] for d in chunk])

    @torch.no_grad()
    def _forward(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        batch = {k: v.to(self.device) for k, v in batch.items() if k != "index"}
        out = self.model(**batch)  # labels passed: the model computes its own loss too
        return out.logits, batch["labels"]

    def probability(self, rows: list[dict], key: str) -> dict[int, Any]:
        res: dict[int, dict[str, list[float]]] = {}
        for _, batch in self._batches(self._dataset(rows, key)):
            idx = batch["index"].tolist()
            logits, labels = self._forward(batch)
            shifted = labels[:, 1:]
            losses = nn.functional.cross_entropy(
                logits[:, :-1].transpose(-1, -2), shifted, ignore_index=IGNORE, reduction="none"
            ).sum(-1)
            avg = losses / (labels != IGNORE).sum(-1)
            for i, a in zip(idx, avg.tolist()):
                res.setdefault(i, {"prob": [], "avg_loss": []})
                res[i]["prob"].append(float(np.exp(-a)))
                res[i]["avg_loss"].append(a)
        return res

    def _token_logprobs(self, logits: torch.Tensor, batch: dict) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        logp = torch.log_softmax(logits, -1)[:, :-1]
        labels = batch["labels"].to(logits.device)
        vocab_out, labels_out = [], []
        for b in range(logits.shape[0]):
            pos = (labels[b] != IGNORE).nonzero()[:, 0][:-1]  # EOS prediction excluded
            vocab_out.append(logp[b, pos[0] - 1 : pos[-1]])
            labels_out.append(labels[b][pos])
        return vocab_out, labels_out

    def em_es(self, rows: list[dict], which: str) -> dict[int, float]:
        res = {}
        for _, batch in self._batches(self._dataset(rows, "answer")):
            logits, _ = self._forward(batch)
            lps, labs = self._token_logprobs(logits, batch)
            for i, lp, lab in zip(batch["index"].tolist(), lps, labs):
                hits = (lp.argmax(-1) == lab).cpu().numpy()
                res[i] = metrics.exact_memorization(hits) if which == "em" else metrics.extraction_strength(hits)
        return res

    def mia(self, forget: list[dict], holdout: list[dict], stat: str) -> float:
        """One attack = its own tokenisation and forward passes over forget and holdout."""
        scores = {}
        for part, rows in (("forget", forget), ("holdout", holdout)):
            vals = []
            for _, batch in self._batches(self._dataset(rows, "answer")):
                logits, labels = self._forward(batch)
                if stat in ("min_k", "min_k_plus_plus"):
                    lps, labs = self._token_logprobs(logits, batch)
                    for lp, lab in zip(lps, labs):
                        target = lp.gather(1, lab[:, None])[:, 0]
                        if stat == "min_k":
                            vals.append(metrics.min_k_score(_np(target)))
                        else:
                            mu = (lp.exp() * lp).sum(-1)
                            sigma = (lp.exp() * lp.square()).sum(-1) - mu.square()
                            vals.append(metrics.min_k_plus_plus_score(_np(target), _np(mu), _np(sigma)))
                else:
                    ce = nn.functional.cross_entropy(
                        logits[:, :-1].transpose(-1, -2), labels[:, 1:], ignore_index=IGNORE, reduction="none"
                    ).sum(-1)
                    avg = (ce / (labels != IGNORE).sum(-1)).tolist()
                    if stat == "zlib":
                        texts = [self.tok.decode(lab[lab != IGNORE].tolist(), skip_special_tokens=True) for lab in labels]
                        avg = [metrics.zlib_score(a, t) for a, t in zip(avg, texts)]
                    vals += avg
            scores[part] = vals
        return metrics.mia_auc(scores["forget"], scores["holdout"])

    @torch.no_grad()
    def rouge(self, rows: list[dict], key: str) -> dict[int, list[dict]]:
        """One generation per (batch, answer slot), fixed index order, left padding, as open-unlearning's rouge."""
        res: dict[int, list[dict]] = {}
        data = []
        for i, r in enumerate(rows):
            answers = r[key] if isinstance(r[key], list) else [r[key]]
            prompt = encode_prompt(self.tok, r["question"], self.fmt)
            data.append({str(k): {"prompt": prompt, "answer": a, "index": i} for k, a in enumerate(answers)})
        pad = self.tok.pad_token_id
        for s in range(0, len(data), self.bs):
            chunk = data[s : s + self.bs]
            for slot in chunk[0]:
                prompts = [d[slot]["prompt"] for d in chunk]
                width = max(map(len, prompts))
                ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
                mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
                gen = self.model.generate(
                    input_ids=ids.to(self.device), attention_mask=mask.to(self.device), do_sample=False, max_new_tokens=self.max_new,
                    pad_token_id=pad, eos_token_id=self.tok.eos_token_id, use_cache=True,
                )
                texts = self.tok.batch_decode(gen[:, width:], skip_special_tokens=True)
                eos_text = self.tok.decode([self.tok.eos_token_id])
                for d, text in zip(chunk, texts):
                    gen_text = cut_at_stops(text, [eos_text])
                    truth = self.tok.decode(self.tok(d[slot]["answer"], add_special_tokens=False)["input_ids"],
                                            skip_special_tokens=True).strip()
                    res.setdefault(d[slot]["index"], []).append(
                        {**metrics.rouge_scores(gen_text, truth), "generation": gen_text}
                    )
        return res

    def run(self, splits: dict[str, list[dict]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for prefix in ("forget", "retain", "ra", "wf"):
            rows = splits[prefix]
            out[f"{prefix}_Q_A_Prob"] = self.probability(rows, "answer")
            if prefix in ("forget", "retain"):
                out[f"{prefix}_Q_A_PARA_Prob"] = self.probability(rows, "paraphrased_answer")
            out[f"{prefix}_Q_A_PERT_Prob"] = self.probability(rows, "perturbed_answer")
            out[f"{prefix}_Q_A_ROUGE"] = self.rouge(rows, "answer")
            if prefix in ("forget", "retain"):
                out[f"{prefix}_Q_A_PARA_ROUGE"] = self.rouge(rows, "paraphrased_answer")
                out[f"{prefix}_Q_A_PERT_ROUGE"] = self.rouge(rows, "perturbed_answer")
        out["extraction_strength"] = self.em_es(splits["forget"], "es")
        out["exact_memorization"] = self.em_es(splits["forget"], "em")
        for stat in ("min_k", "min_k_plus_plus", "loss", "zlib"):
            out[f"mia_{stat}"] = self.mia(splits["forget"], splits["holdout"], stat)
        return out


def _round(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(x, digits)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.float().cpu().numpy()


def _setup(args: argparse.Namespace, work: Path) -> tuple[Path, Path]:
    data = Path(args.data) if args.data else write_benchmark(work / "data", seed=0, authors=args.authors,
                                                             questions=args.questions)
    model = Path(args.model) if args.model else build_tiny_model(data, work / "model", seed=0)
    return data, model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="TOFU-style folder with holdout10 (default: a fresh embedded benchmark)")
    p.add_argument("--model", help="model folder (default: the untrained tiny model built on the data)")
    p.add_argument("--authors", type=int, default=40)
    p.add_argument("--questions", type=int, default=10)
    p.add_argument("--items", type=int, default=32, help="rows per split")
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--quick", action="store_true", help="few items and tokens (seconds)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
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
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        data, model_dir = _setup(args, Path(tmp))
        tok = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir).to(device=device, dtype=dtype).eval()
        fmt = PromptFormat()
        splits = {k: load_tofu_split(data, v)[: args.items] for k, v in SPLITS.items()}
        n_items = sum(len(v) for v in splits.values())
        anchor = Anchor(model, tok, fmt, args.batch_size, args.max_new_tokens)
        anchor.probability(splits["forget"][:2], "answer")  # warm-up (lazy initialisation)

        with PeakMemory(device) as mem_ours, FlopCounter(model) as flops_ours, timed(device) as clock:
            _, ours = evaluate_tofu(model, data, tokenizer=tok, batch_size=args.batch_size, max_items=args.items,
                                    max_new_tokens=args.max_new_tokens, fmt=fmt, progress=False, return_eval=True)
        t_ours, c_ours = clock["s"], clock["cpu_s"]
        with PeakMemory(device) as mem_anchor, FlopCounter(model) as flops_anchor, timed(device) as clock:
            ref = anchor.run(splits)
        t_anchor, c_anchor = clock["s"], clock["cpu_s"]

    ours_p = [v["prob"] for v in ours["forget_Q_A_PERT_Prob"]["value_by_index"].values()]
    ref_p = [ref["forget_Q_A_PERT_Prob"][i]["prob"] for i in range(len(ours_p))]
    gens_ours = [v["generation"] for v in ours["retain_Q_A_ROUGE"]["value_by_index"].values()]
    gens_ref = [ref["retain_Q_A_ROUGE"][i][0]["generation"] for i in range(len(gens_ours))]
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({args.threads} thread(s))",
        "dtype": str(dtype).removeprefix("torch."),
        "items": n_items,
        "max_new_tokens": args.max_new_tokens,
        "ours_s": round(t_ours, 3),
        "anchor_s": round(t_anchor, 3),
        "ours_items_per_s": round(n_items / t_ours, 2),
        "anchor_items_per_s": round(n_items / t_anchor, 2),
        "speedup": round(t_anchor / t_ours, 2),
        "ours_cpu_s": round(c_ours, 3),
        "anchor_cpu_s": round(c_anchor, 3),
        "cpu_time_ratio": round(c_anchor / c_ours, 2),
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
        "max_rel_prob_diff": float(np.max(np.abs(np.array(ours_p) / np.array(ref_p) - 1))),
        "generations_equal": gens_ours == gens_ref,
        "mia_auc_ours": {k: ours[k]["agg_value"] for k in sorted(ours) if k.startswith("mia_")},
        "mia_auc_anchor": {k: v for k, v in sorted(ref.items()) if k.startswith("mia_")},
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>20}: {v}")


if __name__ == "__main__":
    main()
