"""Real processes on one run folder: two runs racing for it, and a run killed with SIGKILL then rerun / resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

import baldro
from baldro.cli.main import main
from baldro.runfolder import lock_path, partial_path

PAUSED = Path(__file__).with_name("paused_cli.py")
TRAINING = {"per_device_train_batch_size": 4, "learning_rate": 1e-2, "save_strategy": "no", "disable_tqdm": True,
            "use_cpu": True, "logging_strategy": "no", "seed": 0}


def _config(tmp_path, model, data, out, **training):
    cfg = {
        "model": {"path": str(model)},
        "data": {"source": str(data), "max_length": 96},
        "objective": {"name": "npo", "beta": 0.1},
        "aggregator": {"name": "dv", "beta": 2.0},
        "retain": {"name": "nll", "weight": 1.0},
        "training": {**TRAINING, **training},
        "output_dir": str(out),
    }
    path = tmp_path / f"cfg_{out.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _start_paused(tmp_path, step, args, in_save=False):
    marker, go = tmp_path / f"paused{step}", tmp_path / f"go{step}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(baldro.__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    flags = ["--in-save"] if in_save else []
    proc = subprocess.Popen([sys.executable, str(PAUSED), str(step), str(marker), str(go), *flags, "--", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the paused run did not reach step {step}: {proc.communicate()[1][-2000:]}")
        time.sleep(0.05)
    return proc, go


def _rows(folder):
    return [json.loads(line) for line in (folder / "per_sample.jsonl").read_text().splitlines()]


def test_two_processes_racing_for_one_folder_leave_one_complete_run(tiny_model_dir, synth_dir, tmp_path):
    out = tmp_path / "run"
    cfg = _config(tmp_path, tiny_model_dir, synth_dir, out, max_steps=2)
    first, go = _start_paused(tmp_path, 1, ["unlearn", "--config", cfg])
    second = subprocess.run([sys.executable, "-m", "baldro.cli.main", "unlearn", "--config", cfg,
                             "--set", "training.seed=1"], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(Path(baldro.__file__).parents[1])})
    go.write_text("")
    _, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err[-2000:]
    assert second.returncode == 2
    error_lines = [line for line in second.stderr.splitlines() if line.startswith("baldro: error")]
    assert len(error_lines) == 1 and f"is in use by pid {first.pid} (started " in error_lines[0]
    assert yaml.safe_load((out / "config.yaml").read_text())["training"]["seed"] == 0  # the first run's config
    info = json.loads((out / "run_info.json").read_text())
    assert info["pid"] == first.pid and info["seed"] == 0 and "finished" in info
    assert len(_rows(out)) == 8 and (out / "reference_logp.safetensors").is_file()
    assert not partial_path(out).exists() and not lock_path(out).exists()


SAVING = {"max_steps": 4, "save_strategy": "steps", "save_steps": 2}


@pytest.fixture(scope="module")
def whole(tiny_model_dir, synth_dir, tmp_path_factory):
    """The uninterrupted run (4 steps, checkpoints at 2 and 4) the killed and resumed runs must reproduce."""
    tmp = tmp_path_factory.mktemp("whole")
    assert main(["unlearn", "--config", _config(tmp, tiny_model_dir, synth_dir, tmp / "whole", **SAVING)]) == 0
    return tmp / "whole"


def _same_weights(a_dir, b_dir):
    a, b = load_file(str(a_dir / "model.safetensors")), load_file(str(b_dir / "model.safetensors"))
    return max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5


def test_kill_9_then_a_plain_rerun_is_refused_and_resume_gives_the_same_run(tiny_model_dir, synth_dir, tmp_path,
                                                                           capsys, whole):
    training = SAVING
    out = tmp_path / "run"
    cfg = _config(tmp_path, tiny_model_dir, synth_dir, out, **training)
    proc, _ = _start_paused(tmp_path, 2, ["unlearn", "--config", cfg])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    work = partial_path(out)
    assert (work / "checkpoint-2").is_dir() and json.loads(lock_path(out).read_text())["pid"] == proc.pid
    before = sorted(p.relative_to(work) for p in work.rglob("*"))

    capsys.readouterr()
    assert main(["unlearn", "--config", cfg]) == 2
    err = capsys.readouterr().err
    error_lines = [line for line in err.splitlines() if line.startswith("baldro: error")]
    assert len(error_lines) == 1 and "use --resume to continue or --overwrite to start again" in error_lines[0]
    assert sorted(p.relative_to(work) for p in work.rglob("*")) == before  # nothing deleted

    with pytest.warns(UserWarning, match=f"taking over the lock left by pid {proc.pid}"):
        assert main(["unlearn", "--config", cfg, "--resume"]) == 0
    assert _same_weights(whole, out)
    assert [(r["step"], r["index"]) for r in _rows(out)] == [(r["step"], r["index"]) for r in _rows(whole)]
    info = json.loads((out / "run_info.json").read_text())
    assert [r["from"] for r in info["resumed"]] == ["checkpoint-2"] and info["resumed"][0]["config_changes"] == {}
    assert not lock_path(out).exists()


def test_kill_9_during_a_checkpoint_save_resumes_from_the_last_complete_one(tiny_model_dir, synth_dir, tmp_path,
                                                                           capsys, whole):
    out = tmp_path / "run"
    cfg = _config(tmp_path, tiny_model_dir, synth_dir, out, **SAVING)
    proc, _ = _start_paused(tmp_path, 4, ["unlearn", "--config", cfg], in_save=True)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    work = partial_path(out)
    torn = work / "checkpoint-4"
    assert (torn / "model.safetensors").is_file() and not (torn / "trainer_state.json").exists()  # cut mid-save

    capsys.readouterr()
    assert main(["unlearn", "--config", cfg]) == 2  # checkpoint-2 is complete: a plain rerun points to --resume
    assert "left checkpoint-2 in" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="checkpoint-4 is incomplete .no trainer_state.json: the save was "
                                         "interrupted.: removed; resuming from checkpoint-2"):
        assert main(["unlearn", "--config", cfg, "--resume"]) == 0
    assert _same_weights(whole, out)
    assert [(r["step"], r["index"]) for r in _rows(out)] == [(r["step"], r["index"]) for r in _rows(whole)]
    assert [r["from"] for r in json.loads((out / "run_info.json").read_text())["resumed"]] == ["checkpoint-2"]
    assert (out / "checkpoint-4" / "trainer_state.json").is_file()  # saved again, completely
    assert not partial_path(out).exists() and not lock_path(out).exists()


@pytest.mark.slow
def test_two_ranks_share_one_run_folder_and_rank_0_holds_the_lock(tiny_model_dir, synth_dir, tmp_path):
    import shutil

    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun is not None
    out = tmp_path / "run"
    cfg = _config(tmp_path, tiny_model_dir, synth_dir, out, max_steps=2)
    env = {**os.environ, "PYTHONPATH": str(Path(baldro.__file__).parents[1]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "baldro.cli.main", "unlearn",
                           "--config", cfg], capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    info = json.loads((out / "run_info.json").read_text())
    assert info["command"] == "unlearn" and "finished" in info
    assert len(_rows(out)) == 16  # both ranks' micro-batches logged
    assert not partial_path(out).exists() and not lock_path(out).exists()
