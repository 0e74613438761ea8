"""Fitting a run to the machine: the bf16 presets on a CPU stop at once in baldro's words; a CPU run pins no memory."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from baldro.cli.main import main
from baldro.errors import ConfigError
from baldro.training import device
from baldro.training.device import CPU_VARIANT, check_bf16_device, fit_pin_memory

ROOT = Path(__file__).resolve().parents[2]


def test_bf16_without_a_bf16_gpu_is_one_line_naming_the_cpu_variant():
    with pytest.raises(ConfigError) as err:
        check_bf16_device({"bf16": True, "learning_rate": 1e-5}, available=False)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("training.bf16=true needs a GPU with bf16 and this machine has none")
    assert message.endswith(f"add {CPU_VARIANT} (docs/real-models.md, 'On a CPU')")
    with pytest.raises(ConfigError, match=r"^training\.bf16_full_eval=true needs a GPU"):
        check_bf16_device({"bf16_full_eval": True}, available=False)


def test_bf16_passes_on_a_bf16_gpu_with_use_cpu_or_when_off():
    check_bf16_device({"bf16": True}, available=True)
    check_bf16_device({"bf16": True, "use_cpu": True}, available=False)  # transformers' CPU autocast: allowed
    check_bf16_device({"bf16": False}, available=False)
    check_bf16_device({}, available=False)


def test_the_cpu_variant_is_the_one_docs_real_models_gives():
    page = (ROOT / "docs" / "real-models.md").read_text()
    section = page[page.index("## On a CPU"):page.index("## MUSE")]
    assert " ".join(section.replace("\\\n", " ").split()).count(CPU_VARIANT) == 1


@pytest.mark.parametrize("command,preset", [("unlearn", "tofu_npo_dv.yaml"), ("finetune", "tofu_finetune_full.yaml")])
def test_a_bf16_preset_on_a_cpu_exits_2_before_anything_is_written(command, preset, tiny_model_dir, synth_dir,
                                                                   tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(device, "bf16_device_available", lambda: False)  # this CPU, also on a machine with a GPU
    out = tmp_path / "run"
    rc = main([command, "--config", str(ROOT / "configs" / preset), "--set", f"model.path={tiny_model_dir}",
               "--set", f"data.source={synth_dir}", "--set", f"output_dir={out}"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.splitlines() == [
        "baldro: error: training.bf16=true needs a GPU with bf16 and this machine has none; to run on the CPU add "
        f"{CPU_VARIANT} (docs/real-models.md, 'On a CPU')"
    ]
    assert list(tmp_path.iterdir()) == []  # no run folder, no partial folder, no lock


def test_pin_memory_stays_only_where_cuda_is():
    class Args:
        dataloader_pin_memory = True

    on_gpu, on_cpu = Args(), Args()
    fit_pin_memory(on_gpu, cuda=True)
    fit_pin_memory(on_cpu, cuda=False)
    assert on_gpu.dataloader_pin_memory is True and on_cpu.dataloader_pin_memory is False


@pytest.mark.skipif(torch.cuda.is_available(), reason="the warning is about a machine without CUDA")
@pytest.mark.parametrize("command", ["finetune", "unlearn"])
def test_a_cpu_run_without_use_cpu_emits_no_pin_memory_warning(command, tiny_model_dir, synth_dir, tmp_path):
    from baldro.training import run_finetune, run_unlearn

    training = {"max_steps": 1, "per_device_train_batch_size": 4, "save_strategy": "no", "disable_tqdm": True,
                "logging_strategy": "no"}  # no use_cpu: transformers keeps dataloader_pin_memory=True
    config = {"model": {"path": str(tiny_model_dir)}, "data": {"source": str(synth_dir), "max_length": 64},
              "training": training, "output_dir": str(tmp_path / "run")}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if command == "finetune":
            run_finetune({**config, "data": {**config["data"], "split": "full"}})
        else:
            run_unlearn({**config, "objective": {"name": "npo"}, "retain": {"name": "nll"}})
    assert [str(w.message) for w in caught if "pin_memory" in str(w.message)] == []
