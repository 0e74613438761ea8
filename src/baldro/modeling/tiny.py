"""A tiny model built from scratch: byte-level BPE tokenizer trained on a benchmark folder + an untrained Llama.

The tokenizer (HF ``tokenizers``, byte-level BPE, so any text round-trips) has special tokens ``<|pad|>``,
``<|bos|>``, ``<|eos|>`` and the chat role markers ``<|system|>``, ``<|user|>``, ``<|assistant|>``; its chat
template renders ``<|bos|>`` then ``<|role|>\\n{content}\\n`` per turn, the assistant turn ending with ``<|eos|>``
(so labels on "answer + EOS" are exactly the assistant turn). The model is a ``LlamaForCausalLM`` from a config
(defaults ≈ 1.5 M parameters). Both are saved with ``save_pretrained``: ``AutoTokenizer`` and
``AutoModelForCausalLM`` load the folder like any hub model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from baldro.errors import ConfigError, DataError

PAD, BOS, EOS = "<|pad|>", "<|bos|>", "<|eos|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (PAD, BOS, EOS, *ROLE_TOKENS)

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('roles must be system, user or assistant') }}"
    "{% endif %}"
    "<|{{ message['role'] }}|>\n"
    "{% if message['role'] == 'assistant' %}{{ message['content'] }}{{ eos_token }}"
    "{% else %}{{ message['content'] }}\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

DEFAULT_VOCAB = 2048
DEFAULT_HIDDEN = 128
DEFAULT_LAYERS = 2
HEAD_DIM = 32
MAX_POSITIONS = 512
EXTRA_TEXT = ("You are a helpful assistant.", "Question: ", "Answer: ", "[INST] ", " [/INST] ", "I don't know.")


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for k in sorted(value):
            yield from _strings(value[k])


def benchmark_text(data_dir: str | Path) -> list[str]:
    """Every string of every ``*.json`` / ``*.jsonl`` split (JSON Lines or a JSON array) in ``data_dir``, in order."""
    folder = Path(data_dir)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder; expected a benchmark folder (make one with `baldro data synth --out DIR`)")
    texts: list[str] = list(EXTRA_TEXT) * 4  # prompt scaffolding the formats add: frequent enough to get merges
    files = [p for p in sorted(folder.iterdir()) if p.suffix in (".json", ".jsonl") and p.name != "META.json"]
    for path in files:
        raw = path.read_text(encoding="utf-8")
        try:
            rows = json.loads(raw) if raw.lstrip().startswith("[") else [json.loads(x) for x in raw.splitlines() if x.strip()]
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: not JSON Lines or a JSON array ({err}); regenerate it with `baldro data synth`") from err
        texts.extend(_strings(rows))
    if len(texts) == 4 * len(EXTRA_TEXT):
        raise DataError(f"{folder}: no .json/.jsonl split files to train the tokenizer on (make them with `baldro data synth`)")
    return texts


def train_tokenizer(texts: list[str], vocab_size: int = DEFAULT_VOCAB) -> PreTrainedTokenizerFast:
    """Byte-level BPE with at most ``vocab_size`` tokens (specials included), wrapped for ``transformers``."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        model_max_length=MAX_POSITIONS,
        padding_side="right",
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def check_shape(layers: int, hidden: int, vocab_size: int = DEFAULT_VOCAB) -> None:
    """:class:`ConfigError` unless layers >= 1, hidden is a positive multiple of the head size, vocab >= 300."""
    if layers < 1 or hidden < HEAD_DIM or hidden % HEAD_DIM:
        raise ConfigError(f"--layers={layers} --hidden={hidden}: need layers >= 1 and hidden a multiple of {HEAD_DIM}")
    if vocab_size < 300:
        raise ConfigError(f"--vocab={vocab_size}: need at least 300 (256 bytes + special tokens + some merges)")


def tiny_config(vocab_size: int, layers: int, hidden: int, tokenizer: PreTrainedTokenizerFast) -> LlamaConfig:
    """A small Llama config: head size 32, MLP width 4·hidden, untied embeddings, special ids from the tokenizer."""
    check_shape(layers, hidden)
    heads = hidden // HEAD_DIM
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=MAX_POSITIONS,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )


def build_tiny_model(
    data_dir: str | Path,
    out_dir: str | Path,
    layers: int = DEFAULT_LAYERS,
    hidden: int = DEFAULT_HIDDEN,
    seed: int = 0,
    vocab_size: int = DEFAULT_VOCAB,
) -> Path:
    """Train the tokenizer on ``data_dir``'s text, build an untrained Llama (weights seeded by ``seed``), save both
    to ``out_dir`` with ``save_pretrained``; return ``out_dir``."""
    check_shape(layers, hidden, vocab_size)
    tokenizer = train_tokenizer(benchmark_text(data_dir), vocab_size)
    config = tiny_config(len(tokenizer), layers, hidden, tokenizer)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
        max_new_tokens=64,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    _portable_tokenizer_config(out / "tokenizer_config.json")
    return out


def _portable_tokenizer_config(path: Path) -> None:
    """Make the saved tokenizer load on transformers 4.46+ too: a class name every version knows, and the chat
    template inside ``tokenizer_config.json`` (older versions do not read ``chat_template.jinja``)."""
    config = json.loads(path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config["chat_template"] = CHAT_TEMPLATE
    config.pop("backend", None)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
