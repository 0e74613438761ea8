"""A full disk, a read-only folder or Ctrl-C end in one line and the right exit code (2, or 130 for Ctrl-C), and
leave nothing half-written. The full and read-only disks are real tmpfs mounts where this process may mount them
(root); the same cases run everywhere with a monkeypatched writer that raises the OS error."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import baldro
from baldro.cli.failures import environment_error
from baldro.cli.main import INTERRUPTED, main
from baldro.runfolder import checkpoint_problem, last_checkpoint, lock_path, partial_path

PAUSED = Path(__file__).parent / "training" / "paused_cli.py"


@pytest.fixture
def small_disk(tmp_path):
    """``mount(options)``: a fresh tmpfs folder under tmp_path (unmounted afterwards); skips where mounting is not
    allowed."""
    mounted = []

    def mount(options: str) -> Path:
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()[:80]}); the monkeypatched tests "
                        "cover the same cases")
        mounted.append(folder)
        return folder

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the monkeypatched tests cover the same cases")
    yield mount
    for folder in mounted:
        subprocess.run(["umount", str(folder)], check=False)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and "it/s]" not in line]
    assert len(lines) == 1 and lines[0].startswith("baldro: error: "), err[-2000:]
    return lines[0]


def test_a_full_tmpfs_ends_every_writer_in_one_line_and_leaves_nothing(small_disk, synth_dir, tiny_model_dir,
                                                                       tmp_path, capsys):
    disk = small_disk("size=256k")
    assert main(["data", "synth", "--out", str(disk / "synth")]) == 2
    assert "No space left on device; free some space or write elsewhere" in _one_error_line(capsys)
    assert main(["model", "tiny", "--data", str(synth_dir), "--out", str(disk / "tiny")]) == 2
    line = _one_error_line(capsys)
    assert "writing a safetensors file failed: No space left on device; free some space" in line
    assert os.listdir(disk) == []  # no staged folder, no lock

    disk = small_disk("size=6m")  # one checkpoint of the tiny model fits, the second does not
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(json.dumps({
        "model": {"path": str(tiny_model_dir)}, "data": {"source": str(synth_dir), "max_length": 96},
        "training": {"max_steps": 2, "per_device_train_batch_size": 4, "use_cpu": True, "save_strategy": "steps",
                     "save_steps": 1, "disable_tqdm": True, "logging_strategy": "no"},
        "output_dir": str(disk / "run")}))
    assert main(["unlearn", "--config", str(cfg)]) == 2
    assert "writing a file with torch.save failed (the disk is probably full" in _one_error_line(capsys)
    work = partial_path(disk / "run")  # checkpoint-1 fitted and is kept to resume from; checkpoint-2 did not
    assert os.listdir(disk) == [work.name] and last_checkpoint(work) == work / "checkpoint-1"
    assert checkpoint_problem(work / "checkpoint-2") == "no trainer_state.json: the save was interrupted"


def test_a_read_only_tmpfs_is_one_line(small_disk, synth_dir, capsys):
    disk = small_disk("size=64k,ro")
    assert main(["data", "synth", "--out", str(disk / "synth")]) == 2
    assert "Read-only file system; write to a writable folder (--out / output_dir)" in _one_error_line(capsys)
    assert main(["eval", "tofu", "--model", "m", "--data", str(synth_dir), "--out", str(disk / "ev")]) == 2
    assert "Read-only file system" in _one_error_line(capsys)


@pytest.mark.parametrize("code, text", [(errno.ENOSPC, "No space left on device; free some space"),
                                        (errno.EROFS, "Read-only file system; write to a writable folder"),
                                        (errno.EACCES, "Permission denied; write to a folder you may write to")])
def test_a_writer_that_meets_an_os_error_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys, code, text):
    from baldro.data.synth import writer

    def failing(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(writer, "_write_jsonl", failing)
    out = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(out)]) == 2
    line = _one_error_line(capsys)
    assert f"writing --out {out}: {text}" in line
    assert os.listdir(tmp_path) == []


def test_library_write_failures_are_recognised_and_others_are_not():
    class SafetensorError(Exception):
        pass

    assert environment_error(OSError(errno.ENOSPC, "No space left on device", "/x/f.json")) == (
        "/x/f.json: No space left on device; free some space or write elsewhere (--out / output_dir)")
    assert environment_error(SafetensorError("Error while serializing: I/O error: No space left on device "
                                             "(os error 28)")).startswith("writing a safetensors file failed")
    assert environment_error(RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4990848 vs "
                                          "4990736")).startswith("writing a file with torch.save failed")
    assert environment_error(RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed"))
    assert environment_error(RuntimeError("shape mismatch")) is None
    assert environment_error(ValueError("bad")) is None


def test_ctrl_c_in_a_real_run_exits_130_with_one_line_and_leaves_nothing(tiny_model_dir, synth_dir, tmp_path):
    out = tmp_path / "run"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(json.dumps({
        "model": {"path": str(tiny_model_dir)}, "data": {"source": str(synth_dir), "max_length": 96},
        "training": {"max_steps": 3, "per_device_train_batch_size": 4, "use_cpu": True, "save_strategy": "no",
                     "disable_tqdm": True, "logging_strategy": "no"},
        "output_dir": str(out)}))
    marker, go = tmp_path / "paused", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(Path(baldro.__file__).parents[1]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(PAUSED), "1", str(marker), str(go), "--", "unlearn", "--config",
                             str(cfg)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
        time.sleep(0.05)
    assert partial_path(out).is_dir()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "Traceback" not in err and err.strip().splitlines()[-1] == INTERRUPTED
    assert sorted(os.listdir(tmp_path)) == ["cfg.yaml", "paused"]  # no work folder, no lock
    assert not lock_path(out).exists()
