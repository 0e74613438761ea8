"""``baldro data synth`` and ``baldro model tiny``: write complete folders, refuse non-empty ones, exit 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from baldro.cli.main import main


def synth(argv: list[str]) -> int:
    return main(["data", "synth", *argv])


def test_data_synth_writes_refuses_and_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "bench"
    assert synth(["--out", str(out), "--authors", "10", "--questions", "3", "--seed", "1"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["rows"]["forget10"] == 3 and (out / "full.json").is_file()
    before = (out / "full.json").read_bytes()
    assert synth(["--out", str(out), "--authors", "10", "--questions", "3", "--seed", "2"]) == 2
    assert "not empty" in capsys.readouterr().err and (out / "full.json").read_bytes() == before
    assert synth(["--out", str(out), "--authors", "10", "--questions", "4", "--uniform", "--overwrite"]) == 0
    assert json.loads((out / "META.json").read_text())["uniform"] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench"]  # no temporary folders left behind


def test_data_synth_bad_sizes_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert synth(["--out", str(tmp_path / "x"), "--authors", "1"]) == 2
    assert "--authors" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_model_tiny_cli(synth_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "tiny"
    assert main(["model", "tiny", "--data", str(synth_dir), "--out", str(out), "--layers", "1", "--hidden", "32"]) == 0
    assert json.loads(capsys.readouterr().out)["layers"] == 1
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.decode(tok("a fictitious author")["input_ids"]) == "a fictitious author"
    assert main(["model", "tiny", "--data", str(synth_dir), "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["model", "tiny", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "t2")]) == 2
    assert "not a folder" in capsys.readouterr().err and not (tmp_path / "t2").exists()
    assert main(["model", "tiny", "--data", str(synth_dir), "--out", str(tmp_path / "t3"), "--hidden", "40"]) == 2
    assert "--hidden" in capsys.readouterr().err and not (tmp_path / "t3").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]
