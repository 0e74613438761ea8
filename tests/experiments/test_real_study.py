"""The real-model study (`baldro study --model --data`): the TOFU subset it builds from the real data, its configs,
and a CPU miniature end to end (a tiny random Llama in place of SmolLM2, real TOFU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from baldro.cli.main import main
from baldro.experiments.real_study import (
    MODEL_TEMPLATE,
    REAL_PROTOCOL,
    RealSettings,
    is_gguf,
    unlearn_config,
    write_tofu_subset,
)


@pytest.fixture(scope="module")
def tofu(tofu_dir: Path) -> Path:
    return tofu_dir


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_subset_is_forget01_plus_the_retain_perturbed_authors(tofu, tmp_path):
    write_tofu_subset(tmp_path, tofu, RealSettings())
    full, retain, forget = (_rows(tmp_path / f"{s}.json") for s in ("full", "retain99", "forget01"))
    published_forget = _rows(tofu / "forget01.json")
    assert [r["question"] for r in forget] == [r["question"] for r in published_forget] and len(forget) == 40
    assert [r["question"] for r in retain] == [r["question"] for r in _rows(tofu / "full.json")[:80]]
    assert full == retain + forget and set(full[0]) == {"question", "answer"}
    assert not {r["question"] for r in retain} & {r["question"] for r in forget}
    # Model Utility's retain items are questions the target (and the retain model) trained on
    mu_retain = _rows(tmp_path / "retain_perturbed.json")
    assert len(mu_retain) == 20 and {r["question"] for r in mu_retain} <= {r["question"] for r in retain}
    assert len(_rows(tmp_path / "world_facts_perturbed.json")) == 20
    assert len(_rows(tmp_path / "forget01_perturbed.json")) == 40
    info = json.loads((tmp_path / "SUBSET.json").read_text())
    assert info["forget_items"] == 40 and info["retain_items"] == 80


def test_subset_refuses_a_folder_without_tofu_files(tmp_path):
    from baldro.errors import DataError

    with pytest.raises(DataError, match=r"missing full\.json.*hf download locuslab/TOFU"):
        write_tofu_subset(tmp_path / "out", tmp_path, RealSettings())


def test_unlearning_config_uses_the_model_template_and_the_protocol(tmp_path):
    cfg = unlearn_config(RealSettings(), REAL_PROTOCOL, "npo+dv", None, tmp_path / "t", tmp_path / "d",
                         tmp_path / "r.json", tmp_path / "o", seed=3)
    assert cfg["data"]["format"] == MODEL_TEMPLATE and cfg["data"]["retain_split"] == "retain99"
    assert cfg["aggregator"] == {"name": "dv", "beta": 2.0, "sign": "paper"} and cfg["dro_scope"] == "micro"
    assert cfg["training"]["per_device_train_batch_size"] == 8 and cfg["training"]["seed"] == 3
    assert cfg["eval_every"] == 5 and REAL_PROTOCOL.seeds == 6
    assert REAL_PROTOCOL.methods == ("npo", "npo+dv", "npo+g")


def test_gguf_detection(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert is_gguf(tmp_path) and is_gguf(tmp_path / "m.gguf")
    (tmp_path / "config.json").write_text("{}")
    assert not is_gguf(tmp_path)


def _tiny_model(folder: Path, texts: list[str]) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "<s>", "</s>"],
                                                       show_progress=False,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=512, bos_token_id=fast.bos_token_id,
                                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id))
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def test_quick_real_study_end_to_end(tofu, tmp_path, capsys):
    rows = _rows(tofu / "forget01_perturbed.json") + _rows(tofu / "full.json")[:20]
    model = _tiny_model(tmp_path / "tiny", ["Question: Answer:"] + [r["question"] + " " + r["answer"] for r in rows])
    out = tmp_path / "study"
    assert main(["study", "--model", str(model), "--data", str(tofu), "--out", str(out), "--quick", "--jobs", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]) >= {"npo", "npo+dv"}
    trajectory = _rows(out / "runs" / "npo_dv" / "seed0" / "train" / "model" / "trajectory.jsonl")
    assert [r["step"] for r in trajectory][:2] == [0, 2] and trajectory[0]["forget_quality"] is not None
    assert (out / "report.md").is_file() and "npo+dv" in capsys.readouterr().out
    # resumable: a second call finds every stage done and changes nothing
    before = (out / "summary.json").read_text()
    assert main(["study", "--model", str(model), "--data", str(tofu), "--out", str(out), "--quick", "--jobs", "1"]) == 0
    assert json.loads((out / "summary.json").read_text())["methods"] == json.loads(before)["methods"]


def test_real_study_arguments_are_checked_before_work(tmp_path, capsys):
    assert main(["study", "--model", str(tmp_path)]) == 2
    assert "needs both --model and --data" in capsys.readouterr().err
    assert main(["study", "--model", str(tmp_path / "nope"), "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["study", "--model", str(tmp_path), "--data", str(tmp_path), "--size", "study"]) == 2
    assert "belong to the synthetic study" in capsys.readouterr().err
    assert main(["study", "--models-only"]) == 2
