"""``run_finetune`` / ``run_unlearn`` and the CLI end to end on the embedded benchmark with the tiny model."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from baldro.cli.main import main
from baldro.runfolder import partial_path
from baldro.training import run_finetune, run_unlearn

TRAINING = {
    "max_steps": 2,
    "per_device_train_batch_size": 4,
    "learning_rate": 1e-3,
    "save_strategy": "no",
    "disable_tqdm": True,
    "use_cpu": True,
    "logging_strategy": "no",
}


def _unlearn_config(model, data, out, **extra):
    cfg = {
        "model": {"path": str(model)},
        "data": {"source": str(data), "max_length": 96},
        "objective": {"name": "npo", "beta": 0.1},
        "aggregator": {"name": "dv", "beta": 2.0},
        "retain": {"name": "nll", "weight": 1.0},
        "training": dict(TRAINING),
        "output_dir": str(out),
    }
    cfg.update(extra)
    return cfg


def test_finetune_writes_a_loadable_model(tiny_model_dir, synth_dir, tmp_path):
    out = run_finetune({
        "model": {"path": str(tiny_model_dir)},
        "data": {"source": str(synth_dir), "split": ["general", "full"], "max_length": 96},
        "training": TRAINING,
        "output_dir": str(tmp_path / "ft"),
    })
    assert out == (tmp_path / "ft").resolve() and not partial_path(out).exists()
    model = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), base.state_dict().values()))
    assert AutoTokenizer.from_pretrained(out).pad_token is not None
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 2
    assert yaml.safe_load((out / "config.yaml").read_text())["data"]["split"] == ["general", "full"]


def test_unlearn_writes_model_reference_cache_and_per_sample_log(tiny_model_dir, synth_dir, tmp_path):
    out = run_unlearn(_unlearn_config(tiny_model_dir, synth_dir, tmp_path / "ul", log_every=2))
    assert (out / "model.safetensors").is_file()
    AutoModelForCausalLM.from_pretrained(out)
    cache = load_file(str(out / "reference_logp.safetensors"))["forget"]
    assert cache.numel() == 10 and bool(torch.isfinite(cache).all()) and bool((cache < 0).all())
    rows = [json.loads(line) for line in (out / "per_sample.jsonl").read_text().splitlines()]
    assert {r["step"] for r in rows} == {1, 2} and len(rows) == 8
    for step in (1, 2):
        assert abs(sum(r["weight"] for r in rows if r["step"] == step) - 1.0) < 1e-5
    assert set(rows[0]) == {"step", "index", "loss", "weight", "nll"}
    assert yaml.safe_load((out / "config.yaml").read_text())["dro_scope"] == "micro"
    # the prompt format the items were built with, as it resolved for this tokenizer (the eval files' label)
    from transformers import AutoTokenizer

    from baldro.data.formatting import format_label

    info = json.loads((out / "run_info.json").read_text())
    assert info["prompt_format"] == format_label(None, AutoTokenizer.from_pretrained(tiny_model_dir))
    assert info["prompt_format"].startswith("default (")


def test_kl_radius_logs_beta_star_and_idk_dpo_runs(tiny_model_dir, synth_dir, tmp_path):
    out = run_unlearn(_unlearn_config(
        tiny_model_dir, synth_dir, tmp_path / "kl", objective={"name": "idk_dpo"},
        aggregator={"name": "kl_radius", "rho": 0.1}, retain={"name": "kl", "weight": 1.0}))
    rows = [json.loads(line) for line in (out / "per_sample.jsonl").read_text().splitlines()]
    assert all(r["beta_star"] > 0 for r in rows)
    assert set(load_file(str(out / "reference_logp.safetensors"))) == {"forget", "idk"}


def _write(tmp_path, cfg):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_cli_unlearn_overrides_and_safety_rails(tiny_model_dir, synth_dir, tmp_path, capsys):
    out = tmp_path / "run"
    cfg = _write(tmp_path, _unlearn_config(tiny_model_dir, synth_dir, out))
    assert main(["unlearn", "--config", cfg, "--set", "training.max_steps=1", "--set", "aggregator.name=group",
                 "--set", "aggregator.beta=null"]) == 2
    err = capsys.readouterr().err
    assert "aggregator" in err and "beta" in err  # group has no beta: a clear one-line error
    assert not out.exists() and not partial_path(out).exists()  # checked before any folder is made
    assert main(["unlearn", "--config", cfg, "--set", "training.max_steps=1", "--set", "aggregator={name: group}"]) == 0
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 1
    assert main(["unlearn", "--config", cfg]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["unlearn", "--config", cfg, "--overwrite", "--set", "training.learning_rat=1e-5"]) == 2
    assert "learning_rate" in capsys.readouterr().err
    assert (out / "model.safetensors").is_file()  # a failed run leaves the finished folder alone


def test_cli_missing_model_or_config_exits_2(synth_dir, tmp_path, capsys):
    cfg = _write(tmp_path, _unlearn_config(tmp_path / "nope", synth_dir, tmp_path / "o"))
    assert main(["unlearn", "--config", cfg]) == 2
    assert "model.path" in capsys.readouterr().err
    assert main(["finetune", "--config", str(tmp_path / "missing.yaml")]) == 2
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    assert main(["finetune", "--config", str(tmp_path / "bad.yaml")]) == 2
    assert "bad.yaml" in capsys.readouterr().err


def test_resume_after_a_crash_matches_an_uninterrupted_run(tiny_model_dir, synth_dir, tmp_path, monkeypatch):
    training = {**TRAINING, "max_steps": 4, "save_strategy": "steps", "save_steps": 2, "learning_rate": 1e-2}
    whole = run_unlearn(_unlearn_config(tiny_model_dir, synth_dir, tmp_path / "whole", training=training))

    from baldro.training import trainer as trainer_mod

    class Crash(RuntimeError):
        pass

    def crash_after_two(self, args, state, control, **kwargs):
        if state.global_step == 2:
            raise Crash

    monkeypatch.setattr(trainer_mod._EpochCallback, "on_step_begin", crash_after_two, raising=False)
    cfg = _unlearn_config(tiny_model_dir, synth_dir, tmp_path / "resumed", training=training)
    with pytest.raises(Crash):
        run_unlearn(cfg)
    assert not (tmp_path / "resumed").exists() and (partial_path(tmp_path / "resumed") / "checkpoint-2").is_dir()
    monkeypatch.undo()
    resumed = run_unlearn({**cfg, "resume": True})
    a, b = load_file(str(whole / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    base = load_file(str(tiny_model_dir / "model.safetensors"))
    assert max(float((a[k] - base[k]).abs().max()) for k in a) > 1e-3
    def logged(folder):
        return [(r["step"], r["index"]) for r in map(json.loads, (folder / "per_sample.jsonl").read_text().splitlines())]

    assert logged(resumed) == logged(whole)  # same batches, and the steps after the checkpoint are logged once


def test_unlearn_on_raw_text_chunks(tiny_model_dir, synth_dir, tmp_path):
    rows = [json.loads(line) for line in (synth_dir / "full.json").read_text().splitlines() if line.strip()]
    texts = [f"{r['question']} {r['answer']}" for r in rows]
    muse = tmp_path / "muse"
    (muse / "raw").mkdir(parents=True)
    (muse / "raw" / "forget.json").write_text(json.dumps([" ".join(texts[:20])]))
    (muse / "raw" / "retain1.json").write_text(json.dumps([" ".join(texts[20:60])]))
    cfg = _unlearn_config(tiny_model_dir, muse, tmp_path / "text")
    cfg["data"] = {"source": str(muse), "kind": "text", "forget_split": "forget", "retain_split": "retain1",
                   "max_length": 64}
    out = run_unlearn(cfg)
    rows = [json.loads(line) for line in (out / "per_sample.jsonl").read_text().splitlines()]
    assert rows and all(r["nll"] > 0 for r in rows)
    assert load_file(str(out / "reference_logp.safetensors"))["forget"].numel() >= 2


def test_quantized_checkpoint_is_refused_before_any_folder(tiny_model_dir, synth_dir, tmp_path, capsys):
    import shutil

    model = tmp_path / "gguf_converted"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (model / "config.json").write_text(json.dumps(config))
    out = tmp_path / "run"
    cfg = _write(tmp_path, _unlearn_config(model, synth_dir, out))
    assert main(["unlearn", "--config", cfg]) == 2
    err = capsys.readouterr().err
    assert "quantization_config" in err and "'bitsandbytes'" in err and "save_pretrained" in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists() and not partial_path(out).exists()
