"""The tiny model folder: loads with the Auto classes, round-trips text, has a chat template ending turns with EOS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from baldro.errors import ConfigError, DataError
from baldro.modeling.tiny import EOS, build_tiny_model, count_parameters


@pytest.fixture(scope="module")
def loaded(tiny_model_dir: Path):
    return AutoTokenizer.from_pretrained(tiny_model_dir), AutoModelForCausalLM.from_pretrained(tiny_model_dir)


def test_auto_classes_load_and_ids_agree(loaded, tiny_model_dir: Path) -> None:
    tok, model = loaded
    assert model.config.model_type == "llama"
    assert model.config.vocab_size == len(tok) <= 2048
    for name in ("pad", "bos", "eos"):
        tid = getattr(tok, f"{name}_token_id")
        assert tid is not None
        assert getattr(model.config, f"{name}_token_id") == tid == getattr(model.generation_config, f"{name}_token_id")
    assert len({tok.pad_token_id, tok.bos_token_id, tok.eos_token_id}) == 3
    saved = json.loads((tiny_model_dir / "tokenizer_config.json").read_text())
    assert saved["tokenizer_class"] == "PreTrainedTokenizerFast" and saved["chat_template"] == tok.chat_template


def test_round_trips_any_text(loaded, synth_dir: Path) -> None:
    tok, _ = loaded
    first = json.loads((synth_dir / "full.json").read_text().splitlines()[0])
    for text in (first["question"] + " " + first["answer"], "Zürich — naïve café, 1957! 😀\n\ttabs", "x"):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
    # BPE learned the benchmark's words: an answer takes far fewer tokens than bytes
    assert len(tok(first["answer"], add_special_tokens=False)["input_ids"]) < len(first["answer"].encode()) / 2


def test_chat_template_prompt_is_prefix_and_answer_ends_with_eos(loaded) -> None:
    tok, _ = loaded
    msgs = [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Where?"}]
    prompt = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    full = tok.apply_chat_template(msgs + [{"role": "assistant", "content": "Here."}], tokenize=False)
    assert full == prompt + "Here." + EOS
    assert prompt.startswith(tok.bos_token)
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    f_ids = tok(full, add_special_tokens=False)["input_ids"]
    assert f_ids[: len(p_ids)] == p_ids and f_ids[-1] == tok.eos_token_id
    assert tok.decode(f_ids[len(p_ids) :], skip_special_tokens=True) == "Here."


def test_forward_and_generate(loaded) -> None:
    tok, model = loaded
    ids = torch.tensor([tok("Where was the author born?", add_special_tokens=False)["input_ids"]])
    out = model(input_ids=ids, labels=ids)
    assert out.logits.shape == (1, ids.shape[1], len(tok)) and torch.isfinite(out.loss)
    gen = model.generate(ids, max_new_tokens=3, do_sample=False)
    assert gen.shape[1] <= ids.shape[1] + 3


def test_same_seed_same_weights_and_tokenizer(synth_dir: Path, tmp_path: Path) -> None:
    a = build_tiny_model(synth_dir, tmp_path / "a", layers=1, hidden=32, seed=5)
    b = build_tiny_model(synth_dir, tmp_path / "b", layers=1, hidden=32, seed=5)
    c = build_tiny_model(synth_dir, tmp_path / "c", layers=1, hidden=32, seed=6)
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()
    ma, mb, mc = (AutoModelForCausalLM.from_pretrained(p) for p in (a, b, c))
    wa, wb, wc = (m.model.embed_tokens.weight for m in (ma, mb, mc))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_default_size_is_about_one_to_three_million(synth_dir: Path, tmp_path: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(build_tiny_model(synth_dir, tmp_path / "d"))
    assert 0.5e6 <= count_parameters(model) <= 3e6


def test_bad_inputs(tmp_path: Path, synth_dir: Path) -> None:
    with pytest.raises(DataError, match="not a folder"):
        build_tiny_model(tmp_path / "missing", tmp_path / "o")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .json"):
        build_tiny_model(tmp_path / "empty", tmp_path / "o")
    with pytest.raises(ConfigError, match="--hidden"):
        build_tiny_model(synth_dir, tmp_path / "o", hidden=48)
