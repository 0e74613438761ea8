"""Prompt formatting and tokenisation of question–answer pairs.

One sample is ``prompt tokens + answer tokens + EOS``. ``labels`` equal ``input_ids`` on the answer tokens and the EOS
and are ``-100`` on the prompt (the model does the causal shift; see :mod:`baldro.core.sequence`).

* Chat template (the tokenizer has one and ``use_chat_template`` is not False): the prompt is
  ``apply_chat_template([system?, user], add_generation_prompt=True)`` and the full sample is the same conversation with
  the assistant's answer. The labelled tokens are all those after the prompt, plus EOS when the last one is not EOS,
  as open-unlearning's ``preprocess_chat_instance`` does (so a template ending ``<|im_end|>\n`` with EOS ``<|im_end|>``
  labels ``answer <|im_end|> \n <|im_end|>``); ``trim_after_eos=True`` instead stops at the first EOS (baldro before
  0.x). If a tokenizer breaks the prefix property the
  prompt and the answer are encoded separately and concatenated. A fixed ``date_string`` is passed to the template so
  results never depend on the calendar (Llama-3.x templates print today's date otherwise).
* Plain template (default ``"Question: {question}\\nAnswer: {answer}"``): the prompt is the text before ``{answer}``
  with trailing whitespace moved to the answer, so that the prompt used for generation tokenises exactly as in
  training ("Answer:" then " The…" as the model saw it).

Truncation to ``max_length`` shortens the prompt from the left first (keeping its first token, usually BOS) and only
truncates the answer when it alone does not fit; callers are told so they can warn once per dataset.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

from baldro.core.labels import IGNORE_INDEX
from baldro.errors import ConfigError

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
DEFAULT_TEMPLATE = "Question: {question}\nAnswer: {answer}"
# open-unlearning's Llama-2-7b-chat-hf config (and TOFU): user tags "[INST] " / " [/INST]", empty assistant tag, so
# no space between "[/INST]" and the answer.
LLAMA2_TEMPLATE = "[INST] {question} [/INST]{answer}"
# open-unlearning's Llama-3.x and Zephyr configs pass date_string "10 Apr 2025" to the chat template; their TOFU
# target / retain models and published retain logs were made with it.
DEFAULT_DATE_STRING = "10 Apr 2025"


@dataclass(frozen=True)
class PromptFormat:
    """How a question (and its answer) become text.

    ``template`` is used when no chat template is used; the prompt is the part before ``{answer}``.
    ``use_chat_template``: None = use the tokenizer's chat template when it has one.
    """

    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT
    template: str = DEFAULT_TEMPLATE
    date_string: str = DEFAULT_DATE_STRING
    use_chat_template: bool | None = None
    trim_after_eos: bool = False
    name: str = "default"

    def __post_init__(self) -> None:
        if self.template.count("{answer}") != 1 or "{question}" not in self.template.split("{answer}")[0]:
            raise ConfigError(
                f"prompt template {self.template!r} must contain '{{question}}' followed by exactly one '{{answer}}'"
            )

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> PromptFormat:
        """A named format (see :data:`PRESETS`); ``overrides`` replace fields and are named in ``name``."""
        if name not in PRESETS:
            raise ConfigError(f"unknown prompt format preset {name!r}: expected one of {', '.join(PRESETS)}")
        changed = {k: v for k, v in overrides.items() if k != "name"}
        if changed and "name" not in overrides:
            overrides["name"] = f"{name} with " + ", ".join(f"{k}={v!r}" for k, v in sorted(changed.items()))
        return replace(PRESETS[name], **overrides)

    def uses_chat(self, tokenizer: Any) -> bool:
        """Whether ``tokenizer`` is formatted with its chat template under this format."""
        has_template = bool(getattr(tokenizer, "chat_template", None))
        if self.use_chat_template is None:
            return has_template
        if self.use_chat_template and not has_template:
            raise ConfigError(
                "the prompt format asks for a chat template but the tokenizer has none: "
                "use the 'plain' or 'llama2' preset (use_chat_template: false)"
            )
        return self.use_chat_template

    def split_template(self, question: str) -> tuple[str, str]:
        """(prompt text, separator) for the plain template; the separator is the whitespace before the answer."""
        before = self.template.split("{answer}")[0].replace("{question}", question)
        prompt = before.rstrip()
        return prompt, before[len(prompt) :]


_CHAT_SYSTEM = {"use_chat_template": True, "system_prompt": DEFAULT_SYSTEM_PROMPT}
# Each open-unlearning configs/model/<model>.yaml ``template_args`` as a preset (all are chat-template configs except
# Llama-2-7b-chat, whose tags are the llama2 template). Gemma's config has no system prompt (its template rejects one).
PRESETS: dict[str, PromptFormat] = {
    "plain": PromptFormat(template=DEFAULT_TEMPLATE, use_chat_template=False, name="plain"),
    "llama2": PromptFormat(template=LLAMA2_TEMPLATE, use_chat_template=False, system_prompt=None, name="llama2"),
    "chat": PromptFormat(use_chat_template=True, name="chat"),
    "llama-2-7b-chat": PromptFormat(
        template=LLAMA2_TEMPLATE, use_chat_template=False, system_prompt=None, name="llama-2-7b-chat"
    ),
    "llama-3.2-1b-instruct": PromptFormat(**_CHAT_SYSTEM, name="llama-3.2-1b-instruct"),
    "llama-3.1-8b-instruct": PromptFormat(**_CHAT_SYSTEM, name="llama-3.1-8b-instruct"),
    "phi-3.5-mini-instruct": PromptFormat(**_CHAT_SYSTEM, name="phi-3.5-mini-instruct"),
    "gemma-7b-it": PromptFormat(use_chat_template=True, system_prompt=None, name="gemma-7b-it"),
    "zephyr-7b-beta": PromptFormat(**_CHAT_SYSTEM, name="zephyr-7b-beta"),
    "qwen2.5-instruct": PromptFormat(**_CHAT_SYSTEM, name="qwen2.5-instruct"),
}


def format_label(fmt: PromptFormat | None, tokenizer: Any = None) -> str:
    """The name written into eval files: the preset's name, or for ``default``/``custom`` formats how they resolved."""
    fmt = fmt or PromptFormat()
    if fmt.name not in ("default", "custom"):
        return fmt.name
    if tokenizer is not None and fmt.uses_chat(tokenizer):
        return f"{fmt.name} (chat template, system prompt {fmt.system_prompt!r}, date_string {fmt.date_string!r})"
    return f"{fmt.name} (template {fmt.template!r})"


@dataclass
class Encoded:
    """An encoded sample plus what truncation did to it."""

    input_ids: list[int]
    labels: list[int]
    prompt_truncated: bool = False
    answer_truncated: bool = False

    def as_dict(self) -> dict[str, list[int]]:
        return {"input_ids": self.input_ids, "attention_mask": [1] * len(self.input_ids), "labels": self.labels}


def _eos_id(tokenizer: Any) -> int:
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        raise ConfigError("the tokenizer has no EOS token: set tokenizer.eos_token (labels end with EOS)")
    return int(eos)


def _ids(tokenizer: Any, text: str, add_special_tokens: bool) -> list[int]:
    return list(tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])


def _render_chat(tokenizer: Any, question: str, fmt: PromptFormat, answer: str | None) -> str:
    """The chat-template text of [system?, user(question)] (+ assistant(answer) or the generation prompt)."""

    def render(messages: list[dict[str, str]]) -> str:
        if answer is not None:
            messages = [*messages, {"role": "assistant", "content": answer}]
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=answer is None, date_string=fmt.date_string
        )

    user = {"role": "user", "content": question}
    if not fmt.system_prompt:
        return render([user])
    try:
        return render([{"role": "system", "content": fmt.system_prompt}, user])
    except Exception:  # noqa: BLE001 - some templates (e.g. Gemma) reject a system role: fold it into the user turn
        return render([{"role": "user", "content": f"{fmt.system_prompt}\n\n{question}"}])


def _prompt_text(tokenizer: Any, question: str, fmt: PromptFormat) -> tuple[str, bool]:
    """(text, add_special_tokens) of the prompt (chat: with the generation prompt)."""
    if fmt.uses_chat(tokenizer):
        return _render_chat(tokenizer, question, fmt, None), False
    return fmt.split_template(question)[0], True


def _full_text(tokenizer: Any, question: str, answer: str, fmt: PromptFormat) -> tuple[str, bool, str]:
    """(text, add_special_tokens, the answer text encoded alone when the prefix property fails) of a QA pair."""
    if fmt.uses_chat(tokenizer):
        return _render_chat(tokenizer, question, fmt, answer), False, answer
    prompt_text, sep = fmt.split_template(question)
    return prompt_text + sep + answer, True, sep + answer


def cut_prompt(ids: list[int], max_length: int | None) -> list[int]:
    """A prompt shortened from the left to ``max_length`` tokens (None: as it is), keeping its first token."""
    if max_length is not None and len(ids) > max_length:
        ids = ids[:1] + ids[len(ids) - max_length + 1 :]
    return ids


def encode_prompt(tokenizer: Any, question: str, fmt: PromptFormat, max_length: int | None = None) -> list[int]:
    """The prompt tokens only, ready for generation (chat: with the generation prompt).

    With ``max_length`` the prompt is shortened from the left, keeping its first token.
    """
    return cut_prompt(_ids(tokenizer, *_prompt_text(tokenizer, question, fmt)), max_length)


def _answer_tail(
    tokenizer: Any, prompt: list[int], full: list[int], fallback_answer: str, fmt: PromptFormat, eos: int
) -> list[int]:
    """The answer ids ending with EOS: the full encoding after the prompt when it starts with the prompt (the prefix
    property), else the answer encoded alone plus EOS."""
    if len(full) > len(prompt) and full[: len(prompt)] == prompt:
        tail = full[len(prompt) :]
        if fmt.trim_after_eos and eos in tail:
            tail = tail[: tail.index(eos) + 1]
        elif tail[-1] != eos:
            tail = [*tail, eos]
        return tail
    return [*_ids(tokenizer, fallback_answer, add_special_tokens=False), eos]


def _split_prompt_answer(tokenizer: Any, question: str, answer: str, fmt: PromptFormat) -> tuple[list[int], list[int]]:
    """(prompt ids, answer ids ending with EOS), using the prefix property when the tokenizer keeps it."""
    eos = _eos_id(tokenizer)
    prompt = encode_prompt(tokenizer, question, fmt)
    text, special, fallback = _full_text(tokenizer, question, answer, fmt)
    return prompt, _answer_tail(tokenizer, prompt, _ids(tokenizer, text, special), fallback, fmt, eos)


def _fit(prompt: list[int], ans: list[int], max_length: int) -> Encoded:
    """The sample ``prompt + ans`` cut to ``max_length`` (prompt from the left first, see the module docstring)."""
    if max_length < 2:
        raise ConfigError(f"max_length must be at least 2, got {max_length}")
    out = Encoded(input_ids=[], labels=[])
    if len(prompt) + len(ans) > max_length:
        keep = max(max_length - len(ans), 1)
        if keep < len(prompt):
            prompt = prompt[:1] + prompt[len(prompt) - keep + 1 :]
            out.prompt_truncated = True
        if len(prompt) + len(ans) > max_length:
            ans = ans[: max_length - len(prompt)]
            out.answer_truncated = True
    out.input_ids = prompt + ans
    out.labels = [IGNORE_INDEX] * len(prompt) + ans
    return out


def encode_qa_full(tokenizer: Any, question: str, answer: str, fmt: PromptFormat, max_length: int = 512) -> Encoded:
    """Encode one QA pair and report truncation (see :func:`encode_qa`)."""
    if max_length < 2:
        raise ConfigError(f"max_length must be at least 2, got {max_length}")
    return _fit(*_split_prompt_answer(tokenizer, question, answer, fmt), max_length)


def _batch_ids(tokenizer: Any, texts: list[str], add_special_tokens: bool) -> list[list[int]]:
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=add_special_tokens)["input_ids"]] if texts else []


def encode_qa_many(
    tokenizer: Any, pairs: list[tuple[str, str]], fmt: PromptFormat, max_length: int = 512
) -> tuple[list[Encoded], dict[str, list[int]]]:
    """:func:`encode_qa_full` of every (question, answer) pair — the same ids — and :func:`encode_prompt` of every
    distinct question, with each distinct prompt rendered once and all texts tokenised in two batched calls (the
    tokenizer's batch encoding gives each text the ids it gets alone)."""
    if max_length < 2:
        raise ConfigError(f"max_length must be at least 2, got {max_length}")
    eos = _eos_id(tokenizer)
    questions = list(dict.fromkeys(q for q, _ in pairs))
    prompt_texts = [_prompt_text(tokenizer, q, fmt) for q in questions]
    full_texts = [_full_text(tokenizer, q, a, fmt) for q, a in pairs]
    special = prompt_texts[0][1] if prompt_texts else False
    prompts = dict(zip(questions, _batch_ids(tokenizer, [t for t, _ in prompt_texts], special)))
    fulls = _batch_ids(tokenizer, [t for t, _, _ in full_texts], special)
    out = []
    for (q, _), full, (_, _, fallback) in zip(pairs, fulls, full_texts):
        out.append(_fit(prompts[q], _answer_tail(tokenizer, prompts[q], full, fallback, fmt, eos), max_length))
    return out, prompts


def encode_qa(
    tokenizer: Any, question: str, answer: str, fmt: PromptFormat, max_length: int = 512, warn: bool = True
) -> dict[str, list[int]]:
    """``{"input_ids", "attention_mask", "labels"}`` as python lists for one QA pair.

    labels = answer tokens + EOS, −100 on the prompt. Sequences longer than ``max_length`` lose prompt tokens first;
    an answer that alone does not fit is truncated (with a warning when ``warn``).
    """
    enc = encode_qa_full(tokenizer, question, answer, fmt, max_length)
    if warn and enc.answer_truncated:
        warn_truncations(1, 1, max_length)
    return enc.as_dict()


def warn_truncations(n_answer_truncated: int, n_rows: int, max_length: int, what: str = "dataset") -> None:
    """One warning saying how many rows had their answer truncated (nothing when there are none)."""
    if n_answer_truncated:
        warnings.warn(
            f"{what}: {n_answer_truncated} of {n_rows} rows have an answer longer than max_length={max_length} "
            "tokens and were truncated; raise max_length to keep whole answers",
            UserWarning,
            stacklevel=2,
        )
