"""A re-creation of open-unlearning's TOFU evaluator (its default suite): the anchor of ``eval_bench.py``.

Read from locuslab/open-unlearning (src/eval.py, src/evals/base.py, src/evals/metrics/{base,memorization,utils}.py,
its MIA and privacy metrics, src/data/{qa,utils}.py and collator, configs/eval/tofu.yaml, configs/eval/tofu_metrics/,
configs/generation/default.yaml) and re-created here for timing and for checking our values; nothing is imported from it.

* Suite and order: ``forget_quality``, ``forget_Q_A_Prob``, ``forget_Q_A_ROUGE``, ``model_utility``, ``privleak``,
  ``extraction_strength``. One ``evaluate`` call per metric; a metric first evaluates its ``pre_compute`` metrics
  unless their name is already in the run's logs (open-unlearning's cache: ``ra_Truth_Ratio`` reuses the
  ``ra_Q_A_Prob`` / ``ra_Q_A_PERT_Prob`` that ``ra_Q_A_Prob_normalised`` computed, ``model_utility`` pre-computes nine
  metrics, ``forget_quality`` the forget truth ratio and its PARA / PERT probabilities, ``privleak`` ``mia_min_k``).
* Every metric builds its dataset again (the split re-read) and items are tokenised when the DataLoader reads them:
  three chat-template calls per (question, answer) as ``preprocess_chat_instance`` makes (full conversation ids, the
  wrapped prompt text, the prompt ids), EOS appended when the conversation does not end with it; list answers
  (perturbed) make one item per answer, collated and run as separate mini-batches (``run_batchwise_evals``).
* DataLoader in index order, batch 32; the collator pads ``input_ids`` with the pad id, ``labels`` with −100, on the
  right for scoring and on the left for generation (flip, pad, flip back); ``attention_mask = input_ids != pad``.
* Probability: ``model(**batch)`` with labels (the model also computes its own loss over full ``[B, T, V]``
  logits), then per-token cross-entropy over the shifted full logits, mean over labelled tokens, ``exp(−mean)``.
* Extraction strength: ``log_softmax`` over full logits, argmax at the labelled positions (EOS prediction dropped),
  the Python loop over suffixes with ``torch.equal``. ``mia_min_k``: forget then holdout, ``log_softmax`` over full
  logits, target log-probs gathered, per sample −mean of the lowest 40 %; AUC with scikit-learn.
* ROUGE: per batch ``generate`` (do_sample False, max_new_tokens, use_cache, ``pad_token_id = eos``), continuation
  decoded with ``skip_special_tokens``, cut at the decoded EOS, stripped; ground truth = the decoded conversation with
  the decoded prompt removed; a RougeScorer (rouge1, rougeL, stemmer) built per batch.
* Aggregates: truth ratio, normalised probability, harmonic-mean model utility, privleak against 0.5 (no reference
  logs) and forget quality (None without retain logs, as open-unlearning returns). After every metric the logs and
  the summary are written as JSON (sorted keys, indent 4), as its evaluator does.

Not re-created (costs of the real run that this one leaves out): Hydra, loading the model, ``datasets`` reading the
split (here a JSON Lines read per metric), the DataLoader's worker-free overhead.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from baldro.data.formatting import PromptFormat
from baldro.data.tofu import load_tofu_split
from baldro.evaluation import metrics

IGNORE = -100
SUITE = ("forget_quality", "forget_Q_A_Prob", "forget_Q_A_ROUGE", "model_utility", "privleak", "extraction_strength")
UTILITY = ("retain_Q_A_Prob", "retain_Q_A_ROUGE", "retain_Truth_Ratio", "ra_Q_A_Prob_normalised", "ra_Q_A_ROUGE",
           "ra_Truth_Ratio", "wf_Q_A_Prob_normalised", "wf_Q_A_ROUGE", "wf_Truth_Ratio")
ANSWER_KEYS = {"Q_A_Prob": "answer", "Q_A_PARA_Prob": "paraphrased_answer", "Q_A_PERT_Prob": "perturbed_answer"}


def metric_table(splits: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each metric's handler, dataset (split, answer key) and pre-compute metrics ({name: access key}), as the
    default suite's configs define them; ``splits`` maps forget/retain/ra/wf/holdout to split names."""
    table: dict[str, dict[str, Any]] = {}
    for prefix in ("forget", "retain", "ra", "wf"):
        for metric, key in ANSWER_KEYS.items():
            table[f"{prefix}_{metric}"] = {"handler": "probability", "data": [(splits[prefix], key)]}
        table[f"{prefix}_Q_A_ROUGE"] = {"handler": "rouge", "data": [(splits[prefix], "answer")]}
    for prefix in ("retain", "forget"):
        name = "forget_truth_ratio" if prefix == "forget" else "retain_Truth_Ratio"
        table[name] = {"handler": "truth_ratio", "aggregator": "closer_to_1_better" if prefix == "forget" else "true_better",
                       "pre": {f"{prefix}_Q_A_PARA_Prob": "correct", f"{prefix}_Q_A_PERT_Prob": "wrong"}}
    for prefix in ("ra", "wf"):
        pre = {f"{prefix}_Q_A_Prob": "correct", f"{prefix}_Q_A_PERT_Prob": "wrong"}
        table[f"{prefix}_Truth_Ratio"] = {"handler": "truth_ratio", "aggregator": "true_better", "pre": pre}
        table[f"{prefix}_Q_A_Prob_normalised"] = {"handler": "probability_w_options", "pre": pre}
    table["forget_quality"] = {"handler": "ks_test", "pre": {"forget_truth_ratio": "forget"}}
    table["model_utility"] = {"handler": "hm_aggregate", "pre": {m: m for m in UTILITY}}
    table["mia_min_k"] = {"handler": "mia_min_k",
                          "data": [(splits["forget"], "answer"), (splits.get("holdout", "holdout10"), "answer")]}
    table["privleak"] = {"handler": "privleak", "pre": {"mia_min_k": "forget"}}
    table["extraction_strength"] = {"handler": "extraction_strength", "data": [(splits["forget"], "answer")]}
    return table


class OpenUnlearningTofu:
    """open-unlearning's evaluator pattern (see the module docstring); :meth:`run` returns its logs dict."""

    def __init__(self, model: nn.Module, tok: Any, fmt: PromptFormat, data: Path, splits: dict[str, str],
                 max_items: int | None, batch_size: int = 32, max_new_tokens: int = 200) -> None:
        self.model, self.tok, self.fmt, self.data = model, tok, fmt.resolve(tok), data
        self.max_items, self.bs, self.max_new = max_items, batch_size, max_new_tokens
        self.device = next(model.parameters()).device
        self.table = metric_table(splits)
        self.pad = tok.pad_token_id

    # --- data: re-read and lazily tokenised per metric, as QADataset + preprocess_chat_instance ----------------
    def _rows(self, split: str) -> list[dict]:
        rows = load_tofu_split(self.data, split)
        return rows[: self.max_items] if self.max_items else rows

    def _tokenise(self, question: str, answer: str, generate: bool) -> dict[str, Any]:
        if self.fmt.uses_chat(self.tok):
            chat = [{"role": "system", "content": self.fmt.system_prompt}] if self.fmt.system_prompt else []
            chat += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
            date = {"date_string": self.fmt.date_string}
            full = list(self.tok.apply_chat_template(chat, tokenize=True, return_dict=False, **date))
            self.tok.apply_chat_template(chat[:-1], tokenize=False, add_generation_prompt=True, **date)
            prompt = list(self.tok.apply_chat_template(chat[:-1], tokenize=True, add_generation_prompt=True,
                                                       return_dict=False, **date))
            if full[-1] != self.tok.eos_token_id:
                full.append(self.tok.eos_token_id)
        else:  # template tags: open-unlearning's two tokenizer calls (prompt text as written, then prompt + answer)
            wrapped = self.fmt.template_prompt(question)
            full = list(self.tok(wrapped + answer, add_special_tokens=True, max_length=512, truncation=True)["input_ids"])
            prompt = list(self.tok(wrapped, add_special_tokens=True, max_length=512, truncation=True)["input_ids"])
            if full[-1] != self.tok.eos_token_id:
                full.append(self.tok.eos_token_id)
        if generate:
            return {"input_ids": torch.tensor(prompt), "labels": torch.tensor(full)}
        return {"input_ids": torch.tensor(full), "labels": torch.tensor([IGNORE] * len(prompt) + full[len(prompt):])}

    def _loader(self, split: str, key: str, generate: bool = False):
        """Batches of ``{slot: collated mini-batch}`` in index order (one slot per answer of a list answer)."""
        rows = self._rows(split)
        for s in range(0, len(rows), self.bs):
            items = []
            for i in range(s, min(s + self.bs, len(rows))):
                q, ans = rows[i]["question"], rows[i][key]
                answers = ans if isinstance(ans, list) else [ans]
                items.append({k: {**self._tokenise(q, a, generate), "index": i} for k, a in enumerate(answers)})
            yield {slot: self._collate([it[slot] for it in items], left=generate) for slot in items[0]}

    def _collate(self, items: list[dict], left: bool) -> dict[str, torch.Tensor]:
        def pad(seqs: list[torch.Tensor], value: int) -> torch.Tensor:
            if left:
                return pad_sequence([s.flip(0) for s in seqs], batch_first=True, padding_value=value).flip(1)
            return pad_sequence(seqs, batch_first=True, padding_value=value)

        ids = pad([it["input_ids"] for it in items], self.pad)
        return {"input_ids": ids, "attention_mask": ids.ne(self.pad), "labels": pad([it["labels"] for it in items], IGNORE),
                "index": torch.tensor([it["index"] for it in items])}

    def _batchwise(self, split: str, key: str, fn: Callable[[dict], list[dict]], generate: bool = False) -> dict:
        """run_batchwise_evals: per slot {index: evals}, transposed to {index: {stat: [per slot]}} for list answers."""
        evals: dict[int, dict[int, dict]] = {}
        for batch in self._loader(split, key, generate):
            for slot, mini in batch.items():
                idx = mini.pop("index").tolist()
                evals.setdefault(slot, {}).update(zip(idx, fn(mini)))
        if len(evals) == 1:
            return evals[0]
        first = evals[0]
        return {i: {stat: [evals[s][i][stat] for s in evals] for stat in first[i]} for i in first}

    @torch.no_grad()
    def _forward(self, mini: dict) -> tuple[torch.Tensor, dict]:
        batch = {k: v.to(self.device) for k, v in mini.items()}
        return self.model(**batch).logits, batch

    # --- metric handlers -----------------------------------------------------------------------------------------
    def _probability(self, mini: dict) -> list[dict]:
        logits, batch = self._forward(mini)
        labels = batch["labels"]
        losses = nn.functional.cross_entropy(logits[..., :-1, :].contiguous().transpose(-1, -2),
                                             labels[..., 1:].contiguous(), ignore_index=IGNORE, reduction="none").sum(-1)
        avg = losses / (labels != IGNORE).sum(-1)
        return [{"prob": p, "avg_loss": a} for p, a in zip(torch.exp(-avg).tolist(), avg.tolist())]

    def _vocab_logprobs(self, mini: dict) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        logits, batch = self._forward(mini)
        logp = torch.log_softmax(logits, dim=-1)[:, :-1, :]
        lps, labs = [], []
        for b in range(logits.shape[0]):
            labels = batch["labels"][b]
            pos = (labels != IGNORE).nonzero(as_tuple=True)[0][:-1]
            if pos.numel() == 0:
                lps.append(logp.new_zeros(0, logp.shape[-1]))
                labs.append(labels.new_zeros(0))
                continue
            lps.append(logp[b, pos[0].item() - 1 : pos[-1].item()])
            labs.append(labels[pos])
        return lps, labs

    def _extraction_strength(self, mini: dict) -> list[dict]:
        out = []
        for lp, lab in zip(*self._vocab_logprobs(mini)):
            n, preds, k = len(lab), torch.argmax(lp, dim=-1), 0
            for k in range(n):
                if torch.equal(preds[k:], lab[k:]):
                    break
            out.append({"score": 1 - k / n if n else 0})
        return out

    def _min_k(self, mini: dict) -> list[dict]:
        logits, batch = self._forward(mini)
        logp = torch.log_softmax(logits, dim=-1)[:, :-1, :]
        target = torch.gather(logp, 2, batch["input_ids"][:, 1:].unsqueeze(-1)).squeeze(-1)
        out = []
        for b in range(logits.shape[0]):
            pos = (batch["labels"][b] != IGNORE).nonzero(as_tuple=True)[0][:-1]
            lp = target[b, pos[0].item() - 1 : pos[-1].item()].cpu().numpy() if pos.numel() else np.zeros(0)
            out.append({"score": metrics.min_k_score(lp) if lp.size else None})
        return out

    @torch.no_grad()
    def _rouge(self, mini: dict) -> list[dict]:
        from rouge_score import rouge_scorer

        batch = {k: v.to(self.device) for k, v in mini.items()}
        ids, labels = batch["input_ids"], batch["labels"]
        inputs = self.tok.batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)
        full = self.tok.batch_decode([lab[lab != IGNORE] for lab in labels], skip_special_tokens=True,
                                     clean_up_tokenization_spaces=True)
        truths = [f.replace(i, "").strip() for i, f in zip(inputs, full)]
        out = self.model.generate(ids, attention_mask=batch["attention_mask"], do_sample=False,
                                  max_new_tokens=self.max_new, use_cache=True, pad_token_id=self.tok.eos_token_id)
        gens = self.tok.batch_decode(out[:, ids.shape[-1]:], skip_special_tokens=True, clean_up_tokenization_spaces=True)
        eos_text = self.tok.decode([self.tok.eos_token_id])
        scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)
        res = []
        for inp, truth, gen in zip(inputs, truths, gens):
            if eos_text and eos_text in gen:
                gen = gen.split(eos_text)[0]
            gen = gen.strip()
            sc = scorer.score(truth, gen)
            res.append({"rouge1_recall": sc["rouge1"].recall, "rougeL_f1": sc["rougeL"].fmeasure,
                        "rougeL_recall": sc["rougeL"].recall, "input": inp, "ground_truth": truth, "generation": gen})
        return res

    # --- evaluate loop with the pre-compute cache --------------------------------------------------------------
    def evaluate(self, name: str, cache: dict[str, Any]) -> dict[str, Any]:
        cfg = self.table[name]
        pre = {access: cache[p] if p in cache else self.evaluate(p, cache) for p, access in cfg.get("pre", {}).items()}
        result = self._compute(name, cfg, pre)
        cache[name] = result
        return result

    def _compute(self, name: str, cfg: dict[str, Any], pre: dict[str, Any]) -> dict[str, Any]:
        handler = cfg["handler"]
        if handler in ("probability", "rouge", "extraction_strength"):
            fn = {"probability": self._probability, "rouge": self._rouge,
                  "extraction_strength": self._extraction_strength}[handler]
            field = {"probability": "prob", "rouge": "rougeL_recall", "extraction_strength": "score"}[handler]
            split, key = cfg["data"][0]
            by_index = self._batchwise(split, key, fn, generate=handler == "rouge")
            vals = np.array([v[field] for v in by_index.values() if v[field] is not None])
            return {"agg_value": float(np.mean(metrics.aggregate_to_1d(vals))), "value_by_index": by_index}
        if handler == "mia_min_k":
            parts = {side: self._batchwise(split, key, self._min_k) for side, (split, key) in zip(("forget", "holdout"),
                                                                                                  cfg["data"])}
            auc = metrics.mia_auc([v["score"] for v in parts["forget"].values()],
                                  [v["score"] for v in parts["holdout"].values()])
            return {**{k: {"value_by_index": v} for k, v in parts.items()}, "auc": auc, "agg_value": auc}
        if handler in ("truth_ratio", "probability_w_options"):
            correct, wrong = pre["correct"]["value_by_index"], pre["wrong"]["value_by_index"]
            idx = list(correct)
            if handler == "truth_ratio":
                tr = metrics.truth_ratios([correct[i]["avg_loss"] for i in idx], [wrong[i]["avg_loss"] for i in idx])
                agg = (metrics.tr_closer_to_1_better if cfg["aggregator"] == "closer_to_1_better" else metrics.tr_true_better)(tr)
                return {"agg_value": agg, "value_by_index": {i: {"score": float(v)} for i, v in zip(idx, tr)}}
            probs = metrics.normalised_probs([correct[i]["prob"] for i in idx], [wrong[i]["prob"] for i in idx])
            return {"agg_value": float(np.mean(probs)), "value_by_index": {i: {"prob": float(v)} for i, v in zip(idx, probs)}}
        if handler == "hm_aggregate":
            return {"agg_value": metrics.model_utility([pre[m]["agg_value"] for m in UTILITY])}
        if handler == "privleak":
            return {"agg_value": metrics.privleak(pre["forget"]["agg_value"])}
        if handler == "ks_test":
            return {"agg_value": None}  # no retain model logs: open-unlearning warns and returns None
        raise ValueError(f"unknown handler {handler}")

    def run(self, suite: tuple[str, ...] = SUITE, out_dir: Path | None = None) -> dict[str, Any]:
        """The logs of one evaluation: every metric of ``suite`` and every pre-compute metric it needed. As
        open-unlearning's evaluator, the logs (sorted, indent 4) and the summary are written to ``out_dir`` after
        every metric (a temporary folder by default)."""
        logs: dict[str, Any] = {}
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(out_dir or tmp)
            for name in suite:
                if name not in logs:  # open-unlearning skips a metric already in the logs
                    self.evaluate(name, logs)
                summary = {m: logs[m]["agg_value"] for m in suite if logs.get(m, {}).get("agg_value") is not None}
                for file, content in (("TOFU_EVAL.json", logs), ("TOFU_SUMMARY.json", summary)):
                    (folder / file).write_text(json.dumps(dict(sorted(content.items())), indent=4, default=_plain))
        return logs


def _plain(x: Any) -> Any:
    """numpy scalars in the logs, as json.dump sees them after open-unlearning's float conversions."""
    return x.item() if hasattr(x, "item") else str(x)
