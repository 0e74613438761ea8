"""Small byte-level BPE tokenizers built in-process (no downloads) for the data-layer tests."""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

CORPUS = [
    "Question: What is the full name of the author born in Taipei?",
    "Answer: The author's full name is Hsiao Yun-Hwa.",
    "The capital of Australia is Canberra, and the Eiffel Tower is in Paris.",
    "Who wrote the novel about the river? She wrote it in 1991 after a long journey.",
    "You are a helpful assistant. I don't know the answer to that question.",
    "[INST] Where was he born? [/INST] He was born in a small town by the sea.",
] * 5

SPECIALS = ["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

DATED_CHAT_TEMPLATE = "<s>Today: {{ date_string | default('UNSET') }}\n" + CHAT_TEMPLATE


def build_tokenizer(
    chat_template: str | None = None, vocab_size: int = 400, add_bos: bool = False
) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on :data:`CORPUS`, with pad/bos/eos and optionally a chat template;
    ``add_bos`` makes it prepend <s> to every encoding (like Llama tokenizers)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    if chat_template is not None:
        fast.chat_template = chat_template
    return fast


# The generation prompt ends with "assistant\n" but the answered conversation writes "assistant:\n": no common prefix.
MISMATCHED_CHAT_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'assistant' %}<|im_start|>assistant:\n{{ m['content'] }}<|im_end|>\n"
    "{% else %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
