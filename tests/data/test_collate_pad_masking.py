"""``pad_masking`` of the QA collators: ``token`` masks exactly the tokens equal to the pad id (open-unlearning's
``attention_mask = input_ids != pad_token_id``), ``position`` only the padding."""

from __future__ import annotations

import copy

import pytest
import torch

from baldro.data.collate import QACollator, QADataset, UnlearnCollator
from baldro.data.formatting import PromptFormat
from baldro.errors import ConfigError

ROWS = [
    {"question": "Who wrote it?", "answer": "She did."},
    {"question": "Where was he born?", "answer": "He was born in a small town by the sea."},
]


@pytest.fixture(scope="module")
def eos_pad_chat(chat_tokenizer):
    """The chat tokenizer (EOS <|im_end|> closes every turn) with pad = EOS, as open-unlearning sets it (a copy: the
    session fixture is shared)."""
    tok = copy.deepcopy(chat_tokenizer)
    tok.pad_token = tok.eos_token
    return tok


@pytest.mark.parametrize("side", ["right", "left"])
def test_token_mask_is_zero_exactly_at_pad_id_tokens(eos_pad_chat, side):
    ds = QADataset(ROWS, eos_pad_chat, PromptFormat(system_prompt="You are a helpful assistant."), 128)
    pad = eos_pad_chat.pad_token_id
    items = [ds[0], ds[1]]
    batch = QACollator(eos_pad_chat, side, pad_masking="token")(items)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert torch.equal(mask, ids.ne(pad).long())  # open-unlearning's collator, token for token
    prompt = [t for t, lab in zip(ds[0]["input_ids"], ds[0]["labels"]) if lab == -100]
    assert prompt.count(pad) == 2  # the system and user turns close with the pad token: masked although real
    assert torch.equal(batch["position_ids"], torch.arange(ids.shape[1]).expand_as(ids))
    plain = QACollator(eos_pad_chat, side)(items)
    assert "position_ids" not in plain and torch.equal(plain["input_ids"], ids)
    lengths = [len(it["input_ids"]) for it in items]
    for r, n in enumerate(lengths):  # position: ones on every real token, pad-id ones included
        real = slice(0, n) if side == "right" else slice(ids.shape[1] - n, ids.shape[1])
        assert plain["attention_mask"][r, real].tolist() == [1] * n
        assert int(plain["attention_mask"][r].sum()) == n
    assert int((plain["attention_mask"] - mask).sum()) == int(((ids == pad) & plain["attention_mask"].bool()).sum()) > 0


def test_unlearn_collator_passes_the_mode_to_every_part(eos_pad_chat):
    ds = QADataset(ROWS, eos_pad_chat, PromptFormat(system_prompt="You are a helpful assistant."), 128)
    batch = UnlearnCollator(eos_pad_chat, pad_masking="token")([{"forget": ds[0], "retain": ds[1]},
                                                                {"forget": ds[1], "retain": ds[0]}])
    for part in batch.values():
        assert torch.equal(part["attention_mask"], part["input_ids"].ne(eos_pad_chat.pad_token_id).long())


def test_bad_pad_masking_names_the_key(eos_pad_chat):
    with pytest.raises(ConfigError, match=r"^data.pad_masking 'eos' must be 'position' .* or 'token'"):
        QACollator(eos_pad_chat, pad_masking="eos")
