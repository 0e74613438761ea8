"""Finished outputs are readable by the group and others as the umask allows (0755 folders, 0644 files under umask
022), although ``tempfile.mkdtemp`` makes 0700 folders and safetensors writes 0600 files."""

from __future__ import annotations

import os
import stat

import pytest
import torch
from safetensors.torch import save_file

from baldro.cli.main import main
from baldro.runfolder import close_run, open_run, plan_run, staged


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def _modes(root):
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


def _write(folder):
    (folder / "sub").mkdir(mode=0o700)
    save_file({"w": torch.zeros(2)}, str(folder / "sub" / "model.safetensors"))  # 0600
    script = folder / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o700)


def test_a_staged_output_is_readable_as_the_umask_allows(tmp_path, umask):
    with staged(tmp_path / "out") as tmp:
        _write(tmp)
        assert _modes(tmp)["sub/model.safetensors"] == 0o600  # what the writer left
    assert _modes(tmp_path / "out") == {".": 0o755, "sub": 0o755, "sub/model.safetensors": 0o644,
                                          "run.sh": 0o744}  # read bits only: no file becomes executable
    umask(0o077)
    with staged(tmp_path / "private") as tmp:
        _write(tmp)
    assert _modes(tmp_path / "private") == {".": 0o700, "sub": 0o700, "sub/model.safetensors": 0o600, "run.sh": 0o700}


def test_a_finished_run_folder_is_readable_as_the_umask_allows(tmp_path, umask):
    run = plan_run(tmp_path / "run")
    open_run(run)
    _write(run.work)
    close_run(run)
    assert _modes(tmp_path / "run")["sub/model.safetensors"] == 0o644 and _modes(tmp_path / "run")["sub"] == 0o755


def test_model_tiny_writes_group_readable_weights(synth_dir, tmp_path, umask):
    assert main(["model", "tiny", "--data", str(synth_dir), "--out", str(tmp_path / "tiny")]) == 0
    modes = _modes(tmp_path / "tiny")
    assert modes["."] == 0o755 and modes["model.safetensors"] == 0o644
