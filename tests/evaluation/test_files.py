"""Result-file helpers: atomic JSON writes with normal permissions, the non-empty --out guard."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from baldro.errors import ConfigError, DataError
from baldro.evaluation.files import prepare_out_dir, read_eval_json, write_json


def test_write_json_atomic_plain_numbers_and_permissions(tmp_path):
    path = write_json(tmp_path / "a" / "X_EVAL.json", {"m": {"agg_value": np.float32(0.5), "v": np.arange(2)}})
    assert json.loads(path.read_text()) == {"m": {"agg_value": 0.5, "v": [0, 1]}}
    assert [p.name for p in path.parent.iterdir()] == ["X_EVAL.json"]  # no temp file left
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~mask  # not mkstemp's 0600


def test_prepare_out_dir_refuses_non_empty(tmp_path):
    out = tmp_path / "o"
    assert prepare_out_dir(out) == out and out.is_dir()
    prepare_out_dir(out)  # empty: fine
    (out / "old.json").write_text("{}")
    with pytest.raises(ConfigError, match="--overwrite"):
        prepare_out_dir(out)
    assert prepare_out_dir(out, overwrite=True) == out


def test_read_eval_json_errors_name_the_file(tmp_path):
    bad = tmp_path / "TOFU_EVAL.json"
    bad.write_text("[1, 2]")
    with pytest.raises(DataError, match="TOFU_EVAL.json"):
        read_eval_json(bad)
    with pytest.raises(DataError, match="not found"):
        read_eval_json(tmp_path / "missing.json")
