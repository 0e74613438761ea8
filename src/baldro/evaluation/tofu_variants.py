"""The answer variants of a TOFU split and their packed layout: which answers each question is scored against
(answer, paraphrased answer, each perturbed answer), and — when every variant of a question starts with the same
prompt tokens — that prompt once with each variant's answer tokens (the input of :mod:`.prefix_scoring`).
"""

from __future__ import annotations

from baldro.core.labels import IGNORE_INDEX
from baldro.evaluation.tofu_splits import Split

Encoded = tuple[list[list[int]], list[list[int]]]  # (input ids, labels) of each row


def answer_variants(split: Split) -> list[tuple[str, list[str]]]:
    """(name, answers) of each answer variant of the split: ``answer``, ``para`` (paraphrased answer, where the
    split has one), ``pert0`` … ``pert{k-1}`` (perturbed answers)."""
    variants = [("answer", [r["answer"] for r in split.rows])]
    if split.has_para:
        variants.append(("para", [r["paraphrased_answer"] for r in split.rows]))
    return variants + [(f"pert{k}", [r["perturbed_answer"][k] for r in split.rows]) for k in range(split.n_pert)]


def shared_prompts(encoded: list[Encoded]) -> tuple[list[list[int]], list[list[list[int]]]] | None:
    """(prompt of each row, its answers per variant) when every variant of a row has the same prompt tokens followed
    by labelled answer tokens only (None otherwise, e.g. when truncation shortened one variant's prompt)."""
    prompts, answers = [], []
    for r in range(len(encoded[0][0])):
        ids, labels = encoded[0][0][r], encoded[0][1][r]
        n = next((t for t, lab in enumerate(labels) if lab != IGNORE_INDEX), len(labels))
        prompt, row = ids[:n], []
        for var_ids, var_labels in encoded:
            tail = var_labels[r][n:]
            if var_ids[r][:n] != prompt or len(tail) == 0 or IGNORE_INDEX in tail or var_ids[r][n:] != tail:
                return None
            row.append(tail)
        prompts.append(prompt)
        answers.append(row)
    return prompts, answers
