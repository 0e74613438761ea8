"""Torch datasets and collators for QA training and unlearning.

* :class:`QADataset` encodes rows once (see :mod:`baldro.data.formatting`); an item carries its row ``index``.
* :class:`QACollator` pads items into tensors (labels padded with −100), on the right or the left; its
  ``pad_masking`` (:mod:`baldro.core.padmask`) masks padding positions (``position``) or, as open-unlearning's
  collator, every token equal to the pad id (``token``).
* :class:`UnlearnDataset` pairs every forget item with a retain item drawn from a generator seeded by
  (seed, epoch, forget index) — the forget row's *global* sample index, so that any number of processes trains on
  the same (forget, retain) pairs as one process (open-unlearning's ``ForgetRetainDataset`` draws with the global
  torch RNG, so the pairs depend on the process count and on every earlier draw).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from baldro.core.padmask import DEFAULT_PAD_MASKING, arange_positions, check_pad_masking, token_mask
from baldro.data.formatting import IGNORE_INDEX, PromptFormat, encode_qa_full, warn_truncations
from baldro.errors import ConfigError, DataError

Item = dict[str, Any]


class QADataset(Dataset):
    """Encoded QA rows; item = ``{"input_ids", "attention_mask", "labels", "index"}`` (python lists, int index).

    ``rows[i][question_key]`` and ``rows[i][answer_key]`` must be strings. ``fmt`` (default: ``PromptFormat.auto()``)
    is resolved for ``tokenizer`` once (``self.fmt``). Rows whose answer had to be truncated to ``max_length``, and
    rows kept longer than it, are counted and reported in one warning each.
    """

    def __init__(
        self,
        rows: list[dict],
        tokenizer: Any,
        fmt: PromptFormat | None = None,
        max_length: int = 512,
        answer_key: str = "answer",
        question_key: str = "question",
        name: str = "dataset",
    ) -> None:
        self.fmt = (fmt or PromptFormat.auto()).resolve(tokenizer)
        self.max_length = max_length
        self.items: list[Item] = []
        self.n_prompt_truncated = 0
        self.n_answer_truncated = 0
        self.n_over_length = 0
        for i, row in enumerate(rows):
            question, answer = row.get(question_key), row.get(answer_key)
            for key, value in ((question_key, question), (answer_key, answer)):
                if not isinstance(value, str):
                    raise DataError(f"{name}: row {i}: field '{key}' must be a string, got {type(value).__name__}")
            enc = encode_qa_full(tokenizer, question, answer, self.fmt, max_length)
            self.n_prompt_truncated += enc.prompt_truncated
            self.n_answer_truncated += enc.answer_truncated
            self.n_over_length += enc.over_length
            self.items.append({**enc.as_dict(), "index": i})
        warn_truncations(self.n_answer_truncated, len(rows), max_length, what=name, n_over_length=self.n_over_length)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Item:
        return self.items[i]


def _pad_value(tokenizer: Any) -> int:
    pad = getattr(tokenizer, "pad_token_id", None)
    if pad is None:
        pad = getattr(tokenizer, "eos_token_id", None)
    return int(pad) if pad is not None else 0


class QACollator:
    """Pads items to the longest in the batch: ``input_ids`` (pad token), ``attention_mask`` (0), ``labels`` (−100),
    plus ``index`` (LongTensor of row indices). ``padding_side``: "right" for training, "left" for generation.

    ``pad_masking="token"``: open-unlearning's ``DataCollatorForSupervisedDataset`` mask, ``attention_mask =
    input_ids != pad_id`` (real tokens equal to the pad id masked too), plus ``position_ids`` = ``0..T-1``, the
    positions its model call gets (no ``position_ids`` passed); see :mod:`baldro.core.padmask`."""

    def __init__(self, tokenizer: Any, padding_side: str = "right", pad_masking: str = DEFAULT_PAD_MASKING) -> None:
        if padding_side not in ("left", "right"):
            raise ConfigError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        self.pad_id = _pad_value(tokenizer)
        self.padding_side = padding_side
        self.pad_masking = check_pad_masking(pad_masking, "data.pad_masking")

    def __call__(self, items: list[Item]) -> dict[str, torch.Tensor]:
        width = max(len(it["input_ids"]) for it in items)
        fills = {"input_ids": self.pad_id, "attention_mask": 0, "labels": IGNORE_INDEX}
        out: dict[str, torch.Tensor] = {}
        for key, fill in fills.items():
            rows = []
            for it in items:
                seq = list(it[key]) if key in it else [1] * len(it["input_ids"])
                pad = [fill] * (width - len(seq))
                rows.append(pad + seq if self.padding_side == "left" else seq + pad)
            out[key] = torch.tensor(rows, dtype=torch.long)
        if self.pad_masking == "token":  # 0..T-1 on either side, as open-unlearning's model(**batch) gets them
            out["attention_mask"] = token_mask(out["input_ids"], self.pad_id)
            out["position_ids"] = arange_positions(out["input_ids"]).clone()
        out["index"] = torch.tensor([int(it["index"]) for it in items], dtype=torch.long)
        return out


class UnlearnDataset(Dataset):
    """Forget items paired with retain (and optional idk) items; the forget set defines the epoch.

    Item ``i`` = ``{"forget": forget[i], "retain": retain[j], "idk": idk[i]}`` (keys only when present) with
    ``j = draw(seed, epoch, i)`` uniform over the retain set: ``i`` is the global sample index, so the pairs do not
    depend on which process draws them. ``idk`` must be aligned with ``forget`` (same questions).
    """

    def __init__(
        self,
        forget: Dataset,
        retain: Dataset | None,
        idk: Dataset | None = None,
        seed: int = 0,
    ) -> None:
        if len(forget) == 0:
            raise DataError("the forget set is empty: nothing to unlearn")
        if retain is not None and len(retain) == 0:
            raise DataError("the retain set is empty: pass a retain split with rows or no retain set")
        if idk is not None and len(idk) != len(forget):
            raise ConfigError(f"the idk set has {len(idk)} rows but the forget set {len(forget)}: they must align")
        self.forget, self.retain, self.idk = forget, retain, idk
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.forget)

    def retain_index(self, i: int) -> int:
        """The retain row paired with forget row ``i`` in this epoch (on every process). The 0 in the generator's
        seed is where the process rank once stood: one-process runs draw the rows they always drew."""
        rng = np.random.default_rng([self.seed, 0, self.epoch, int(i)])
        return int(rng.integers(len(self.retain)))

    def __getitem__(self, i: int) -> Item:
        item: Item = {"forget": self.forget[i]}
        if self.retain is not None:
            item["retain"] = self.retain[self.retain_index(i)]
        if self.idk is not None:
            item["idk"] = self.idk[i]
        return item


class UnlearnCollator:
    """Collates each part of :class:`UnlearnDataset` items with :class:`QACollator`:
    ``{"forget": {...}, "retain": {...}, "idk": {...}}`` (parts present in the items)."""

    def __init__(self, tokenizer: Any, padding_side: str = "right", pad_masking: str = DEFAULT_PAD_MASKING) -> None:
        self.inner = QACollator(tokenizer, padding_side, pad_masking)

    def __call__(self, items: list[Item]) -> dict[str, dict[str, torch.Tensor]]:
        return {key: self.inner([it[key] for it in items]) for key in ("forget", "retain", "idk") if key in items[0]}
