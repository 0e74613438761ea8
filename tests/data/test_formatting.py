"""Prompt formatting and label masks: the labels cover exactly the answer (+ EOS), the prompt is -100.

Tests of the ``separate`` construction (baldro's earlier one: the prompt ends where the answer starts, every answer
token labelled, prompts shortened from the left) name it; the default ``joint`` construction is checked token for
token against open-unlearning's in test_ou_items.py.
"""

from __future__ import annotations

import warnings

import pytest
from tokenizer_helpers import CHAT_TEMPLATE, DATED_CHAT_TEMPLATE, MISMATCHED_CHAT_TEMPLATE, build_tokenizer

from baldro.data.formatting import IGNORE_INDEX, PromptFormat, encode_prompt, encode_qa, encode_qa_full, encode_qa_many
from baldro.data.tofu import load_tofu_split
from baldro.errors import ConfigError

SEPARATE = "separate"
Q = "Who wrote the novel about the river?"
A = "She wrote it in 1991 after a long journey."


def split_labels(enc: dict) -> tuple[list[int], list[int]]:
    """(prompt ids, answer ids) from an encoding, checking that -100 forms one prefix."""
    n_prompt = sum(1 for x in enc["labels"] if x == IGNORE_INDEX)
    assert all(x == IGNORE_INDEX for x in enc["labels"][:n_prompt])
    assert enc["labels"][n_prompt:] == enc["input_ids"][n_prompt:]
    assert len(enc["input_ids"]) == len(enc["labels"]) == len(enc["attention_mask"])
    return enc["input_ids"][:n_prompt], enc["input_ids"][n_prompt:]


@pytest.mark.parametrize(
    ("preset", "prompt_text", "sep"),
    [("plain", f"Question: {Q}\nAnswer:", " "), ("llama2", f"[INST] {Q} [/INST]", "")],
)
def test_plain_templates_mask_exactly_the_prompt(plain_tokenizer, preset, prompt_text, sep):
    fmt = PromptFormat.preset(preset, tokenise=SEPARATE)
    enc = encode_qa(plain_tokenizer, Q, A, fmt)
    prompt, answer = split_labels(enc)
    assert plain_tokenizer.decode(prompt) == prompt_text
    assert answer[-1] == plain_tokenizer.eos_token_id
    assert plain_tokenizer.decode(answer[:-1]) == sep + A
    assert encode_prompt(plain_tokenizer, Q, fmt) == prompt


def test_chat_template_masks_exactly_the_prompt(chat_tokenizer):
    fmt = PromptFormat(system_prompt="You are a helpful assistant.")
    enc = encode_qa(chat_tokenizer, Q, A, fmt)
    prompt, answer = split_labels(enc)
    expected_prompt = (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        f"<|im_start|>user\n{Q}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert chat_tokenizer.decode(prompt) == expected_prompt
    # open-unlearning labels every template token after the prompt and appends EOS when the last one is not EOS
    assert chat_tokenizer.decode(answer) == A + "<|im_end|>\n<|im_end|>"
    assert answer[-1] == chat_tokenizer.eos_token_id
    assert encode_prompt(chat_tokenizer, Q, fmt) == prompt
    trimmed = encode_qa(chat_tokenizer, Q, A, PromptFormat(system_prompt="You are a helpful assistant.", trim_after_eos=True))
    assert chat_tokenizer.decode(split_labels(trimmed)[1]) == A + "<|im_end|>"


def test_chat_without_system_prompt(chat_tokenizer):
    enc = encode_qa(chat_tokenizer, Q, A, PromptFormat(system_prompt=None))
    prompt, _ = split_labels(enc)
    assert chat_tokenizer.decode(prompt) == f"<|im_start|>user\n{Q}<|im_end|>\n<|im_start|>assistant\n"


def test_chat_template_appends_eos_when_template_has_none():
    tok = build_tokenizer(CHAT_TEMPLATE)  # EOS is </s>, which the template never writes
    enc = encode_qa(tok, Q, A, PromptFormat())
    _, answer = split_labels(enc)
    assert answer[-1] == tok.eos_token_id
    assert tok.decode(answer[:-1]).startswith(A)


def test_fixed_date_string_reaches_the_template():
    tok = build_tokenizer(DATED_CHAT_TEMPLATE)
    prompt = tok.decode(encode_prompt(tok, Q, PromptFormat(date_string="01 Jan 2000")))
    assert "Today: 01 Jan 2000" in prompt
    default = tok.decode(encode_prompt(tok, Q, PromptFormat()))
    assert f"Today: {PromptFormat().date_string}" in default


def test_use_chat_template_switch(chat_tokenizer, plain_tokenizer):
    plain = encode_prompt(chat_tokenizer, Q, PromptFormat(use_chat_template=False))
    assert chat_tokenizer.decode(plain) == f"Question: {Q}\nAnswer: "  # joint: the template's text as written
    plain = encode_prompt(chat_tokenizer, Q, PromptFormat(use_chat_template=False, tokenise=SEPARATE))
    assert chat_tokenizer.decode(plain) == f"Question: {Q}\nAnswer:"  # separate: the space goes with the answer
    with pytest.raises(ConfigError, match="chat template"):
        encode_prompt(plain_tokenizer, Q, PromptFormat.preset("chat"))


def test_bad_template_and_preset_are_config_errors():
    with pytest.raises(ConfigError, match="answer"):
        PromptFormat(template="Q: {question}")
    with pytest.raises(ConfigError, match="preset"):
        PromptFormat.preset("mistral")


def test_long_prompt_is_shortened_first(plain_tokenizer):
    fmt = PromptFormat.preset("plain", tokenise=SEPARATE)
    full = encode_qa(plain_tokenizer, Q * 5, A, fmt, max_length=4096)
    _, answer = split_labels(full)
    limit = len(answer) + 4
    enc = encode_qa_full(plain_tokenizer, Q * 5, A, fmt, max_length=limit)
    assert enc.prompt_truncated and not enc.answer_truncated
    assert len(enc.input_ids) == limit
    assert enc.input_ids[-len(answer) :] == answer
    assert enc.labels[-len(answer) :] == answer
    assert enc.input_ids[:1] == full["input_ids"][:1]


def test_answer_alone_too_long_is_truncated_and_warned(plain_tokenizer):
    fmt = PromptFormat.preset("plain", tokenise=SEPARATE)
    with pytest.warns(UserWarning, match="1 of 1 rows"):
        enc = encode_qa(plain_tokenizer, Q, A * 4, fmt, max_length=12)
    assert len(enc["input_ids"]) == 12
    assert sum(x != IGNORE_INDEX for x in enc["labels"]) == 11
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encode_qa(plain_tokenizer, Q, A, fmt, max_length=512)


def test_real_tofu_rows_mask_exactly_the_prompt(tofu_dir, chat_tokenizer):
    rows = load_tofu_split(tofu_dir, "forget10")[:25]
    fmt = PromptFormat()
    for row in rows:
        enc = encode_qa(chat_tokenizer, row["question"], row["answer"], fmt, max_length=4096)
        prompt, answer = split_labels(enc)
        assert chat_tokenizer.decode(answer) == row["answer"] + "<|im_end|>\n<|im_end|>"
        assert chat_tokenizer.decode(prompt).endswith(f"{row['question']}<|im_end|>\n<|im_start|>assistant\n")


def test_bos_tokenizer_keeps_bos_on_the_prompt_and_when_shortening():
    tok = build_tokenizer(add_bos=True)
    fmt = PromptFormat.preset("plain", tokenise=SEPARATE)
    enc = encode_qa(tok, Q, A, fmt)
    prompt, answer = split_labels(enc)
    assert prompt[0] == tok.bos_token_id
    assert tok.decode(prompt, skip_special_tokens=True) == f"Question: {Q}\nAnswer:"
    assert tok.decode(answer[:-1]) == " " + A
    short = encode_qa_full(tok, Q * 4, A, fmt, max_length=len(answer) + 3)
    assert short.prompt_truncated and short.input_ids[0] == tok.bos_token_id


def test_prefix_property_broken_falls_back_to_separate_encoding():
    tok = build_tokenizer(MISMATCHED_CHAT_TEMPLATE)
    fmt = PromptFormat(system_prompt=None, tokenise=SEPARATE)
    enc = encode_qa(tok, Q, A, fmt)
    prompt, answer = split_labels(enc)
    assert prompt == encode_prompt(tok, Q, fmt)
    assert tok.decode(prompt).endswith("<|im_start|>assistant\n")
    assert answer[-1] == tok.eos_token_id
    assert tok.decode(answer[:-1]) == A


@pytest.mark.parametrize("tokenise", ["joint", SEPARATE])
@pytest.mark.parametrize("template", [None, CHAT_TEMPLATE, MISMATCHED_CHAT_TEMPLATE])
@pytest.mark.parametrize("preset", ["plain", "llama2", "chat"])
def test_encode_qa_many_gives_the_ids_of_one_pair_at_a_time(template, preset, tokenise):
    tok = build_tokenizer(template, add_bos=template is None)
    system = {"system_prompt": None} if template == MISMATCHED_CHAT_TEMPLATE else {}
    fmt = PromptFormat.preset(preset, tokenise=tokenise, **system)
    if preset == "chat" and template is None:
        fmt = PromptFormat(tokenise=tokenise)  # no chat template: the plain default
    questions = [Q, "And the second book?", Q * 6]
    answers = [A, "A shorter one.", A * 12, ""]
    pairs = [(q, a) for a in answers for q in questions]
    chat = fmt.uses_chat(tok)
    for max_length in (512, 40):
        got, prompts = encode_qa_many(tok, pairs, fmt, max_length)
        want = [encode_qa_full(tok, q, a, fmt, max_length) for q, a in pairs]
        assert got == want
        # separate shortens prompts; joint lets the tokenizer cut plain-template items and keeps chat items whole
        cut = [e.over_length if chat and tokenise == "joint" else e.prompt_truncated for e in want]
        assert any(cut) == (max_length == 40)
        assert list(prompts) == questions
        assert all(prompts[q] == encode_prompt(tok, q, fmt, max_length) for q in questions)
    assert encode_qa_many(tok, [], fmt) == ([], {})
    with pytest.raises(ConfigError, match="max_length"):
        encode_qa_many(tok, pairs, fmt, max_length=1)
