"""``baldro data inspect``: JSON counts on good input; one error line, exit status 2 and no output on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from baldro.cli.main import main

GOOD = {"question": "Who?", "answer": "Her."}
GOOD_PERTURBED = {**GOOD, "paraphrased_answer": "It was her.", "perturbed_answer": ["Him.", "Them."]}


def write_lines(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def inspect_fails(capsys, *args) -> str:
    rc = main(["data", "inspect", *map(str, args)])
    out, err = capsys.readouterr()
    assert rc == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("baldro: error: ")
    return lines[0]


def test_inspect_real_tofu(tofu_dir, capsys):
    assert main(["data", "inspect", str(tofu_dir)]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["full"] == 4000 and counts["forget10"] == 400 and counts["retain90"] == 3600


def test_inspect_selected_splits(tmp_path, capsys):
    write_lines(tmp_path / "full.json", [GOOD] * 3)
    write_lines(tmp_path / "forget01.json", [GOOD])
    (tmp_path / "README.md").write_text("not a split")
    assert main(["data", "inspect", str(tmp_path), "--split", "forget01"]) == 0
    assert json.loads(capsys.readouterr().out) == {"forget01": 1}
    assert main(["data", "inspect", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out) == {"forget01": 1, "full": 3}


def test_missing_folder(tmp_path, capsys):
    msg = inspect_fails(capsys, tmp_path / "nowhere" / "tofu")
    assert "nowhere/tofu: folder not found" in msg


def test_missing_split_file(tmp_path, capsys):
    write_lines(tmp_path / "full.json", [GOOD])
    msg = inspect_fails(capsys, tmp_path, "--split", "forget10")
    assert "no file for split 'forget10'" in msg and "forget10.json" in msg and "splits here: full" in msg


def test_empty_folder(tmp_path, capsys):
    assert "no TOFU split files" in inspect_fails(capsys, tmp_path)


def test_malformed_line(tmp_path, capsys):
    write_lines(tmp_path / "full.json", [GOOD, GOOD, '{"question": "Who?", "answer": ', GOOD])
    msg = inspect_fails(capsys, tmp_path)
    assert f"{tmp_path / 'full.json'}: line 3: malformed JSON" in msg


def test_malformed_json_array(tmp_path, capsys):
    (tmp_path / "full.json").write_text('[\n  {"question": "q", "answer": "a"},\n  {"question": }\n]')
    assert "full.json: line 3: malformed JSON" in inspect_fails(capsys, tmp_path)


def test_missing_field(tmp_path, capsys):
    write_lines(tmp_path / "forget10.json", [GOOD, {"question": "Who?"}])
    msg = inspect_fails(capsys, tmp_path)
    assert "forget10.json: line 2: missing field 'answer' (expected a string)" in msg


def test_mistyped_field(tmp_path, capsys):
    write_lines(tmp_path / "forget10_perturbed.json", [GOOD_PERTURBED, {**GOOD_PERTURBED, "perturbed_answer": "Him."}])
    msg = inspect_fails(capsys, tmp_path)
    assert (
        "forget10_perturbed.json: line 2: field 'perturbed_answer' must be a non-empty list of strings, got str" in msg
    )


def test_mistyped_question(tmp_path, capsys):
    write_lines(tmp_path / "retain90.json", [{"question": 7, "answer": "a"}])
    assert "retain90.json: line 1: field 'question' must be a string, got int" in inspect_fails(capsys, tmp_path)


def test_row_not_an_object(tmp_path, capsys):
    (tmp_path / "full.json").write_text(json.dumps([GOOD, ["Who?", "Her."]]))
    assert "full.json: row 2: expected a JSON object" in inspect_fails(capsys, tmp_path)


def test_empty_answer(tmp_path, capsys):
    write_lines(tmp_path / "full.json", [GOOD, GOOD, GOOD, {"question": "Who?", "answer": "  "}])
    msg = inspect_fails(capsys, tmp_path)
    assert "full.json: line 4: field 'answer' is empty" in msg


def test_empty_perturbed_list(tmp_path, capsys):
    write_lines(tmp_path / "world_facts_perturbed.json", [{**GOOD, "perturbed_answer": []}])
    msg = inspect_fails(capsys, tmp_path)
    assert "line 1: field 'perturbed_answer' must be a non-empty list of strings, got an empty list" in msg


def test_unknown_split(tmp_path, capsys):
    write_lines(tmp_path / "full.json", [GOOD])
    msg = inspect_fails(capsys, tmp_path, "--split", "forget_10")
    assert "unknown TOFU split 'forget_10'" in msg and "forgetNN" in msg


def test_unreachable_hub_id_is_fast_and_clear(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    code = "import sys; from baldro.cli.main import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [sys.executable, "-c", code, "data", "inspect", "locuslab/TOFU", "--split", "forget10"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "cannot load 'locuslab/TOFU' from the Hugging Face hub" in lines[0]
    assert "hf download --repo-type dataset locuslab/TOFU --local-dir DIR" in lines[0]


@pytest.mark.parametrize("split", ["forget10", "full"])
def test_hub_id_check_without_offline_env_does_not_hang(monkeypatch, capsys, split):
    """With the hub unreachable (probe patched to fail) the loader answers at once."""
    import baldro.data.hub as hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "_reachable", lambda: False)
    msg = inspect_fails(capsys, "locuslab/TOFU", "--split", split)
    assert "hub not reachable" in msg and "--local-dir DIR" in msg


def test_data_group_has_synth_and_inspect_reads_its_output(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["data", "synth", "--out", str(out), "--authors", "20", "--questions", "3"]) == 0
    capsys.readouterr()
    assert main(["data", "inspect", str(out)]) == 0
    counts = json.loads(capsys.readouterr().out)
    for split in ("full", "forget10", "retain90", "forget10_perturbed", "retain_perturbed", "holdout10"):
        assert counts[split] > 0
    assert counts["forget10"] == counts["forget10_perturbed"]
