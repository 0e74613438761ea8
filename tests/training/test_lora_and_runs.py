"""LoRA (with gradient checkpointing: lora_B must move), run-folder safety, pad token fallback."""

from __future__ import annotations

import warnings

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from baldro.errors import ConfigError
from baldro.modeling.loading import load_tokenizer
from baldro.runfolder import close_run, open_run, partial_path, plan_run
from baldro.training import run_unlearn


def test_lora_with_gradient_checkpointing_trains_adapters_and_merges(tiny_model_dir, synth_dir, tmp_path):
    out = run_unlearn({
        "model": {"path": str(tiny_model_dir)},
        "data": {"source": str(synth_dir), "max_length": 96},
        "objective": {"name": "npo"},
        "aggregator": {"name": "group", "ratio": 0.5},
        "lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"], "merge": True},
        "training": {"max_steps": 2, "per_device_train_batch_size": 4, "learning_rate": 1e-2, "use_cpu": True,
                     "gradient_checkpointing": True,
                     "gradient_checkpointing_kwargs": {"use_reentrant": True}, "save_strategy": "no", "disable_tqdm": True},
        "output_dir": str(tmp_path / "lora"),
    })
    adapter = load_file(str(out / "adapter_model.safetensors"))
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and all(float(v.abs().max()) > 0 for v in lora_b)
    merged = AutoModelForCausalLM.from_pretrained(out / "merged")
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(merged.state_dict()[q], base.state_dict()[q])
    k = "model.layers.0.self_attn.k_proj.weight"
    assert torch.equal(merged.state_dict()[k], base.state_dict()[k])


def test_lora_adapters_start_from_the_run_seed(tiny_model_dir, synth_dir, tmp_path):
    """The adapters are created after the run's seed is set: the same lora_A on every run (and every process) with
    one seed, whatever the global RNG did before; another seed, another initialisation."""
    from baldro.training.pipeline import TrainingRun
    from baldro.training.unlearn import parse_unlearn

    def adapters(seed: int, name: str) -> dict[str, torch.Tensor]:
        torch.rand(7)  # whatever ran before (another run, a data shuffle) moved the global RNG
        config = parse_unlearn({
            "model": {"path": str(tiny_model_dir)},
            "data": {"source": str(synth_dir)},
            "lora": {"r": 4, "target_modules": ["q_proj"]},
            "training": {"seed": seed, "use_cpu": True},
            "output_dir": str(tmp_path / name),
        })
        run = TrainingRun(config, remove_unused_columns=False)
        run.fail()  # release the folder; only the model matters here
        return {k: v.detach().clone() for k, v in run.model.named_parameters() if "lora_A" in k}

    first, again, other = adapters(0, "a"), adapters(0, "b"), adapters(1, "c")
    assert first and all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_run_folder_is_refused_replaced_and_moved_into_place(tmp_path):
    final = tmp_path / "run"
    run = plan_run(final)
    open_run(run)
    (run.work / "model.safetensors").write_text("new")
    assert not final.exists()
    close_run(run)
    assert (final / "model.safetensors").read_text() == "new" and not partial_path(final).exists()
    with pytest.raises(ConfigError, match="not empty; pass --overwrite"):
        plan_run(final)
    run = plan_run(final, overwrite=True)
    open_run(run)
    (run.work / "model.safetensors").write_text("newer")
    assert (final / "model.safetensors").read_text() == "new"  # the old run stays until the new one is done
    close_run(run)
    assert (final / "model.safetensors").read_text() == "newer"
    with pytest.raises(ConfigError, match="no checkpoint"):
        plan_run(tmp_path / "other", resume=True)


def test_stale_partial_folder_is_cleared_with_a_warning(tmp_path):
    final = tmp_path / "run"
    partial_path(final).mkdir()
    (partial_path(final) / "junk").write_text("x")
    run = plan_run(final)
    with pytest.warns(UserWarning, match="interrupted run"):
        open_run(run)
    assert not (run.work / "junk").exists()


def test_tokenizer_without_pad_uses_eos_with_a_warning(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.pad_token = None
    tok.save_pretrained(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_tokenizer(tmp_path)
    assert loaded.pad_token == loaded.eos_token
    assert any("no pad token" in str(w.message) for w in caught)


@pytest.mark.parametrize("targets", ["q_proj", ".*q_proj", ["q_proj"]])
def test_lora_target_modules_as_a_string_is_one_name_or_regex(tiny_model_dir, synth_dir, tmp_path, targets):
    """``target_modules: q_proj`` adapts the q projections (it was split into the letters q, _, p, r, o, j)."""
    from baldro.training.pipeline import TrainingRun
    from baldro.training.unlearn import parse_unlearn

    config = parse_unlearn({
        "model": {"path": str(tiny_model_dir)}, "data": {"source": str(synth_dir)},
        "lora": {"r": 2, "target_modules": targets}, "training": {"use_cpu": True},
        "output_dir": str(tmp_path / "run"),
    })
    run = TrainingRun(config, remove_unused_columns=False)
    run.fail()
    adapted = {k.split(".lora_A")[0].rsplit(".", 1)[-1] for k, _ in run.model.named_parameters() if "lora_A" in k}
    assert adapted == {"q_proj"}
