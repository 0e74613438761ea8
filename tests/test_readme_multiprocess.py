"""docs/scaling.md's CPU multi-process commands run as written (torchrun and ``accelerate launch --multi_gpu``, 2 gloo
processes), and its launcher configs are valid accelerate / DeepSpeed configs that save the full model."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCALING = ROOT / "docs" / "scaling.md"


def readme_blocks() -> list[list[str]]:
    """The commands of the bash blocks of the "Several processes" section (continuation lines joined)."""
    text = SCALING.read_text()
    section = re.split(r"\n##+ ", text.split("## Several processes", 1)[1], maxsplit=1)[0]
    blocks = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        lines = block.replace("\\\n", " ").splitlines()
        blocks.append([" ".join(line.split()) for line in lines if line.strip() and not line.startswith("#")])
    return blocks


def test_the_section_has_cpu_and_gpu_commands_for_every_engine():
    cpu, gpu = readme_blocks()
    assert [c.split()[0] for c in cpu] == ["torchrun", "accelerate"] and "--multi_gpu" in cpu[1]
    assert all("configs/tiny_" in c for c in cpu)  # presets that set training.use_cpu: true
    joined = " ".join(gpu)
    for name in ("accelerate_fsdp2.yaml", "training.fsdp=true", "accelerate_zero3.yaml"):
        assert name in joined
    for word in re.findall(r"configs/launch/[\w.]+\.(?:yaml|json)", SCALING.read_text()):
        assert (ROOT / word.rstrip(")`.,;:")).is_file(), word


@pytest.mark.parametrize("name", ["fsdp1", "fsdp2", "zero2", "zero3"])
def test_launch_configs_are_accelerate_configs_that_save_the_full_model(name):
    from accelerate.commands.config.config_args import load_config_from_file

    from baldro.training.sharding import full_save_problem

    config = load_config_from_file(str(ROOT / "configs" / "launch" / f"accelerate_{name}.yaml"))
    if name.startswith("fsdp"):
        assert config.distributed_type == "FSDP" and config.fsdp_config["fsdp_version"] == int(name[-1])
        assert full_save_problem(config.fsdp_config["fsdp_state_dict_type"]) is None
    else:
        ds_file = ROOT / config.deepspeed_config["deepspeed_config_file"]
        ds = json.loads(ds_file.read_text())
        assert config.distributed_type == "DEEPSPEED" and ds["zero_optimization"]["stage"] == int(name[-1])
        assert full_save_problem(deepspeed_config=ds) is None


def run(command: str, cwd: Path) -> None:
    argv = shlex.split(command)
    argv[0] = str(Path(sys.executable).parent / argv[0])  # the launchers of this environment
    argv += ["--set", "training.max_steps=2"]  # shorter than the preset's 5 epochs; nothing else changed
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"timed out: {command}")
    assert proc.returncode == 0, err[-3000:]


@pytest.mark.slow
def test_cpu_commands_run_as_written_on_two_processes(tmp_path, tiny_model_dir, synth_dir):
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    (tmp_path / "demo_out" / "target").mkdir(parents=True)
    (tmp_path / "demo_out" / "target" / "model").symlink_to(tiny_model_dir)
    (tmp_path / "demo_out" / "data").symlink_to(synth_dir)
    cpu, _ = readme_blocks()
    for command in cpu:
        run(command, tmp_path)
        out = tmp_path / re.search(r"output_dir=(\S+)", command).group(1)
        assert (out / "model.safetensors").is_file(), command
        rows = [json.loads(line) for line in (out / "per_sample.jsonl").read_text().splitlines()]
        # the preset's batch is 8 per device: step 1 logs both processes' rows (the sampler pads 10 rows to 16)
        assert sum(r["step"] == 1 for r in rows) == 16, command
