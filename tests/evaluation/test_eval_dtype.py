"""``baldro eval tofu|muse --dtype``: the precision the model is loaded in, resolved from the checkpoint's config by
default (float32 on a CPU in place of a half-precision dtype), and recorded as ``model_dtype`` in the eval files."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from baldro.cli.main import main
from baldro.errors import ConfigError
from baldro.evaluation.model_io import checkpoint_dtype, dtype_name, prepare_model, resolve_dtype
from baldro.evaluation.tofu import evaluate_tofu


@pytest.fixture(scope="module")
def bf16_checkpoint(random_tiny_model, tmp_path_factory):
    """The random tiny model saved in bfloat16 (its config.json then names ``"dtype": "bfloat16"``)."""
    out = tmp_path_factory.mktemp("bf16_ckpt")
    AutoModelForCausalLM.from_pretrained(random_tiny_model).to(torch.bfloat16).save_pretrained(out)
    AutoTokenizer.from_pretrained(random_tiny_model).save_pretrained(out)
    return out


def test_auto_takes_the_checkpoint_dtype_but_float32_on_cpu(random_tiny_model, bf16_checkpoint):
    assert json.loads((bf16_checkpoint / "config.json").read_text())["dtype"] == "bfloat16"
    assert checkpoint_dtype(bf16_checkpoint) == "bfloat16"
    assert checkpoint_dtype(random_tiny_model) == "float32"
    assert resolve_dtype(bf16_checkpoint, "auto", "cuda") == ("bfloat16", None)
    assert resolve_dtype(bf16_checkpoint, None, "cuda:1") == ("bfloat16", None)
    dtype, note = resolve_dtype(bf16_checkpoint, "auto", "cpu")
    assert dtype == "float32" and "the checkpoint is bfloat16" in note and "--dtype bfloat16" in note
    assert resolve_dtype(random_tiny_model, "auto", "cpu") == ("float32", None)
    for forced in ("float32", "bfloat16", "float16"):  # an explicit dtype holds on any device
        assert resolve_dtype(random_tiny_model, forced, "cpu") == (forced, None)
    with pytest.raises(ConfigError, match="--dtype 'half' is not one of"):
        resolve_dtype(random_tiny_model, "half", "cpu")


def test_prepare_model_loads_the_resolved_dtype(bf16_checkpoint, capsys):
    model, _, _ = prepare_model(str(bf16_checkpoint), device="cpu")
    assert dtype_name(model) == "float32" and "evaluating in float32 on cpu" in capsys.readouterr().err
    model, _, _ = prepare_model(str(bf16_checkpoint), dtype="bfloat16", device="cpu")
    assert dtype_name(model) == "bfloat16"
    with pytest.raises(ConfigError, match="cast the model object instead"):
        prepare_model(model, dtype="float32")
    assert dtype_name(prepare_model(model, dtype="auto")[0]) == "bfloat16"  # a model object is used as it is


@pytest.mark.parametrize(("flag", "recorded"), [(None, "float32"), ("bfloat16", "bfloat16"), ("float32", "float32")])
def test_eval_tofu_cli_dtype_is_recorded(bf16_checkpoint, mini_tofu, tmp_path, flag, recorded):
    out = tmp_path / "o"
    argv = ["eval", "tofu", "--model", str(bf16_checkpoint), "--data", str(mini_tofu), "--out", str(out),
            "--max-items", "2", "--max-new-tokens", "2", "--no-progress"]
    assert main(argv + (["--dtype", flag] if flag else [])) == 0
    for name in ("TOFU_EVAL.json", "TOFU_SUMMARY.json"):
        assert json.loads((out / name).read_text())["model_dtype"] == recorded


def test_eval_muse_cli_dtype_is_recorded(bf16_checkpoint, tmp_path):
    data = tmp_path / "muse"
    (data / "knowmem").mkdir(parents=True)
    qa = [{"question": f"What colour is book {i}?", "answer": f"The book is blue {i}."} for i in range(2)]
    (data / "knowmem" / "forget_qa.json").write_text(json.dumps(qa))
    out = tmp_path / "o"
    argv = ["eval", "muse", "--model", str(bf16_checkpoint), "--data", str(data), "--out", str(out),
            "--knowmem-max-new-tokens", "2", "--no-progress", "--dtype", "bfloat16"]
    assert main(argv) == 0
    for name in ("MUSE_EVAL.json", "MUSE_SUMMARY.json"):
        assert json.loads((out / name).read_text())["model_dtype"] == "bfloat16"


def test_eval_cli_refuses_an_unknown_dtype(bf16_checkpoint, mini_tofu, tmp_path, capsys):
    argv = ["eval", "tofu", "--model", str(bf16_checkpoint), "--data", str(mini_tofu), "--out", str(tmp_path / "o"),
            "--dtype", "half"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and "invalid choice: 'half'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_model_object_records_its_own_dtype(random_tiny_model, mini_tofu):
    model = AutoModelForCausalLM.from_pretrained(random_tiny_model).to(torch.bfloat16)
    tok = AutoTokenizer.from_pretrained(random_tiny_model)
    summary = evaluate_tofu(model, str(mini_tofu), tokenizer=tok, max_items=2, max_new_tokens=2, progress=False)
    assert summary["model_dtype"] == "bfloat16"
