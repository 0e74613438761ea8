"""Files read back are checked: a torn safetensors file or JSON Lines file is one clear line, never a traceback."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from safetensors.torch import save_file

from baldro.errors import DataError
from baldro.readback import check_safetensors, read_jsonl, safetensors_problem


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"a": torch.zeros(3), "b": torch.ones(2, 2)}, str(path))  # 12 + 16 bytes of data after the header
    return path


def test_a_whole_safetensors_file_passes_and_every_cut_is_named(weights):
    data = weights.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    assert len(data) == 8 + n + 28 and safetensors_problem(weights) is None
    cases = {
        b"": "empty (0 bytes)",
        data[:5]: "truncated (5 bytes)",
        data[:40]: f"truncated or not a safetensors file (header of {n} bytes, file of 40 bytes)",
        data[:-1]: f"truncated: {len(data) - 1} bytes, its header needs {len(data)}",
        data + b"\0": f"has extra bytes: {len(data) + 1} bytes, its header needs {len(data)}",
        struct.pack("<Q", 4) + b"nope": "the header is not JSON (not a safetensors file, or damaged)",
    }
    for content, problem in cases.items():
        weights.write_bytes(content)
        assert safetensors_problem(weights) == problem
    assert safetensors_problem(weights.with_name("gone.safetensors")) == "missing"
    with pytest.raises(DataError, match=r"model.safetensors: the header is not JSON .*; delete it"):
        check_safetensors(weights, "delete it")


def test_a_torn_jsonl_tail_is_dropped_only_when_asked_and_other_damage_is_an_error(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert read_jsonl(path) == ([{"a": 1}, {"a": 2}], None)
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": ')
    assert read_jsonl(path, drop_torn_tail=True) == ([{"a": 1}, {"a": 2}], "line 3 has no end of line (cut off by a crash)")
    with pytest.raises(DataError, match="rows.jsonl: line 3 is cut off"):
        read_jsonl(path)
    path.write_text('{"a": 1}\n{"a": \n')  # a torn last line that got its newline
    assert read_jsonl(path, drop_torn_tail=True)[1].startswith("line 2 is not JSON")
    path.write_text('{"a": \n{"a": 2}\n')  # damage before the end is never a torn tail
    with pytest.raises(DataError, match="rows.jsonl: line 1: malformed JSON"):
        read_jsonl(path, drop_torn_tail=True)


def test_resume_drops_a_torn_per_sample_tail_with_a_warning_and_refuses_other_damage(tmp_path):
    from baldro.training.per_sample_log import PerSampleLog

    log = PerSampleLog(tmp_path / "per_sample.jsonl")
    rows = [json.dumps({"step": s, "index": i, "loss": 0.5}) for s in (1, 2, 3) for i in (0, 1)]
    log.path.write_text("\n".join(rows) + '\n{"step": 4, "ind')  # kill -9 in the middle of a write
    with pytest.warns(UserWarning, match=r"per_sample.jsonl: line 7 has no end of line \(cut off by a crash\): dropped"):
        log.truncate_after(2)
    assert log.path.read_text() == "\n".join(rows[:4]) + "\n"
    log.path.write_text(rows[0] + "\n{oops\n" + rows[1] + "\n")
    with pytest.raises(DataError, match="per_sample.jsonl: line 2: malformed JSON"):
        log.truncate_after(2)


def test_report_on_a_damaged_per_sample_log_is_one_line_exit_2(tmp_path, capsys):
    from baldro.cli.main import main

    run = tmp_path / "run"
    (run / "eval").mkdir(parents=True)
    (run / "eval" / "TOFU_SUMMARY.json").write_text(json.dumps({"forget_quality": 0.5, "model_utility": 0.4}))
    (run / "per_sample.jsonl").write_text('{"step": 1, "index": 0, "loss": 1.0, "weight": 1.0, "nll": 1.0}\n{"st')
    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("baldro: error: ") and len(err.strip().splitlines()) == 1 and "line 2 is cut off" in err
    assert not (tmp_path / "rep").exists()


def test_a_damaged_reference_cache_is_named(tmp_path):
    from baldro.training.reference_cache import ReferenceCache

    path = tmp_path / "reference_logp.safetensors"
    ReferenceCache({"forget": torch.tensor([-1.0, -2.0])}).save(path)
    assert ReferenceCache.load(path).tables["forget"].tolist() == [-1.0, -2.0]
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"reference_logp.safetensors: empty \(0 bytes\); delete it and it is computed "
                                        "again from the initial model"):
        ReferenceCache.load(path)
    save_file({"weights": torch.zeros(2, 2)}, str(path))
    with pytest.raises(DataError, match="holds a tensor 'weights', expected only forget, idk"):
        ReferenceCache.load(path)


def test_a_truncated_model_file_is_one_line_exit_2_before_any_work(tiny_model_dir, synth_dir, tmp_path, capsys):
    import shutil

    from baldro.cli.main import main

    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    data = (model / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes(data[: len(data) // 2])
    out = tmp_path / "eval"
    assert main(["eval", "tofu", "--model", str(model), "--data", str(synth_dir), "--out", str(out),
                 "--max-items", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert f"model.path {model}: model.safetensors is damaged (truncated: {len(data) // 2} bytes, its header needs " \
           f"{len(data)}); copy or save the model again" in err
    assert not out.exists()


def test_resume_drops_a_torn_trajectory_tail_with_a_warning(tmp_path):
    from baldro.evaluation.trajectory import TrajectoryCallback

    curve = object.__new__(TrajectoryCallback)  # only its file handling is exercised here
    curve.last_step = None
    path = tmp_path / "trajectory.jsonl"
    path.write_text('{"step": 2, "forget_quality": 0.1}\n{"step": 4, "forget_quality": 0.2}\n{"step": 6, "fo')
    with pytest.warns(UserWarning, match="trajectory.jsonl: line 3 has no end of line"):
        curve._truncate_after(path, 4)
    assert path.read_text() == '{"step": 2, "forget_quality": 0.1}\n{"step": 4, "forget_quality": 0.2}\n'
    assert curve.last_step == 4
    path.write_text('{"forget_quality": 0.1}\n')
    with pytest.raises(DataError, match="trajectory.jsonl: row 1 has no integer 'step'"):
        curve._truncate_after(path, 4)


def test_a_write_into_a_missing_folder_names_the_file_asked_for_not_the_temporary_one(tmp_path, capsys):
    from baldro.cli.main import main
    from baldro.readback import replace_text

    target = tmp_path / "missing" / "schema.json"
    with pytest.raises(FileNotFoundError) as err:
        replace_text(target, "{}")
    assert err.value.filename == str(target)
    assert main(["config", "schema", "--out", str(target)]) == 2
    message = capsys.readouterr().err.strip()
    assert message.endswith(f"{target}: No such file or directory") and ".tmp" not in message
    assert not (tmp_path / "missing").exists()
