"""Tokenisation of question–answer pairs into training / scoring items and generation prompts.

An item is ``input_ids`` with ``labels`` equal to them on the answer part (ending with EOS) and ``-100`` on the prompt
(the model does the causal shift; see :mod:`baldro.core.sequence`). The format (chat template or plain template,
system prompt, …) is a :class:`~baldro.data.prompt_formats.PromptFormat`; its ``tokenise`` field picks the
construction:

* ``joint`` (default) — open-unlearning's ``preprocess_chat_instance`` (``src/data/utils.py``), token for token. The
  whole text (prompt + answer) is tokenised in one call and the first ``len(prompt ids)`` labels are ``-100``, where
  the prompt ids are the prompt text tokenised alone; EOS is appended when the last token is not EOS. Chat template:
  the conversation and the conversation up to the generation prompt, rendered and tokenised without added special
  tokens, never truncated. Plain template: the text before ``{answer}`` *as written* (trailing whitespace included)
  is the prompt; both texts are tokenised with the tokenizer's special tokens (BOS) and ``truncation=True,
  max_length`` — the tokenizer cuts them, then EOS is appended. Where the tokenizer merges across the boundary
  (Llama-2: ``[/INST]`` + ``"The`` gives ``]"``) the merged token sits under the mask and the answer's labels start
  after it; with a template ending in a space (``Answer: ``) the first answer word is masked the same way. The
  generation prompt is the prompt ids (what open-unlearning generates from).
* ``separate`` — baldro's earlier construction: the prompt is the text before ``{answer}`` with trailing whitespace
  moved to the answer, the answer's tokens are the whole text's tokens after the prompt when the whole text starts
  with the prompt's tokens (the prefix property) and the answer tokenised alone otherwise, so every answer token is
  labelled and the prompt always ends where the answer starts; too long items lose prompt tokens from the left
  (keeping the first) and then answer tokens. It reproduces runs made before ``joint`` became the default.

For both, chat-template labels are every token after the prompt plus EOS when the last is not EOS (a template ending
``<|im_end|>\\n`` with EOS ``<|im_end|>`` labels ``answer <|im_end|> \\n <|im_end|>``); ``trim_after_eos=True`` stops
at the first EOS instead. Formats made by ``PromptFormat.auto`` (the default) resolve per tokenizer first.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from baldro.core.labels import IGNORE_INDEX
from baldro.data.prompt_formats import (  # noqa: F401 - re-exported: the formats' home used to be this module
    DEFAULT_DATE_STRING,
    DEFAULT_SYSTEM_PROMPT,
    DEFAULT_TEMPLATE,
    LLAMA2_TEMPLATE,
    PRESETS,
    PromptFormat,
    detect_preset,
    format_from_spec,
    format_label,
)
from baldro.errors import ConfigError


@dataclass
class Encoded:
    """An encoded sample plus what truncation did to it (``over_length``: longer than ``max_length`` and kept whole,
    as open-unlearning keeps chat-template items)."""

    input_ids: list[int]
    labels: list[int]
    prompt_truncated: bool = False
    answer_truncated: bool = False
    over_length: bool = False

    def as_dict(self) -> dict[str, list[int]]:
        return {"input_ids": self.input_ids, "attention_mask": [1] * len(self.input_ids), "labels": self.labels}


def _eos_id(tokenizer: Any) -> int:
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        raise ConfigError("the tokenizer has no EOS token: set tokenizer.eos_token (labels end with EOS)")
    return int(eos)


def _resolve(fmt: PromptFormat | None, tokenizer: Any) -> PromptFormat:
    return (fmt or PromptFormat.auto()).resolve(tokenizer)


def _ids(tokenizer: Any, text: str, add_special_tokens: bool) -> list[int]:
    return list(tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])


def _batch_ids(tokenizer: Any, texts: list[str], add_special_tokens: bool) -> list[list[int]]:
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=add_special_tokens)["input_ids"]] if texts else []


def _check_max_length(max_length: int | None) -> None:
    if max_length is not None and max_length < 2:
        raise ConfigError(f"max_length must be at least 2, got {max_length}")


def _render_chat(tokenizer: Any, question: str, fmt: PromptFormat, answer: str | None,
                 shots: Sequence[tuple[str, str]] = ()) -> str:
    """The chat-template text of [system?, (user, assistant) per shot, user(question)] (+ assistant(answer) or the
    generation prompt)."""

    def render(messages: list[dict[str, str]]) -> str:
        if answer is not None:
            messages = [*messages, {"role": "assistant", "content": answer}]
        date = {"date_string": fmt.date_string} if fmt.date_string is not None else {}
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=answer is None, **date)

    turns = [m for q, a in shots for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})]
    turns.append({"role": "user", "content": question})
    if not fmt.system_prompt:
        return render(turns)
    try:
        return render([{"role": "system", "content": fmt.system_prompt}, *turns])
    except Exception:  # noqa: BLE001 - some templates (e.g. Gemma) reject a system role: fold it into the user turn
        first = {"role": "user", "content": f"{fmt.system_prompt}\n\n{turns[0]['content']}"}
        return render([first, *turns[1:]])


def _prompt_text(tokenizer: Any, question: str, fmt: PromptFormat) -> tuple[str, bool]:
    """(text, add_special_tokens) of the prompt (chat: with the generation prompt)."""
    if fmt.uses_chat(tokenizer):
        return _render_chat(tokenizer, question, fmt, None), False
    if fmt.tokenise == "joint":
        return fmt.template_prompt(question), True
    return fmt.split_template(question)[0], True


def _full_text(tokenizer: Any, question: str, answer: str, fmt: PromptFormat) -> tuple[str, bool, str]:
    """(text, add_special_tokens, the answer text encoded alone when the prefix property fails) of a QA pair."""
    if fmt.uses_chat(tokenizer):
        return _render_chat(tokenizer, question, fmt, answer), False, answer
    prompt_text, sep = fmt.split_template(question)
    return prompt_text + sep + answer, True, sep + answer


# ---- joint: open-unlearning's construction ------------------------------------------------------------------------


def _cut_like_tokenizer(tokenizer: Any, text: str, ids: list[int], special: bool, max_length: int | None,
                        chat: bool) -> tuple[list[int], bool]:
    """(ids, whether they were cut): plain-template texts as ``tokenizer(text, truncation=True, max_length)`` gives
    them (the tokenizer's own truncation side and special-token budget), chat texts untouched."""
    if chat or max_length is None or len(ids) <= max_length:
        return ids, False
    cut = tokenizer(text, add_special_tokens=special, truncation=True, max_length=max_length)["input_ids"]
    return list(cut), True


def _joint_item(prompt: list[int], full: list[int], eos: int, fmt: PromptFormat) -> tuple[list[int], list[int]]:
    """(input_ids, labels): ``full`` (+ EOS unless it ends with EOS), its first ``len(prompt)`` positions masked."""
    ids = full if full and full[-1] == eos else [*full, eos]
    n = min(len(prompt), len(ids))
    labels = [IGNORE_INDEX] * n + ids[n:]
    if fmt.trim_after_eos and eos in ids[n:]:
        end = n + ids[n:].index(eos) + 1
        ids, labels = ids[:end], labels[:end]
    return ids, labels


def _joint_encoded(tokenizer: Any, texts: tuple[str, str], ids: tuple[list[int], list[int]], special: bool,
                   chat: bool, fmt: PromptFormat, max_length: int | None, eos: int) -> tuple[Encoded, list[int]]:
    """(item, generation prompt) of one pair from its (prompt, full) texts and their untruncated ids."""
    prompt, prompt_cut = _cut_like_tokenizer(tokenizer, texts[0], ids[0], special, max_length, chat)
    full, full_cut = _cut_like_tokenizer(tokenizer, texts[1], ids[1], special, max_length, chat)
    input_ids, labels = _joint_item(prompt, full, eos, fmt)
    over = chat and max_length is not None and len(input_ids) > max_length
    return Encoded(input_ids, labels, prompt_cut, full_cut, over), prompt


# ---- separate: baldro's earlier construction ----------------------------------------------------------------------


def cut_prompt(ids: list[int], max_length: int | None) -> list[int]:
    """A prompt shortened from the left to ``max_length`` tokens (None: as it is), keeping its first token."""
    if max_length is not None and len(ids) > max_length:
        ids = ids[:1] + ids[len(ids) - max_length + 1 :]
    return ids


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


def _fit(prompt: list[int], ans: list[int], max_length: int) -> Encoded:
    """The sample ``prompt + ans`` cut to ``max_length`` (prompt from the left first, see the module docstring)."""
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


# ---- public ---------------------------------------------------------------------------------------------------------


def encode_prompt(tokenizer: Any, question: str, fmt: PromptFormat | None, max_length: int | None = None) -> list[int]:
    """The generation prompt's tokens (chat: with the generation prompt): ``joint``, the item's prompt ids (plain
    template: cut by the tokenizer at ``max_length``); ``separate``, shortened from the left keeping the first token."""
    fmt = _resolve(fmt, tokenizer)
    text, special = _prompt_text(tokenizer, question, fmt)
    ids = _ids(tokenizer, text, special)
    if fmt.tokenise == "separate":
        return cut_prompt(ids, max_length)
    return _cut_like_tokenizer(tokenizer, text, ids, special, max_length, fmt.uses_chat(tokenizer))[0]


def fewshot_prompt(tokenizer: Any, shots: Sequence[tuple[str, str]], question: str,
                   fmt: PromptFormat | None) -> tuple[str, bool]:
    """(text, add_special_tokens) of the generation prompt of ``question`` after in-context examples ``shots``, as
    open-unlearning's ``preprocess_chat_instance`` builds it with a few-shot dataset: chat template — the examples as
    earlier user/assistant turns; plain template — each example as the template filled with its answer, then
    ``answer_end``, then the question's prompt (``joint``: as written; ``separate``: without trailing whitespace)."""
    fmt = _resolve(fmt, tokenizer)
    if fmt.uses_chat(tokenizer):
        return _render_chat(tokenizer, question, fmt, None, shots), False
    before, after = fmt.template.split("{answer}")
    head = "".join(before.replace("{question}", q) + a + after + fmt.answer_end for q, a in shots)
    return head + _prompt_text(tokenizer, question, fmt)[0], True


def encode_qa_many(
    tokenizer: Any, pairs: list[tuple[str, str]], fmt: PromptFormat | None, max_length: int = 512
) -> tuple[list[Encoded], dict[str, list[int]]]:
    """The item of every (question, answer) pair and the generation prompt (:func:`encode_prompt` with
    ``max_length``) of every distinct question — each distinct prompt rendered once, all texts tokenised in two
    batched calls (a tokenizer's batch encoding gives each text the ids it gets alone)."""
    _check_max_length(max_length)
    fmt = _resolve(fmt, tokenizer)
    eos = _eos_id(tokenizer)
    questions = list(dict.fromkeys(q for q, _ in pairs))
    prompt_texts = [_prompt_text(tokenizer, q, fmt) for q in questions]
    special = prompt_texts[0][1] if prompt_texts else False
    prompt_ids = dict(zip(questions, _batch_ids(tokenizer, [t for t, _ in prompt_texts], special)))
    if fmt.tokenise == "joint":
        chat = bool(pairs) and fmt.uses_chat(tokenizer)
        full_texts = [_render_chat(tokenizer, q, fmt, a) if chat else fmt.template_prompt(q) + a for q, a in pairs]
        fulls = _batch_ids(tokenizer, full_texts, special)
        texts = dict(zip(questions, (t for t, _ in prompt_texts)))
        out, prompts = [], {}
        for (q, _), text, full in zip(pairs, full_texts, fulls):
            enc, prompts[q] = _joint_encoded(tokenizer, (texts[q], text), (prompt_ids[q], full), special, chat, fmt,
                                             max_length, eos)
            out.append(enc)
        return out, {q: prompts[q] for q in questions}
    separate = [_full_text(tokenizer, q, a, fmt) for q, a in pairs]
    fulls = _batch_ids(tokenizer, [t for t, _, _ in separate], special)
    out = [
        _fit(prompt_ids[q], _answer_tail(tokenizer, prompt_ids[q], full, fallback, fmt, eos), max_length)
        for (q, _), full, (_, _, fallback) in zip(pairs, fulls, separate)
    ]
    return out, {q: cut_prompt(prompt_ids[q], max_length) for q in questions}


def encode_qa_full(tokenizer: Any, question: str, answer: str, fmt: PromptFormat | None,
                   max_length: int = 512) -> Encoded:
    """Encode one QA pair and report truncation (see :func:`encode_qa`)."""
    return encode_qa_many(tokenizer, [(question, answer)], fmt, max_length)[0][0]


def encode_qa(
    tokenizer: Any, question: str, answer: str, fmt: PromptFormat | None, max_length: int = 512, warn: bool = True
) -> dict[str, list[int]]:
    """``{"input_ids", "attention_mask", "labels"}`` as python lists for one QA pair (see the module docstring);
    a warning when ``warn`` and the item had to be cut or is longer than ``max_length``."""
    enc = encode_qa_full(tokenizer, question, answer, fmt, max_length)
    if warn:
        warn_truncations(int(enc.answer_truncated), 1, max_length, n_over_length=int(enc.over_length))
    return enc.as_dict()


def warn_truncations(n_answer_truncated: int, n_rows: int, max_length: int, what: str = "dataset",
                     n_over_length: int = 0) -> None:
    """One warning saying how many rows had their answer truncated, one saying how many were kept longer than
    ``max_length`` (nothing when there are none)."""
    if n_answer_truncated:
        warnings.warn(
            f"{what}: {n_answer_truncated} of {n_rows} rows have an answer longer than max_length={max_length} "
            "tokens and were truncated; raise max_length to keep whole answers",
            UserWarning,
            stacklevel=2,
        )
    if n_over_length:
        warnings.warn(
            f"{what}: {n_over_length} of {n_rows} rows are longer than max_length={max_length} tokens and were kept "
            "whole (open-unlearning does not truncate chat-template items); tokenise: separate shortens them",
            UserWarning,
            stacklevel=2,
        )
