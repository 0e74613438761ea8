"""Files read back are checked: a torn safetensors file or JSON Lines file is one clear line, never a traceback."""

from __future__ import annotations

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
