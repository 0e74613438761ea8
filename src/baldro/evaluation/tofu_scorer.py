"""The model-facing side of a TOFU evaluation: :class:`TofuScorer` tokenises each split once, scores each question's
answer variants (:mod:`.tofu_variants`) in packed forward passes that yield probability, truth-ratio inputs, Min-K%
and greedy-match statistics together (:mod:`.tree_scoring`, :mod:`.prefix_scoring`), and answers every question once
by greedy generation, the questions of all splits decoded together (``generation_batch_size`` a batch), the answer
tokens its greedy hits predict drafted rather than decoded (:mod:`.answer_drafts`).
"""

from __future__ import annotations

import warnings
from typing import Any

from baldro.core.padmask import DEFAULT_PAD_MASKING, check_pad_masking
from baldro.data.formatting import PromptFormat, encode_prompt, encode_qa_many
from baldro.evaluation.answer_drafts import answer_draft
from baldro.evaluation.generation import generate_greedy
from baldro.evaluation.prefix_scoring import score_prefixed, supports_prefix_scoring
from baldro.evaluation.scoring import SeqScore, score_sequences
from baldro.evaluation.tofu_splits import Split
from baldro.evaluation.tofu_variants import answer_variants, shared_prompts

GENERATION_BATCH_FACTOR = 4


class TofuScorer:
    """Scores and generates for one TOFU evaluation of a loaded model: tokenises each split once, scores its answer
    variants, generates greedy answers (see :func:`baldro.evaluation.tofu.evaluate_tofu`)."""

    def __init__(self, model, tokenizer, pad_id, fmt, batch_size, max_new_tokens, max_length, progress,
                 generation_batch_size=None, pad_masking=DEFAULT_PAD_MASKING, draft_answers=True):
        self.model, self.tok, self.pad_id = model, tokenizer, pad_id
        self.fmt = (fmt or PromptFormat.auto()).resolve(tokenizer)
        self.draft_answers = draft_answers
        self.pad_masking = check_pad_masking(pad_masking)
        self.batch_size, self.max_new_tokens, self.max_length, self.progress = (
            batch_size, max_new_tokens, max_length, progress,
        )
        self.generation_batch_size = generation_batch_size or GENERATION_BATCH_FACTOR * batch_size
        self.encoded: dict[tuple[str, str], Any] = {}  # (split name, what) -> token ids: reused by later calls
        self.generations: dict[str, list[str]] = {}  # split name -> greedy generations (generate_splits)

    def encode(self, split: Split, answers: list[str], what: str) -> tuple[list[list[int]], list[list[int]]]:
        """(input ids, labels) of each (question, answer), tokenised once per (split, what) and then reused."""
        if (split.name, what) not in self.encoded:
            self.encode_variants(split, [(what, answers)])
        return self.encoded[(split.name, what)]

    def encode_variants(self, split: Split, variants: list[tuple[str, list[str]]]) -> None:
        """Tokenise several answer variants of the split at once (:func:`encode_qa_many`: each question's prompt
        rendered once, batched tokenizer calls); the questions' generation prompts come with them."""
        if not variants:
            return
        questions = [r["question"] for r in split.rows]
        pairs = [(q, a) for _, answers in variants for q, a in zip(questions, answers)]
        encoded, prompts = encode_qa_many(self.tok, pairs, self.fmt, self.max_length)
        for v, (what, _) in enumerate(variants):
            part = encoded[v * len(questions) : (v + 1) * len(questions)]
            truncated = sum(enc.answer_truncated for enc in part)
            if truncated:
                warnings.warn(
                    f"{split.name} ({what}): {truncated} answers longer than max_length={self.max_length} were truncated",
                    stacklevel=3,
                )
            long = sum(enc.over_length for enc in part)
            if long:
                warnings.warn(
                    f"{split.name} ({what}): {long} items longer than max_length={self.max_length} were kept whole "
                    "(open-unlearning does not truncate chat-template items)",
                    stacklevel=3,
                )
            self.encoded[(split.name, what)] = ([e.input_ids for e in part], [e.labels for e in part])
        self.encoded.setdefault((split.name, "prompts"), [prompts[q] for q in questions])

    def score(self, split: Split, answers: list[str], what: str) -> tuple[list[SeqScore], list[list[int]]]:
        """(scores, labels) of one answer per question: from the packed / cached-prompt path where it applies."""
        ids, labels = self.encode(split, answers, what)
        shared = shared_prompts([(ids, labels)]) if self._fast_scoring() else None
        if shared is not None:
            rows = score_prefixed(self.model, *shared, self.pad_id, self.batch_size, f"{split.name}: scoring",
                                  self.progress)
            return [row[0] for row in rows], labels
        scores = score_sequences(
            self.model, ids, labels, self.pad_id, self.batch_size, f"{split.name}: scoring", self.progress,
            self.pad_masking,
        )
        return scores, labels

    def _fast_scoring(self) -> bool:
        """Whether the packed-tree / cached-prompt paths apply: the model supports them and padding is masked by
        position (``pad_masking: token`` takes full-sequence passes with open-unlearning's mask)."""
        return self.pad_masking == "position" and supports_prefix_scoring(self.model)

    def score_split(self, split: Split) -> dict[str, Any]:
        """All answer variants of a split: each question's prompt once, its variants as a prefix tree or from its
        cache (:func:`.prefix_scoring.score_prefixed`); one pass over all (question, variant) sequences where the
        variants' prompts differ (truncation) or the model allows neither."""
        variants = answer_variants(split)
        self.encode_variants(split, [(name, answers) for name, answers in variants
                                     if (split.name, name) not in self.encoded])
        encoded = [self.encode(split, answers, name) for name, answers in variants]
        out: dict[str, Any] = {"labels": {name: enc[1] for (name, _), enc in zip(variants, encoded)},
                               "ids": {name: enc[0] for (name, _), enc in zip(variants, encoded)}}
        shared = shared_prompts(encoded) if self._fast_scoring() else None
        if shared is not None:
            prompts, answers = shared
            # Min-K%++ needs the vocabulary moments of the forget answers only (members; holdout: :meth:`score`)
            moments = [split.prefix == "forget" and name == "answer" for name, _ in variants]
            scores = score_prefixed(self.model, prompts, answers, self.pad_id, self.batch_size,
                                    f"{split.name}: scoring", self.progress, moments=moments)
            for v, (name, _) in enumerate(variants):
                out[name] = [row[v] for row in scores]
            return out
        ids = [i for enc in encoded for i in enc[0]]
        labels = [lab for enc in encoded for lab in enc[1]]
        flat = score_sequences(self.model, ids, labels, self.pad_id, self.batch_size, f"{split.name}: scoring",
                               self.progress, self.pad_masking)
        n = len(split.rows)
        for j, (name, _) in enumerate(variants):
            out[name] = flat[j * n : (j + 1) * n]
        return out

    def prompts(self, split: Split) -> list[list[int]]:
        """The generation prompt of each question of the split (tokenised once)."""
        key = (split.name, "prompts")
        if key not in self.encoded:  # with every answer variant of the split (one batched tokenisation)
            self.encode_variants(split, [(n, a) for n, a in answer_variants(split) if (split.name, n) not in self.encoded])
        if key not in self.encoded:
            self.encoded[key] = [encode_prompt(self.tok, r["question"], self.fmt, self.max_length) for r in split.rows]
        return self.encoded[key]

    def generate_splits(self, splits: list[Split], answer_scores: list[list[SeqScore]] | None = None) -> None:
        """Greedy generations of every question of ``splits`` in one pass (batches of ``generation_batch_size``
        questions of similar prompt length, whatever their split), kept for :meth:`generate`. With each split's
        answer scores (``answer_scores``) and ``draft_answers``, the answer tokens their greedy hits predict are
        drafted (and verified) rather than decoded (:mod:`.answer_drafts`)."""
        prompts = [self.prompts(split) for split in splits]
        drafts = None
        if self.draft_answers and answer_scores is not None:
            drafts = [d for split, scores in zip(splits, answer_scores) for d in self.drafts(split, scores)]
        gens = generate_greedy(
            self.model, self.tok, [p for part in prompts for p in part], self.max_new_tokens, self.pad_id,
            self.generation_batch_size, desc="generating", progress=self.progress, pad_masking=self.pad_masking,
            drafts=drafts,
        )
        start = 0
        for split, part in zip(splits, prompts):
            self.generations[split.name] = gens[start : start + len(part)]
            start += len(part)

    def drafts(self, split: Split, scores: list[SeqScore]) -> list[list[int]]:
        """Each question's draft: the leading tokens of its answer that ``scores`` (the answer's) mark as hits."""
        ids, labels = self.encode(split, [r["answer"] for r in split.rows], "answer")
        return [answer_draft(p, i, lab, s.hits) for p, i, lab, s in zip(self.prompts(split), ids, labels, scores)]

    def generate(self, split: Split) -> tuple[list[str], list[str]]:
        """(decoded prompts, greedy generations) of the split's questions (from :meth:`generate_splits` when it ran)."""
        if split.name not in self.generations:
            self.generate_splits([split])
        prompts = self.prompts(split)
        return [self.decode(p) for p in prompts], self.generations[split.name]

    def decode(self, ids: list[int]) -> str:
        """Token ids as text, as open-unlearning decodes prompts and items (special tokens skipped)."""
        return self.tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)
