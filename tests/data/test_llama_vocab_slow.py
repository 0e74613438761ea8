"""Opt-in: the prompt/answer boundary with Llama-2's real vocabulary, on the real TOFU data.

Set ``BALDRO_LLAMA_VOCAB_DIR`` to a folder holding llama.cpp's ``ggml-vocab-llama-spm.gguf`` with its ``.inp`` /
``.out`` files (Hugging Face reference encodings), e.g. ``vendor/llama.cpp/models`` of the PyPI source archive
``pip download --no-deps --no-binary :all: llama-cpp-python``; needs the ``gguf`` package. Run with
``pytest -m slow tests/data/test_llama_vocab_slow.py`` (``BALDRO_TOFU_DIR`` if the data is not at ../shared).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_ou_items import ou_item

from baldro.data.formatting import PromptFormat, encode_qa_many

pytestmark = pytest.mark.slow
NAME = "ggml-vocab-llama-spm.gguf"


@pytest.fixture(scope="module")
def llama2():
    folder = os.environ.get("BALDRO_LLAMA_VOCAB_DIR")
    if not folder or not (Path(folder) / NAME).is_file():
        pytest.skip(f"set BALDRO_LLAMA_VOCAB_DIR to a folder holding llama.cpp's {NAME} (see the module docstring)")
    pytest.importorskip("gguf", reason="loading a GGUF file needs the gguf package")
    from tokenizers import decoders, normalizers
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder, gguf_file=NAME)
    # Llama-2's tokenizer.json pipeline (the GGUF converter's Metaspace pre-tokenizer drops the "▁" it prepends to a
    # text that starts with a space): normalizer Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer
    backend = tok.backend_tokenizer
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    backend.pre_tokenizer = None
    backend.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    return tok


def test_it_is_the_hugging_face_llama2_tokenizer(llama2):
    folder = Path(os.environ["BALDRO_LLAMA_VOCAB_DIR"])
    texts = (folder / f"{NAME}.inp").read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    ids = (folder / f"{NAME}.out").read_text(encoding="utf-8").split("\n")
    assert len(texts) > 40
    for text, want in zip(texts, ids):
        assert llama2(text, add_special_tokens=False)["input_ids"] == [int(x) for x in want.split()], text
    tokens = llama2.convert_ids_to_tokens(llama2('[INST] Who? [/INST]"The')["input_ids"])
    assert tokens[-3:] == ["INST", ']"', "The"]


def test_tofu_rows_that_merge_at_the_llama2_boundary(llama2, tofu_dir):
    fmt = PromptFormat.preset("llama2")
    counts = {}
    for split in ("forget01", "retain99"):
        rows = [json.loads(line) for line in (tofu_dir / f"{split}.json").read_text().splitlines() if line.strip()]
        pairs = [(r["question"], r["answer"]) for r in rows]
        joint, _ = encode_qa_many(llama2, pairs, fmt)
        separate, _ = encode_qa_many(llama2, pairs, PromptFormat.preset("llama2", tokenise="separate"))
        differ = [i for i, (j, s) in enumerate(zip(joint, separate)) if (j.input_ids, j.labels) != (s.input_ids, s.labels)]
        assert differ == [i for i, (_, a) in enumerate(pairs) if a.startswith('"')]
        for i in differ[:10]:
            assert len(separate[i].input_ids) == len(joint[i].input_ids) + 1
            assert (joint[i].input_ids, joint[i].labels) == tuple(ou_item(llama2, fmt, *pairs[i], 512).values())
        counts[split] = len(differ)
    assert counts == {"forget01": 4, "retain99": 140}
