"""The default prompt format: open-unlearning's preset for the model families it has configs for (found from the chat
template), otherwise the model's chat template exactly as it ships; fields settable from configs and ``--format``.

The templates below are hand-written stand-ins that carry each family's distinctive strings (the real ones were
checked the same way, see docs/prompt-formats.md).
"""

from __future__ import annotations

import pytest
from tokenizer_helpers import CHAT_TEMPLATE, DATED_CHAT_TEMPLATE, build_tokenizer

from baldro.data.collate import QADataset
from baldro.data.formatting import PromptFormat, encode_prompt, encode_qa
from baldro.data.from_config import prompt_format
from baldro.data.prompt_formats import DEFAULT_SYSTEM_PROMPT, detect_preset, format_from_spec, format_label
from baldro.errors import ConfigError

Q = "Who wrote the novel about the river?"
A = "She wrote it in 1991 after a long journey."
# ChatML with the model's own default system prompt when none is given (SmolLM2-Instruct's behaviour)
OWN_SYSTEM = "You are a small model trained by us"
SMOL_LIKE = (
    "{% for m in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "<|im_start|>system\n" + OWN_SYSTEM + "<|im_end|>\n{% endif %}"
    "<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LLAMA3_LIKE = (
    "{{ bos_token }}<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
    "Today Date: {{ date_string | default('TODAY') }}\n\n{% if messages[0]['role'] == 'system' %}"
    "{{ messages[0]['content'] }}{% endif %}<|eot_id|>{% for m in messages %}{% if m['role'] != 'system' %}"
    "<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] }}<|eot_id|>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
LLAMA2_CHAT_LIKE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}{{ bos_token + '[INST] ' + m['content'] + ' [/INST]' }}"
    "{% elif m['role'] == 'system' %}{{ '<<SYS>>\\n' + m['content'] + '\\n<</SYS>>\\n\\n' }}"
    "{% else %}{{ ' ' + m['content'] + ' ' + eos_token }}{% endif %}{% endfor %}"
)
FAMILY_TEMPLATES = {
    "llama-2-7b-chat": LLAMA2_CHAT_LIKE,
    "llama-3.x-instruct": LLAMA3_LIKE,
    "qwen2.5-instruct": "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
    "phi-3.5-mini-instruct": "{{'<|user|>\\n' + c + '<|end|>\\n'}}{{'<|assistant|>\\n'}}{{ eos_token }}",
    "zephyr-7b-beta": "{{ '<|user|>\\n' + c + eos_token }}{{ '<|assistant|>\\n' }}",
    "gemma-7b-it": "<start_of_turn>user\n{{ c }}<end_of_turn>\n<start_of_turn>model\n",
}


def _tok(template, eos="<|im_end|>"):
    tok = build_tokenizer(template)
    tok.eos_token = eos
    return tok


@pytest.mark.parametrize("preset", sorted(FAMILY_TEMPLATES))
def test_each_open_unlearning_family_is_detected_from_its_template(preset):
    tok = type("Tok", (), {"chat_template": FAMILY_TEMPLATES[preset]})()
    assert detect_preset(tok) == preset


@pytest.mark.parametrize("template", [None, "", CHAT_TEMPLATE, SMOL_LIKE])
def test_other_templates_are_no_family(template):
    assert detect_preset(type("Tok", (), {"chat_template": template})()) is None


def test_default_is_the_models_template_as_shipped():
    tok = _tok(SMOL_LIKE)
    prompt = tok.decode(encode_prompt(tok, Q, None))
    shipped = tok.apply_chat_template([{"role": "user", "content": Q}], tokenize=False, add_generation_prompt=True)
    assert prompt == shipped == f"<|im_start|>system\n{OWN_SYSTEM}<|im_end|>\n<|im_start|>user\n{Q}<|im_end|>\n<|im_start|>assistant\n"
    assert DEFAULT_SYSTEM_PROMPT not in prompt
    assert format_label(None, tok) == "default (the tokenizer's chat template, no system prompt of ours)"
    assert QADataset([{"question": Q, "answer": A}], tok).fmt == PromptFormat(name="default")


def test_default_without_a_chat_template_is_the_plain_template_with_baldros_construction():
    # the trailing space moves to the answer (every answer word labelled, generation starts where training's answer
    # did); the 'plain' preset is open-unlearning's joint construction, whose prompt keeps the space
    tok = build_tokenizer()
    assert tok.decode(encode_prompt(tok, Q, PromptFormat.auto())) == f"Question: {Q}\nAnswer:"
    assert PromptFormat.auto().resolve(tok).tokenise == "separate"
    assert format_label(None, tok) == "default (template 'Question: {question}\\nAnswer: {answer}') [tokenise 'separate']"
    assert tok.decode(encode_prompt(tok, Q, PromptFormat.preset("plain"))) == f"Question: {Q}\nAnswer: "
    assert PromptFormat.auto(tokenise="joint").resolve(tok).tokenise == "joint"  # a field given wins


def test_a_family_template_gets_open_unlearnings_preset():
    tok = _tok(LLAMA3_LIKE, eos="</s>")
    fmt = PromptFormat.auto().resolve(tok)
    assert (fmt.system_prompt, fmt.date_string, fmt.use_chat_template) == (DEFAULT_SYSTEM_PROMPT, "10 Apr 2025", True)
    prompt = tok.decode(encode_prompt(tok, Q, None))
    assert "Today Date: 10 Apr 2025\n\nYou are a helpful assistant.<|eot_id|>" in prompt
    assert format_label(None, tok) == (
        "llama-3.x-instruct (detected from the chat template) (the tokenizer's chat template, system prompt "
        "'You are a helpful assistant.', date_string '10 Apr 2025')"
    )


def test_llama2_chat_template_gets_the_llama2_tags_not_the_template():
    tok = _tok(LLAMA2_CHAT_LIKE, eos="</s>")
    assert tok.decode(encode_prompt(tok, Q, None)) == f"[INST] {Q} [/INST]"
    enc = encode_qa(tok, Q, A, None)
    assert enc == encode_qa(tok, Q, A, PromptFormat.preset("llama-2-7b-chat"))
    assert format_label(None, tok) == "llama-2-7b-chat (detected from the chat template) (template '[INST] {question} [/INST]{answer}')"


def test_fields_given_without_a_preset_apply_over_the_detected_one():
    tok = _tok(LLAMA3_LIKE, eos="</s>")
    fmt = format_from_spec({"tokenise": "separate", "date_string": "01 Jan 2000"}).resolve(tok)
    assert (fmt.system_prompt, fmt.tokenise, fmt.date_string) == (DEFAULT_SYSTEM_PROMPT, "separate", "01 Jan 2000")
    assert fmt.name == "llama-3.x-instruct (detected from the chat template) with date_string='01 Jan 2000', tokenise='separate'"
    shipped = format_from_spec({"system_prompt": None}).resolve(tok)
    assert shipped.system_prompt is None and DEFAULT_SYSTEM_PROMPT not in tok.decode(encode_prompt(tok, Q, shipped))
    other = format_from_spec({"system_prompt": "Be brief."}).resolve(_tok(SMOL_LIKE))
    assert other.system_prompt == "Be brief." and other.name == "default with system_prompt='Be brief.'"


def test_date_string_is_recorded_only_where_the_template_reads_it_and_null_leaves_it_to_the_template():
    dated = _tok(DATED_CHAT_TEMPLATE)
    assert "date_string '10 Apr 2025'" in format_label(None, dated)
    assert "date_string" not in format_label(None, _tok(SMOL_LIKE))
    assert "Today: UNSET" in dated.decode(encode_prompt(dated, Q, PromptFormat.auto(date_string=None)))
    assert "Today: 10 Apr 2025" in dated.decode(encode_prompt(dated, Q, None))


def test_presets_do_not_detect():
    tok = _tok(LLAMA3_LIKE, eos="</s>")
    fmt = PromptFormat.preset("chat", system_prompt=None)
    assert fmt.resolve(tok) is fmt and format_label(fmt, tok).startswith("chat with system_prompt=None")
    assert format_from_spec("auto").resolve(tok).name == "llama-3.x-instruct (detected from the chat template)"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("mistral", "data.format: unknown prompt format preset 'mistral'"),
        ({"system": "x"}, "data.format: unknown prompt format field 'system': expected preset or one of system_prompt"),
        ({"use_chat_template": "yes"}, "field 'use_chat_template' must be true/false or null, got 'yes'"),
        ({"tokenise": "merged"}, "field 'tokenise' must be one of joint, separate, got 'merged'"),
        ({"preset": "chat", "trim_after_eos": 1}, "field 'trim_after_eos' must be true/false, got 1"),
        ({"template": "Q: {question}"}, "must contain '{question}' followed by exactly one '{answer}'"),
        ({"preset": 3}, "data.format: preset must be a preset name, got 3"),
        (["plain"], "data.format must be a preset name or a mapping of fields"),
    ],
)
def test_bad_format_values_are_one_clear_config_error(spec, message):
    with pytest.raises(ConfigError, match=None) as err:
        prompt_format(spec)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
