"""``--resume`` with a changed config: refused with the differing keys, accepted with --allow-config-change and
recorded in run_info.json; a failed run removes its work folder unless it holds checkpoints."""

from __future__ import annotations

import json

import pytest
import yaml

from baldro.cli.main import main
from baldro.runfolder import lock_path, partial_path


def _cfg(tmp_path, model, data, out):
    cfg = {
        "model": {"path": str(model)},
        "data": {"source": str(data), "max_length": 96},
        "objective": {"name": "npo", "beta": 0.1},
        "aggregator": {"name": "dv", "beta": 2.0},
        "retain": {"name": "nll", "weight": 1.0},
        "training": {"max_steps": 3, "per_device_train_batch_size": 4, "learning_rate": 1e-2, "use_cpu": True,
                     "save_strategy": "steps", "save_steps": 2, "disable_tqdm": True, "logging_strategy": "no"},
        "output_dir": str(out),
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


class Crash(RuntimeError):
    """Raised at the start of step 2, after checkpoint-2 was written: a run that died mid-training."""


def _crash_at_step_2(monkeypatch, cfg: str, *extra: str) -> None:
    """Run ``baldro unlearn --config cfg *extra`` until it dies at step 2 (checkpoint-2 written)."""
    from baldro.training import trainer as trainer_mod

    def crash(self, args, state, control, **kwargs):
        if state.global_step == 2:
            raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(trainer_mod._EpochCallback, "on_step_begin", crash, raising=False)
        with pytest.raises(Crash):
            main(["unlearn", "--config", cfg, *extra])


def test_resume_refuses_a_changed_config_unless_allowed(tiny_model_dir, synth_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    cfg = _cfg(tmp_path, tiny_model_dir, synth_dir, out)
    _crash_at_step_2(monkeypatch, cfg)
    work = partial_path(out)
    assert (work / "checkpoint-2").is_dir() and not lock_path(out).exists()  # kept (resumable), lock released

    capsys.readouterr()
    changed = ["--set", "aggregator.beta=5", "--set", "training.logging_steps=1"]
    assert main(["unlearn", "--config", cfg, "--resume", *changed]) == 2
    err = capsys.readouterr().err
    assert "aggregator.beta: 2.0 → 5" in err and "logging_steps" not in err and "--allow-config-change" in err
    assert yaml.safe_load((work / "config.yaml").read_text())["aggregator"]["beta"] == 2.0  # untouched

    assert main(["unlearn", "--config", cfg, "--resume", "--allow-config-change", *changed]) == 0
    info = json.loads((out / "run_info.json").read_text())
    assert info["resumed"][0]["config_changes"] == {"aggregator.beta": [2.0, 5]}
    assert info["resumed"][0]["from"] == "checkpoint-2" and "finished" in info
    assert yaml.safe_load((out / "config.yaml").read_text())["aggregator"]["beta"] == 5


def test_allow_config_change_needs_resume(tmp_path, capsys):
    cfg = _cfg(tmp_path, tmp_path / "m", tmp_path / "d", tmp_path / "run")
    assert main(["unlearn", "--config", cfg, "--allow-config-change"]) == 2
    assert "only applies with --resume" in capsys.readouterr().err


def test_a_run_that_fails_before_any_checkpoint_leaves_nothing(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "run"
    cfg = _cfg(tmp_path, tiny_model_dir, tmp_path / "missing_data", out)
    assert main(["unlearn", "--config", cfg]) == 2  # the data folder is found missing after the lock is taken
    assert "missing_data" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.yaml"]


def test_resume_refuses_changed_inputs_naming_them_unless_allowed(tiny_model_dir, synth_dir, tmp_path, monkeypatch,
                                                                  capsys):
    import shutil

    data = shutil.copytree(synth_dir, tmp_path / "data")
    out = tmp_path / "run"
    cfg = _cfg(tmp_path, tiny_model_dir, data, out)
    _crash_at_step_2(monkeypatch, cfg)
    work = partial_path(out)
    recorded = json.loads((work / "run_info.json").read_text())["inputs"]
    assert set(recorded) == {"model.path", "data.source"} and "forget10.json" in recorded["data.source"]["files"]
    cache = (work / "reference_logp.safetensors").read_bytes()

    forget = data / "forget10.json"
    lines = forget.read_text().splitlines()
    forget.write_text("\n".join([lines[0].replace("Darius", "Marius"), *lines[1:]]) + "\n")
    (data / "notes.txt").write_text("added after the start: not an input the run read")
    capsys.readouterr()
    assert main(["unlearn", "--config", cfg, "--resume"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "--resume: inputs changed since the run started (data.source: forget10.json changed (sha256 " in err
    assert "pass --allow-config-change to accept" in err
    assert (work / "reference_logp.safetensors").read_bytes() == cache  # nothing touched

    with pytest.warns(UserWarning, match="computed again"):  # a resume that fails ...
        _crash_at_step_2(monkeypatch, cfg, "--resume", "--allow-config-change")
    assert "resumed" not in json.loads((work / "run_info.json").read_text())  # ... leaves no "resumed" entry

    with pytest.warns(UserWarning, match="data.source changed: reference_logp.safetensors is computed again"):
        assert main(["unlearn", "--config", cfg, "--resume", "--allow-config-change"]) == 0
    info = json.loads((out / "run_info.json").read_text())
    [entry] = info["resumed"]
    assert list(entry["input_changes"]) == ["data.source"] and entry["input_changes"]["data.source"][0].startswith(
        "forget10.json changed")
    assert (out / "reference_logp.safetensors").read_bytes() != cache  # the first row's answer is new
    assert info["inputs"]["data.source"]["files"]["forget10.json"] != recorded["data.source"]["files"]["forget10.json"]


@pytest.mark.parametrize(("saved", "new", "key"), [
    ({"objective": "ga"}, {"objective": "npo"}, "objective"),
    ({"aggregator": "dv"}, {"aggregator": "group"}, "aggregator"),
    ({"retain": "nll"}, {"retain": None}, "retain"),
    ({"retain_aggregator": "dv"}, {"retain_aggregator": None}, "retain_aggregator"),
    ({"objective": "npo"}, {"objective": {"name": "npo", "beta": 0.5}}, "objective.beta"),
])
def test_resume_sees_a_component_changed_through_its_short_form(saved, new, key):
    """``objective: ga`` → ``npo`` changes the method: written as a string, it is still a change (it was missed)."""
    from baldro.training.config_diff import config_changes
    from baldro.training.schema import UnlearnConfig

    base = {"model": {"path": "org/m"}, "output_dir": "run"}
    a, b = UnlearnConfig.resolve({**base, **saved}), UnlearnConfig.resolve({**base, **new})
    changes = config_changes(a, b)
    assert key in changes, changes
    assert config_changes(a, UnlearnConfig.resolve({**base, **saved})) == {}
