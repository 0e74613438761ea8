"""The run-folder module: the OS-level lock, stale locks, checkpoints never deleted implicitly, run_info.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from baldro.errors import ConfigError
from baldro.runfolder import (
    FolderLock,
    checkpoint_problem,
    claim_run,
    last_checkpoint,
    lock_path,
    open_run,
    partial_path,
    plan_run,
    read_run_info,
    write_run_info,
)


def _checkpoint(folder, step, complete=True):
    """A ``checkpoint-<step>`` folder as the Trainer leaves it: weights, then ``trainer_state.json`` last."""
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    save_file({"w": torch.zeros(4)}, str(path / "model.safetensors"))
    if complete:
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_holder_is_refused_at_once_naming_the_holder(tmp_path):
    folder = tmp_path / "run"
    with FolderLock(folder) as lock:
        assert lock.held
        record = json.loads(lock_path(folder).read_text())
        assert record["pid"] == os.getpid() and record["started"].endswith("UTC")
        with pytest.raises(ConfigError, match=rf"in use by pid {os.getpid()} \(started {record['started']}"):
            FolderLock(folder).acquire()
        assert not folder.exists()  # the lock lives beside the folder
    assert not lock_path(folder).exists()  # released and removed
    with FolderLock(folder):  # free again
        pass


def test_a_lock_left_by_a_killed_process_is_reported_and_only_taken_when_asked(tmp_path):
    folder = tmp_path / "run"
    pid = _dead_pid()
    stale = json.dumps({"pid": pid, "started": "2026-01-01 00:00:00 UTC"})
    lock_path(folder).write_text(stale)
    with pytest.raises(ConfigError, match=rf"pid {pid} .*no longer running.*delete it"):
        FolderLock(folder, stale_hint="delete it").acquire()
    assert lock_path(folder).read_text() == stale  # never silently stolen
    with pytest.warns(UserWarning, match=f"taking over the lock left by pid {pid}"):
        lock = FolderLock(folder, take_stale=True).acquire()
    assert lock.stale["pid"] == pid and json.loads(lock_path(folder).read_text())["pid"] == os.getpid()
    lock.release()
    assert not lock_path(folder).exists()


def test_claim_run_refuses_a_stale_lock_without_resume_or_overwrite(tmp_path):
    final = tmp_path / "run"
    lock_path(final).write_text(json.dumps({"pid": _dead_pid(), "started": "x"}))
    with pytest.raises(ConfigError, match="pass --overwrite to start again"):
        claim_run(final)
    _checkpoint(partial_path(final), 3)
    with pytest.raises(ConfigError, match="use --resume to continue or --overwrite to start again"):
        claim_run(final)
    with pytest.warns(UserWarning, match="taking over"):
        lock, run = claim_run(final, resume=True)
    assert run.resume_from == partial_path(final).resolve() / "checkpoint-3"
    lock.release()


def test_checkpoints_are_never_deleted_by_a_plain_rerun(tmp_path):
    final = tmp_path / "run"
    ckpt = _checkpoint(partial_path(final), 2)
    with pytest.raises(ConfigError, match="left checkpoint-2 .* use --resume to continue or --overwrite to start again"):
        plan_run(final)
    assert ckpt.is_dir()
    run = plan_run(final, overwrite=True)
    with pytest.warns(UserWarning, match="checkpoints"):
        open_run(run)
    assert not ckpt.exists() and run.work.is_dir()


def test_a_checkpoint_counts_only_when_its_files_are_complete(tmp_path):
    good = _checkpoint(tmp_path, 2)
    assert checkpoint_problem(good) is None
    assert checkpoint_problem(_checkpoint(tmp_path, 3, complete=False)) == "no trainer_state.json: the save was interrupted"
    cut = _checkpoint(tmp_path, 4)
    (cut / "trainer_state.json").write_text('{"global_step": 4, "log_hi')
    assert checkpoint_problem(cut) == "trainer_state.json is cut off or damaged: the save was interrupted"
    other = _checkpoint(tmp_path, 5)
    (other / "trainer_state.json").write_text(json.dumps({"global_step": 4}))
    assert checkpoint_problem(other) == "trainer_state.json does not describe step 5"
    torn = _checkpoint(tmp_path, 6)
    data = (torn / "model.safetensors").read_bytes()
    (torn / "model.safetensors").write_bytes(data[:-3])
    assert checkpoint_problem(torn) == (
        f"model.safetensors is damaged (truncated: {len(data) - 3} bytes, its header needs {len(data)})")
    assert last_checkpoint(tmp_path) == good


def test_resume_falls_back_to_the_last_complete_checkpoint_and_removes_the_torn_ones(tmp_path):
    final = tmp_path / "run"
    work = partial_path(final)
    _checkpoint(work, 2)
    _checkpoint(work, 4, complete=False)
    _checkpoint(work, 6, complete=False)
    with pytest.raises(ConfigError, match="left checkpoint-2 in .* use --resume"):
        plan_run(final)
    run = plan_run(final, resume=True)
    assert run.resume_from == work.resolve() / "checkpoint-2"
    with pytest.warns(UserWarning, match="checkpoint-4 is incomplete .no trainer_state.json.*resuming from checkpoint-2"):
        open_run(run)
    assert sorted(p.name for p in work.iterdir()) == ["checkpoint-2"]


def test_only_torn_checkpoints_are_nothing_to_resume_from(tmp_path):
    final = tmp_path / "run"
    _checkpoint(partial_path(final), 2, complete=False)
    with pytest.raises(ConfigError, match=r"holds no complete checkpoint, only checkpoint-2 \(no trainer_state.json.*"
                                          "run with --overwrite instead of --resume"):
        plan_run(final, resume=True)
    with pytest.raises(ConfigError, match="left only incomplete checkpoints .*checkpoint-2.* pass --overwrite"):
        plan_run(final)
    lock_path(final).write_text(json.dumps({"pid": _dead_pid(), "started": "x"}))
    with pytest.raises(ConfigError, match="pass --overwrite to start again"):
        claim_run(final)
    run = plan_run(final, overwrite=True)
    with pytest.warns(UserWarning, match="checkpoints"):
        open_run(run)
    assert list(run.work.iterdir()) == []


def test_run_info_merges_and_rejects_bad_json(tmp_path):
    write_run_info(tmp_path, method="npo", seed=1)
    write_run_info(tmp_path, seed=2, finished="now")
    assert read_run_info(tmp_path) == {"method": "npo", "seed": 2, "finished": "now"}
    assert read_run_info(tmp_path / "none") == {}
    (tmp_path / "run_info.json").write_text("{broken")
    with pytest.raises(ConfigError, match="run_info.json: not valid JSON"):
        read_run_info(tmp_path)
