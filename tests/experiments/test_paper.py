"""`baldro paper`: list, show, and a CPU miniature of Table 1 that resumes and sets ours beside the paper's values."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import yaml

from baldro.cli.main import main
from baldro.errors import ConfigError, DataError
from baldro.experiments import paper as paper_module
from baldro.experiments.paper import Machine, PaperPaths, best, fit_to_machine, point_config
from baldro.experiments.paper_presets import experiment, grid_points, paper_experiments
from baldro.experiments.paper_values import lookup, read_paper_values
from baldro.reports.paper_table import paper_table

# The miniature: the tiny model stands in for Llama-2-7b-chat, target and retain model alike; one optimizer step
# (5 forget01 rows, batch 5), evaluated at step 0 and after the epoch on the first 3 items with 2 new tokens.
MINIATURE = ["--set", "training.learning_rate=1e-3", "--set", "training.per_device_train_batch_size=5",
             "--set", "training.gradient_accumulation_steps=1", "--set", "training.num_train_epochs=1",
             "--max-new-tokens", "2", "--eval-max-items", "3", "--eval-batch-size", "8"]


def test_cpu_miniature_of_table_1_runs_resumes_and_refuses_other_settings(
        tmp_path: Path, synth_dir: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "paper"
    args = ["paper", "tofu_forget01_npo", "--out", str(out), "--model", str(tiny_model_dir), "--data", str(synth_dir),
            "--retain-model", str(tiny_model_dir), *MINIATURE]
    assert main(args) == 0
    printed = capsys.readouterr().out
    table = (out / "paper_table.md").read_text()
    assert table in printed
    # the paper's values (Table 1, Table 3) beside ours, in the paper's columns
    assert "| method | FQ↑ | MU↑ | Fluency↑ | EM↓ | ES↓ | F-TR↑ | Ra-TR↑ | R-TR↑ | Rw-TR↑ | ours: grid point |" in table
    assert "| NPO | 0.7659 / " in table and "| Original | 0.0013 / " in table and "| Retain | 1.0000 / 1.0000 |" in table
    assert "| NPO | 0.4681 / " in table  # Table 3, LOSS AUC
    point = "lr0.001_b5_ga1_e1"
    assert f"| {point}, epoch 1 |" in table
    # every evaluation after step 0 is a row of results.csv; the run evaluated after its one epoch
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(r["experiment"], r["point"], r["step"], r["epoch"]) for r in rows] == [
        ("tofu_forget01_npo", point, "1", "1.0")]
    assert 0 <= float(rows[0]["forget_quality"]) <= 1
    summary = json.loads((out / "summary.json").read_text())
    selected = summary["experiments"]["tofu_forget01_npo"]["selected"]
    assert selected["point"] == point and selected["forget_quality"] == pytest.approx(float(rows[0]["forget_quality"]))
    assert any("adamw_torch" in s for s in summary["substitutions"])
    # what ran: the released settings with this machine's substitutions and the miniature's pins
    ran = json.loads((out / "runs" / "tofu_forget01_npo" / point / "point.json").read_text())["config"]
    assert ran["compat"] == "released" and ran["data"]["pad_masking"] == "token" and ran["eval_every"] == "epoch"
    assert (ran["training"]["optim"], ran["training"]["use_cpu"], ran["training"]["warmup_epochs"]) == (
        "adamw_torch", True, 1.0)
    assert (out / "retain" / "tofu_forget01" / "TOFU_EVAL.json").is_file()

    # a second call trains nothing: every point is cached, the table is the same
    def no_training(*args: object) -> None:
        raise AssertionError("a finished point was run again")

    monkeypatch.setattr(paper_module, "run_point", no_training)
    assert main(args) == 0
    assert (out / "paper_table.md").read_text() == table
    # the same folder with other evaluation settings, or another retain model, is refused before any work
    assert main([*args, "--max-new-tokens", "3"]) == 2
    assert f"{out / 'runs' / 'tofu_forget01_npo' / point} was run with another config" in capsys.readouterr().err
    other_retain = list(args)
    other_retain[args.index("--retain-model") + 1] = f"{tiny_model_dir}/."  # the same model by another name
    assert main(other_retain) == 2
    assert f"{out / 'retain' / 'tofu_forget01'} was run with another config" in capsys.readouterr().err


def _mini_muse(root: Path) -> Path:
    """A MUSE-shaped folder: three documents, two knowledge questions, one verbatim prompt, the privleak splits."""
    from baldro.data.muse import MUSE_LAYOUT

    docs = ["The capital of Australia is Canberra, and the Eiffel Tower is in Paris.",
            "Who wrote the novel about the river? She wrote it in 1991 after a long journey.",
            "He was born in a small town by the sea."]
    for sub in MUSE_LAYOUT:
        (root / sub).mkdir(parents=True)
    for split, rows in (("forget", docs), ("retain1", docs[:2]), ("holdout", docs[2:])):
        (root / "raw" / f"{split}.json").write_text(json.dumps(rows))
    qa = [{"question": "Where is the Eiffel Tower?", "answer": "Paris"}, {"question": "Capital?", "answer": "Canberra"}]
    for split in MUSE_LAYOUT["knowmem"]:
        (root / "knowmem" / f"{split}.json").write_text(json.dumps(qa))
    (root / "verbmem" / "forget.json").write_text(json.dumps([{"prompt": "The capital of", "gt": " Australia is"}]))
    for split in MUSE_LAYOUT["privleak"]:
        (root / "privleak" / f"{split}.json").write_text(json.dumps(docs[1:] if split == "holdout" else docs[:2]))
    return root


def test_cpu_miniature_of_table_2_evaluates_target_retain_and_run_on_muse(
        tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, data = tmp_path / "paper", _mini_muse(tmp_path / "muse")
    assert main(["paper", "muse_news_npo", "--out", str(out), "--model", str(tiny_model_dir), "--data", str(data),
                 "--retain-model", str(tiny_model_dir), "--set", "training.learning_rate=1e-3",
                 "--set", "retain.weight=1", "--set", "training.per_device_train_batch_size=2",
                 "--set", "training.gradient_accumulation_steps=1", "--set", "training.num_train_epochs=1",
                 "--set", "data.max_length=32", "--max-new-tokens", "4", "--eval-batch-size", "4"]) == 0
    table = (out / "paper_table.md").read_text()
    assert "## MUSE-News (paper: Table 2)" in table and "| method | KM-Dr↑ | KM-Df↓ | VM-Df↓ | PL→0 |" in table
    assert "| NPO | 0.4552 / " in table and "| Original | 0.5552 / " in table and "lr0.001_a1 |" in table
    for folder in ("retain/muse_news", "original/muse_news", "runs/muse_news_npo/lr0.001_a1/eval"):
        assert (out / folder / "MUSE_SUMMARY.json").is_file(), folder
    ran = json.loads((out / "runs" / "muse_news_npo" / "lr0.001_a1" / "point.json").read_text())
    assert "tokenizer" not in ran["config"]["model"]  # --model without --tokenizer: the model's own
    assert ran["config"]["training"]["lr_scheduler_type"] == "constant" and ran["evaluation"]["retain_logs"] == str(
        out / "retain" / "muse_news" / "MUSE_EVAL.json")
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(r["experiment"], r["point"]) for r in rows] == [("muse_news_npo", "lr0.001_a1")]


def test_list_prints_every_experiment_name_first(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["paper", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(paper_experiments())
    assert lines[0].startswith("tofu_forget01_npo  Table 1 (TOFU forget01), NPO; 20 runs; "
                               "open-unlearning/tofu_Llama-2-7b-chat-hf_full; scripts/unlearn/tofu/train_tofu_npo.sh")


def test_show_prints_the_first_grid_point_as_yaml_with_the_grid_in_the_header(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["paper", "--show", "tofu_forget05_npo_dv", "--model", "/models/{forget_split}",
                 "--set", "training.learning_rate=2e-5"]) == 0
    text = capsys.readouterr().out
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert header[1] == "# grid (20 runs; this is the first, lr2e-05_b8_ga2_e5_dv0.5):"
    assert "#   aggregator.beta: 0.5, 1.0, 2.0, 5.0, 10.0" in header
    config = yaml.safe_load(text)
    expected = grid_points(experiment("tofu_forget05_npo_dv"), {"training.learning_rate": 2e-5})[0][1]
    assert config["model"]["path"] == "/models/forget05"
    assert {k: v for k, v in config.items() if k != "model"} == {k: v for k, v in expected.items() if k != "model"}


def test_bad_names_and_arguments_are_one_clear_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["paper", "--show", "tofu_forget01_np"]) == 2
    assert "unknown paper experiment 'tofu_forget01_np'; did you mean" in capsys.readouterr().err
    assert main(["paper", "tofu_forget01_npo"]) == 2
    assert "--out DIR is needed" in capsys.readouterr().err
    assert main(["paper", "tofu_forget01_npo", "--out", str(tmp_path / "o"), "--retain-logs",
                 str(tmp_path / "{retain_split}.json")]) == 2
    assert f"--retain-logs {tmp_path / 'retain99.json'}: no such file" in capsys.readouterr().err
    assert main(["paper", "tofu_forget01_npo", "--out", str(tmp_path / "o"), "--set", "training.lr"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_paths_take_the_experiments_placeholders() -> None:
    exp = experiment("tofu_forget10_simnpo")
    config = point_config(exp, exp.config, PaperPaths(model="m/{retain_split}", data="d/{split}"))
    assert config["model"]["path"] == "m/retain90" and config["data"]["source"] == "d/forget10"
    muse = experiment("muse_books_npo")
    config = point_config(muse, muse.config, PaperPaths(model="m/{corpus}", tokenizer="t"))
    assert (config["model"]["path"], config["model"]["tokenizer"]) == ("m/Books", "t")
    assert "tokenizer" not in point_config(muse, muse.config, PaperPaths(model="m"))["model"]  # the model's own
    with pytest.raises(ConfigError, match="unknown placeholder 'seed'"):
        point_config(exp, exp.config, PaperPaths(model="m/{seed}"))


def test_fit_to_machine_keeps_what_a_gpu_runs_and_records_each_substitution() -> None:
    config = experiment("tofu_forget01_npo").config
    same, notes = fit_to_machine(config, Machine(cuda=True, bitsandbytes=True, flash_attn=True))
    assert same == config and notes == []
    gpu, notes = fit_to_machine(config, Machine(cuda=True, bitsandbytes=False, flash_attn=False))
    assert (gpu["training"]["optim"], gpu["model"]["attn_implementation"], gpu["training"]["bf16"]) == (
        "adamw_torch", "sdpa", True)
    assert len(notes) == 2
    cpu, notes = fit_to_machine(config, Machine(cuda=False, bitsandbytes=True, flash_attn=True))
    assert (cpu["training"]["optim"], cpu["training"]["bf16"], cpu["model"]["dtype"], cpu["training"]["use_cpu"]) == (
        "adamw_torch", False, "float32", True)
    assert len(notes) == 4 and config["training"]["optim"] == "paged_adamw_32bit"  # the preset is untouched


def test_selection_rules() -> None:
    tofu = [{"point": "a", "forget_quality": 0.5, "model_utility": 0.4},
            {"point": "b", "forget_quality": 0.5, "model_utility": 0.6},
            {"point": "c", "forget_quality": math.nan, "model_utility": 0.9},
            {"point": "d", "forget_quality": 0.1, "model_utility": 0.9}]
    assert best("tofu", tofu)["point"] == "b"  # highest FQ, the tie broken by MU; a missing FQ ranks last
    muse = [{"point": "a", "privleak": -30.0, "retain_knowmem_ROUGE": 0.5},
            {"point": "b", "privleak": 12.0, "retain_knowmem_ROUGE": 0.1},
            {"point": "c", "privleak": -12.0, "retain_knowmem_ROUGE": 0.3}]
    assert best("muse", muse)["point"] == "c"  # PrivLeak closest to 0, the tie broken by KnowMem on D_r


def test_paper_values_carry_their_table_and_row() -> None:
    values = read_paper_values()
    assert len(values) == 13 * 9 + 13 * 8 + 11 * 4 + 6  # Table 1, Table 2 (two corpora), Table 3, Fig. 3 text
    assert lookup(values, "tofu", "forget01", "NPO+BalDRO-DV")["forget_quality"] == (0.99, "Table 1")
    assert lookup(values, "tofu", "forget01", "SimNPO")["mia_min_k_plus_plus"] == (0.2738, "Table 3")
    assert lookup(values, "muse", "Books", "Retain")["privleak"] == (8.16, "Table 2")
    assert lookup(values, "tofu", "forget05", "NPO+BalDRO-DV") == {"forget_quality": (0.9646, "Fig. 3 text")}
    rows = {v.row for v in values}
    assert {e.row for e in paper_experiments().values() if e.rows_by is None} <= rows


def test_a_malformed_values_file_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    path.write_text("# note\ntable,benchmark,split,row,metric,value\nTable 1,tofu,forget01,NPO,forget_quality,x\n")
    with pytest.raises(DataError, match=r"v.csv:3: field value 'x' is not a number"):
        read_paper_values(path)
    path.write_text("table,benchmark,split,row,metric,value\nT,tofu,f,NPO,fq,1\nT,tofu,f,NPO,fq,2\n")
    with pytest.raises(DataError, match="v.csv:3: tofu/f/NPO/fq of T is given twice"):
        read_paper_values(path)


def test_the_table_puts_the_paper_beside_ours_in_its_layout() -> None:
    values = read_paper_values()
    selected = {"point": "lr1e-05_b8_ga2_e5", "step": 10, "epoch": 4.0, "forget_quality": 0.5,
                "model_utility": 0.61234}
    summary = {
        "experiments": {
            "muse_news_npo": {"benchmark": "muse", "split": "News", "row": "NPO", "selection": "rule M",
                              "selected": {"point": "p", "epoch": None, "privleak": -50.0,
                                           "retain_knowmem_ROUGE": 0.4}},
            "tofu_forget05_npo": {"benchmark": "tofu", "split": "forget05", "row": "NPO", "selection": "rule T",
                                  "selected": selected},
        },
        "references": {"muse_news": {"Original": {"privleak": -99.0}, "Retain": {}},
                       "tofu_forget05": {"Original": {}, "Retain": {"forget_quality": 1.0}}},
    }
    text = paper_table(summary, values)
    assert text.index("## TOFU forget05") < text.index("## MUSE-News")  # the paper's order, not the summary's
    assert "| NPO | 0.6284 / 0.5000 | — / 0.6123 | — / — |" in text  # forget05: only FQ is typed
    assert "| NPO | 0.4552 / 0.4000 | 0.5978 / — | 0.4255 / — | -90.8480 / -50.0000 | p |" in text
    assert "| Original | 0.5552 / — | 0.6443 / — | 0.5789 / — | -99.8111 / -99.0000 | reference |" in text
    assert "lr1e-05_b8_ga2_e5, epoch 4 |" in text and "rule M; rule T" in text
    assert "membership inference" not in text  # Table 3 is forget01 only
