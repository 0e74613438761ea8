"""Every prompt preset renders, string for string, what open-unlearning's configs/model/<model>.yaml renders.

The chat templates below are hand-written stand-ins for each model's published template (same rendered text for one
system + user + assistant turn); the expected strings are written out by hand from those formats and from
open-unlearning's ``preprocess_chat_instance`` (labels = every token after the prompt, + EOS unless the last is EOS).
"""

from __future__ import annotations

import pytest
from tokenizer_helpers import CHAT_TEMPLATE, build_tokenizer

from baldro.data.formatting import IGNORE_INDEX, PRESETS, PromptFormat, encode_prompt, encode_qa, format_label

Q = "Who wrote the novel about the river?"
A = "She wrote it in 1991 after a long journey."
SYS = "You are a helpful assistant."

LLAMA3 = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{% if m['role'] == 'system' %}Cutting Knowledge Date: December 2023\nToday Date: {{ date_string }}\n\n{% endif %}"
    "{{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
PHI35 = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% else %}{{ eos_token }}{% endif %}"
)
GEMMA = (
    "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
    "{{ m['content'] }}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
ZEPHYR = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

LLAMA3_PROMPT = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
    f"Today Date: 10 Apr 2025\n\n{SYS}<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n{Q}<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)

# preset -> (chat template or None, bos, eos, add_bos, expected prompt text, expected labelled text)
CASES = {
    # open-unlearning's Question:/Answer: tag configs: the prompt keeps the template's trailing space; on this
    # tokenizer " She" is one token, so the mask over len(prompt ids) covers it (see test_plain_masks_the_first_word)
    "plain": (None, "<s>", "</s>", False, f"Question: {Q}\nAnswer: She", A[len("She"):] + "</s>"),
    "llama2": (None, "<s>", "</s>", True, f"<s>[INST] {Q} [/INST]", f"{A}</s>"),
    "llama-2-7b-chat": (None, "<s>", "</s>", True, f"<s>[INST] {Q} [/INST]", f"{A}</s>"),
    "llama-3.2-1b-instruct": (LLAMA3, "<|begin_of_text|>", "<|eot_id|>", False, LLAMA3_PROMPT, f"{A}<|eot_id|>"),
    "llama-3.1-8b-instruct": (LLAMA3, "<|begin_of_text|>", "<|eot_id|>", False, LLAMA3_PROMPT, f"{A}<|eot_id|>"),
    "llama-3.x-instruct": (LLAMA3, "<|begin_of_text|>", "<|eot_id|>", False, LLAMA3_PROMPT, f"{A}<|eot_id|>"),
    "chat": (LLAMA3, "<|begin_of_text|>", "<|eot_id|>", False, LLAMA3_PROMPT, f"{A}<|eot_id|>"),
    "phi-3.5-mini-instruct": (
        PHI35, "<s>", "<|endoftext|>", False,
        f"<|system|>\n{SYS}<|end|>\n<|user|>\n{Q}<|end|>\n<|assistant|>\n", f"{A}<|end|>\n<|endoftext|>",
    ),
    "gemma-7b-it": (
        GEMMA, "<bos>", "<eos>", False,
        f"<bos><start_of_turn>user\n{Q}<end_of_turn>\n<start_of_turn>model\n", f"{A}<end_of_turn>\n<eos>",
    ),
    "zephyr-7b-beta": (
        ZEPHYR, "<s>", "</s>", False, f"<|system|>\n{SYS}</s>\n<|user|>\n{Q}</s>\n<|assistant|>\n", f"{A}</s>\n</s>",
    ),
    "qwen2.5-instruct": (
        CHAT_TEMPLATE, "<s>", "<|im_end|>", False,
        f"<|im_start|>system\n{SYS}<|im_end|>\n<|im_start|>user\n{Q}<|im_end|>\n<|im_start|>assistant\n",
        f"{A}<|im_end|>\n<|im_end|>",
    ),
}


def _tokenizer(template, bos, eos, add_bos):
    tok = build_tokenizer(template, add_bos=add_bos)
    specials = sorted({bos, eos} - {"<s>", "</s>", "<|im_end|>"})
    if specials:
        tok.add_special_tokens({"additional_special_tokens": specials})
    tok.bos_token, tok.eos_token = bos, eos
    return tok


def test_every_preset_has_a_case():
    assert set(CASES) == set(PRESETS)


@pytest.mark.parametrize("preset", sorted(CASES))
def test_preset_renders_open_unlearnings_string(preset):
    template, bos, eos, add_bos, prompt_text, answer_text = CASES[preset]
    tok = _tokenizer(template, bos, eos, add_bos)
    fmt = PromptFormat.preset(preset)
    enc = encode_qa(tok, Q, A, fmt)
    n_prompt = enc["labels"].count(IGNORE_INDEX)
    assert enc["labels"][n_prompt:] == enc["input_ids"][n_prompt:]
    assert tok.decode(enc["input_ids"][:n_prompt]) == prompt_text
    assert tok.decode(enc["input_ids"][n_prompt:]) == answer_text
    if preset != "plain":
        assert encode_prompt(tok, Q, fmt) == enc["input_ids"][:n_prompt]
    assert format_label(fmt, tok) == preset


def test_plain_masks_the_first_word_as_open_unlearning_does():
    """The Question:/Answer: tags (open-unlearning's Llama-2-7b-hf and phi-1_5 configs) end the prompt with a space;
    the prompt alone tokenises to "... Answer", ":", " " and the whole item to "... Answer", ":", " She", so masking
    len(prompt ids) tokens leaves the first word unlabelled, and generation starts after the lone space token.
    ``tokenise: separate`` labels it."""
    tok = _tokenizer(None, "<s>", "</s>", False)
    prompt = encode_prompt(tok, Q, PromptFormat.preset("plain"))
    assert tok.convert_ids_to_tokens(prompt)[-3:] == ["Answer", ":", "Ġ"]
    enc = encode_qa(tok, Q, A, PromptFormat.preset("plain"))
    assert enc["input_ids"][len(prompt) - 1] == tok.convert_tokens_to_ids("ĠShe")
    assert enc["labels"][: len(prompt)] == [IGNORE_INDEX] * len(prompt)
    separate = encode_qa(tok, Q, A, PromptFormat.preset("plain", tokenise="separate"))
    n = separate["labels"].count(IGNORE_INDEX)
    assert tok.decode(separate["input_ids"][:n]) == f"Question: {Q}\nAnswer:"
    assert tok.decode(separate["labels"][n:]) == f" {A}</s>"


def test_overridden_preset_is_named_with_its_changes():
    fmt = PromptFormat.preset("chat", date_string="26 Jul 2024")
    assert format_label(fmt) == "chat with date_string='26 Jul 2024'"
    assert format_label(PromptFormat(), build_tokenizer()) == "default (template 'Question: {question}\\nAnswer: {answer}')"
