"""The default (``joint``) items are open-unlearning's, token for token, also where the tokenizer merges across the
prompt/answer boundary.

``ou_item`` below re-derives open-unlearning's ``preprocess_chat_instance`` (``src/data/utils.py``) from its
definition: chat template — the conversation and the conversation up to the generation prompt, each through
``apply_chat_template(tokenize=True)``; tag configs — ``tokenizer(prompt + answer)`` and ``tokenizer(prompt)``, both
with ``add_special_tokens=True, truncation=True, max_length``; then EOS appended unless last, and the first
``len(prompt ids)`` labels set to -100. The merging tokenizer is a byte-level BPE trained so that ``]"`` is one
token, as in Llama-2's vocabulary, where ``[/INST]"The`` ends ``… "INST", ']"', "The"``.
"""

from __future__ import annotations

import json
from functools import cache

import pytest
from tokenizer_helpers import CHAT_TEMPLATE, MISMATCHED_CHAT_TEMPLATE, build_tokenizer
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from baldro.data.formatting import IGNORE_INDEX, PromptFormat, encode_prompt, encode_qa_full, encode_qa_many
from baldro.evaluation.answer_drafts import answer_draft

QUOTED = [
    ('What is the title of her first novel?', '"The River Keeper" is the title of her first novel.'),
    ('Which book made him famous?', '"Rays of Resilience" made him famous.'),
]
PLAIN = [("Where was he born?", "He was born in a small town by the sea.")]
# open-unlearning's configs/model/*.yaml template_args, as (user_start, user_end, asst_start)
TAGS = {"llama2": ("[INST] ", " [/INST]", ""), "plain": ("Question: ", "\n", "Answer: ")}


@cache
def merging_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE with BOS prepended, trained on [INST]-wrapped QA pairs whose answers open with a quote."""
    corpus = [f"[INST] {q} [/INST]{a}" for q, a in QUOTED + PLAIN] * 20 + [f"Question: {q}\nAnswer: {a}" for q, a in PLAIN]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<pad>", "<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>")


def ou_item(tok, fmt: PromptFormat, question: str, answer: str, max_length: int, generate: bool = False) -> dict:
    """open-unlearning's preprocess_chat_instance for one (question, answer), no few-shot examples."""
    if fmt.use_chat_template is not False and tok.chat_template:
        chat = [{"role": "system", "content": fmt.system_prompt}] if fmt.system_prompt else []
        chat += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        date = {"date_string": fmt.date_string}
        chat_ids = list(tok.apply_chat_template(chat, tokenize=True, return_dict=False, **date))
        prompt_ids = list(tok.apply_chat_template(chat[:-1], tokenize=True, add_generation_prompt=True,
                                                  return_dict=False, **date))
    else:
        start, end, asst = TAGS["llama2" if fmt.template.startswith("[INST]") else "plain"]
        wrapped = start + question + end + asst
        chat_ids = tok(wrapped + answer, add_special_tokens=True, max_length=max_length, truncation=True)["input_ids"]
        prompt_ids = tok(wrapped, add_special_tokens=True, max_length=max_length, truncation=True)["input_ids"]
    if chat_ids[-1] != tok.eos_token_id:
        chat_ids = [*chat_ids, tok.eos_token_id]
    if generate:
        return {"input_ids": prompt_ids, "labels": chat_ids}
    return {"input_ids": chat_ids, "labels": [IGNORE_INDEX] * len(prompt_ids) + chat_ids[len(prompt_ids):]}


def test_the_tokenizer_merges_across_the_llama2_boundary():
    tok = merging_tokenizer()
    q, a = QUOTED[0]
    whole = tok.convert_ids_to_tokens(tok(f"[INST] {q} [/INST]{a}")["input_ids"])
    prompt = tok.convert_ids_to_tokens(tok(f"[INST] {q} [/INST]")["input_ids"])
    assert prompt[-3:] == ["Ġ[/", "INST", "]"]
    assert whole[len(prompt) - 3 : len(prompt) + 1] == ["Ġ[/", "INST", ']"', "The"]
    assert [t for t in tok.get_vocab() if t.startswith("]") and t != "]"] == [']"']


@pytest.mark.parametrize("preset", ["llama2", "llama-2-7b-chat", "plain"])
@pytest.mark.parametrize("max_length", [512, 12])
def test_template_items_equal_open_unlearnings(preset, max_length):
    tok = merging_tokenizer()
    fmt = PromptFormat.preset(preset)
    pairs = QUOTED + PLAIN
    got, prompts = encode_qa_many(tok, pairs, fmt, max_length)
    for (q, a), enc in zip(pairs, got):
        want = ou_item(tok, fmt, q, a, max_length)
        assert enc.as_dict() == {**want, "attention_mask": [1] * len(want["input_ids"])}
        assert encode_qa_full(tok, q, a, fmt, max_length) == enc
        # generation: open-unlearning's predict_with_generate input_ids
        assert prompts[q] == encode_prompt(tok, q, fmt, max_length) == ou_item(tok, fmt, q, a, max_length, True)["input_ids"]
        assert enc.answer_truncated == (len(tok(fmt.template_prompt(q) + a)["input_ids"]) > max_length)


def test_merged_token_is_masked_and_labels_start_after_it():
    tok = merging_tokenizer()
    q, a = QUOTED[0]
    joint = encode_qa_full(tok, q, a, PromptFormat.preset("llama2"))
    separate = encode_qa_full(tok, q, a, PromptFormat.preset("llama2", tokenise="separate"))
    prompt = encode_prompt(tok, q, PromptFormat.preset("llama2"))
    n = len(prompt)
    assert tok.convert_ids_to_tokens(joint.input_ids[n - 1 : n + 1]) == [']"', "The"]
    assert joint.labels[:n] == [IGNORE_INDEX] * n and joint.labels[n:] == joint.input_ids[n:]
    # separate: the prompt's own "]" then the answer tokenised alone ('"', "The", …): one token and one label more
    assert len(separate.input_ids) == len(joint.input_ids) + 1
    assert separate.input_ids[:n] == prompt and tok.decode(separate.labels[n:]) == a + "</s>"
    assert sum(x != IGNORE_INDEX for x in separate.labels) == sum(x != IGNORE_INDEX for x in joint.labels) + 1


def test_answer_drafts_need_the_prompt_as_prefix_and_give_none_where_a_merge_breaks_it():
    tok = merging_tokenizer()
    fmt = PromptFormat.preset("llama2")
    for (q, a), merged in ((QUOTED[0], True), (PLAIN[0], False)):
        enc, prompt = encode_qa_full(tok, q, a, fmt), encode_prompt(tok, q, fmt)
        n_answer = len(enc.input_ids) - len(prompt)
        draft = answer_draft(prompt, enc.input_ids, enc.labels, [True] * n_answer)
        assert draft == ([] if merged else enc.input_ids[len(prompt):])


@pytest.mark.parametrize("template", [CHAT_TEMPLATE, MISMATCHED_CHAT_TEMPLATE])
@pytest.mark.parametrize("system_prompt", [None, "You are a helpful assistant."])
def test_chat_items_equal_open_unlearnings_and_are_never_cut(template, system_prompt):
    tok = build_tokenizer(template)
    tok.eos_token = "<|im_end|>"
    fmt = PromptFormat(system_prompt=system_prompt, use_chat_template=True)
    pairs = [(q, a) for q, a in QUOTED + PLAIN] + [("Who?", "She wrote it in 1991 after a long journey. " * 8)]
    got, prompts = encode_qa_many(tok, pairs, fmt, max_length=40)
    for (q, a), enc in zip(pairs, got):
        want = ou_item(tok, fmt, q, a, 40)
        assert (enc.input_ids, enc.labels) == (want["input_ids"], want["labels"])
        assert prompts[q] == ou_item(tok, fmt, q, a, 40, True)["input_ids"]
        assert not enc.answer_truncated and enc.over_length == (len(enc.input_ids) > 40)
    assert got[-1].over_length


def test_real_tofu_rows_that_merge(tofu_dir):
    """forget01 / retain99 rows whose llama2 item differs between the constructions are exactly those whose answer
    opens with a quote (``]"`` is this tokenizer's only merge of "]"); the joint items stay open-unlearning's."""
    tok = merging_tokenizer()
    fmt = PromptFormat.preset("llama2")
    counts = {}
    for split in ("forget01", "retain99"):
        rows = [json.loads(line) for line in (tofu_dir / f"{split}.json").read_text().splitlines() if line.strip()]
        pairs = [(r["question"], r["answer"]) for r in rows]
        joint, _ = encode_qa_many(tok, pairs, fmt)
        separate, _ = encode_qa_many(tok, pairs, PromptFormat.preset("llama2", tokenise="separate"))
        differ = {i for i, (j, s) in enumerate(zip(joint, separate)) if (j.input_ids, j.labels) != (s.input_ids, s.labels)}
        assert differ == {i for i, (_, a) in enumerate(pairs) if a.startswith('"')}
        for i in sorted(differ)[:5]:
            assert (joint[i].input_ids, joint[i].labels) == tuple(ou_item(tok, fmt, *pairs[i], 512).values())
        counts[split] = (len(differ), len(rows))
    assert counts["forget01"][1] == 40 and counts["retain99"][1] == 3960
    assert counts["forget01"][0] > 0 and counts["retain99"][0] > 0
