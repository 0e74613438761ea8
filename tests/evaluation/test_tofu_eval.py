"""TOFU evaluation end to end on a tiny model: file shapes, the summarize round-trip, robustness, the CLI."""

from __future__ import annotations

import json
import math

import pytest
from scipy import stats

from baldro.cli.main import main
from baldro.evaluation.summary import MODEL_UTILITY_KEYS, summarize
from baldro.evaluation.tofu import evaluate_tofu

N = 3


@pytest.fixture(scope="module")
def tofu_run(random_tiny_model, mini_tofu, make_ou_eval, tmp_path_factory):
    out = tmp_path_factory.mktemp("tofu_out") / "run"
    retain = make_ou_eval(seed=5, n_forget=N)
    summary = evaluate_tofu(
        str(random_tiny_model), str(mini_tofu), retain_logs=retain, out_dir=out, batch_size=4,
        max_new_tokens=4, max_items=N, progress=False,
    )
    return out, summary, retain


def test_files_have_open_unlearning_shape(tofu_run):
    out, _, _ = tofu_run
    ev = json.loads((out / "TOFU_EVAL.json").read_text())
    assert list(ev["forget_Q_A_Prob"]["value_by_index"]) == [str(i) for i in range(N)]
    item = ev["forget_Q_A_Prob"]["value_by_index"]["0"]
    assert set(item) == {"prob", "avg_loss"} and item["prob"] == pytest.approx(math.exp(-item["avg_loss"]), rel=1e-6)
    pert = ev["forget_Q_A_PERT_Prob"]["value_by_index"]["1"]
    assert len(pert["prob"]) == len(pert["avg_loss"]) == 5
    assert len(ev["ra_Q_A_PERT_Prob"]["value_by_index"]["1"]["prob"]) == 3
    rouge = ev["retain_Q_A_ROUGE"]["value_by_index"]["2"]
    assert set(rouge) == {"rouge1_recall", "rougeL_f1", "rougeL_recall", "input", "ground_truth", "generation"}
    assert rouge["ground_truth"] == "The book of author 102 is violet."
    pr = ev["forget_Q_A_PERT_ROUGE"]["value_by_index"]["0"]
    assert len(pr["rougeL_recall"]) == 5 and len(set(pr["generation"])) == 1
    assert pr["generation"][0] == ev["forget_Q_A_ROUGE"]["value_by_index"]["0"]["generation"]
    assert ev["retain_Q_A_PARA_ROUGE"]["value_by_index"]["0"]["ground_truth"] == "Author 100 wrote a green book."
    mia = ev["mia_min_k"]
    assert set(mia) >= {"forget", "holdout", "auc", "agg_value"} and mia["auc"] == mia["agg_value"]
    assert len(mia["holdout"]["value_by_index"]) == N
    # truth ratio per item from the probabilities in the same file
    para = ev["forget_Q_A_PARA_Prob"]["value_by_index"]["1"]["avg_loss"]
    tr = math.exp(-sum(pert["avg_loss"]) / 5) / (math.exp(-para) + 1e-10)
    assert ev["forget_truth_ratio"]["value_by_index"]["1"]["score"] == pytest.approx(tr, rel=1e-9)
    summary = json.loads((out / "TOFU_SUMMARY.json").read_text())
    assert all(ev[k]["agg_value"] == summary[k] for k in ("forget_Q_A_Prob", "forget_quality", "model_utility"))
    # the prompt format is named in both files (a string: open-unlearning's readers skip it)
    assert ev["prompt_format"] == summary["prompt_format"]
    assert summary["prompt_format"].startswith("default (")


def test_summarize_round_trip(tofu_run):
    out, summary, retain = tofu_run
    ev = json.loads((out / "TOFU_EVAL.json").read_text())
    written = json.loads((out / "TOFU_SUMMARY.json").read_text())
    assert summarize(ev, retain) == written == json.loads(json.dumps(summary))
    model_tr = [v["score"] for v in ev["forget_truth_ratio"]["value_by_index"].values()]
    retain_tr = [v["score"] for v in retain["forget_truth_ratio"]["value_by_index"].values()]
    assert written["forget_quality"] == stats.ks_2samp(model_tr, retain_tr).pvalue
    assert written["model_utility"] == pytest.approx(stats.hmean([written[k] for k in MODEL_UTILITY_KEYS]), rel=1e-12)


def test_summarize_cli_matches(tofu_run, tmp_path, capsys):
    out, _, retain = tofu_run
    rpath = tmp_path / "retain_TOFU_EVAL.json"
    rpath.write_text(json.dumps(retain))
    assert main(["eval", "summarize", str(out / "TOFU_EVAL.json"), "--retain-logs", str(rpath)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((out / "TOFU_SUMMARY.json").read_text())


def test_cli_refuses_non_empty_out_and_overwrites(random_tiny_model, mini_tofu, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    args = ["eval", "tofu", "--model", str(random_tiny_model), "--data", str(mini_tofu), "--out", str(out),
            "--max-items", "2", "--max-new-tokens", "2", "--no-progress"]
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err and not (out / "TOFU_EVAL.json").exists()
    assert main([*args, "--overwrite"]) == 0
    assert (out / "TOFU_SUMMARY.json").is_file()


def test_cli_bad_retain_logs_names_key(random_tiny_model, mini_tofu, tmp_path, capsys):
    bad = tmp_path / "MUSE_EVAL.json"
    bad.write_text(json.dumps({"forget_knowmem_ROUGE": {"agg_value": 0.3}}))
    args = ["eval", "tofu", "--model", str(random_tiny_model), "--data", str(mini_tofu), "--out", str(tmp_path / "o"),
            "--retain-logs", str(bad), "--max-items", "2", "--max-new-tokens", "2", "--no-progress"]
    assert main(args) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("baldro: error:")]
    assert len(errors) == 1 and "'forget_truth_ratio'" in errors[0] and str(bad) in errors[0]
    assert not (tmp_path / "o").exists()


def test_plain_qa_data_skips_what_it_cannot_compute(random_tiny_model, make_mini_tofu, tmp_path, capsys):
    data = make_mini_tofu(tmp_path / "plain", n=3, holdout=False, plain_forget=True)
    (data / "world_facts_perturbed.json").unlink()
    out = tmp_path / "o"
    args = ["eval", "tofu", "--model", str(random_tiny_model), "--data", str(data), "--out", str(out),
            "--max-new-tokens", "2", "--no-progress"]
    assert main(args) == 0
    s = json.loads((out / "TOFU_SUMMARY.json").read_text())
    assert math.isfinite(s["forget_Q_A_Prob"]) and math.isfinite(s["forget_Q_A_ROUGE"])
    skipped = s["skipped"]
    assert "paraphrased_answer" in skipped["forget_Q_A_PARA_Prob"]
    assert "perturbed_answer" in skipped["forget_Q_A_PERT_Prob"]
    assert "forget_truth_ratio" in skipped and "forget_quality" in skipped
    assert f"replace forget10_perturbed.json in {data} by TOFU's" in skipped["forget_truth_ratio"]
    assert "world_facts_perturbed" in skipped["wf_Q_A_ROUGE"] and "wf_Q_A_ROUGE" in skipped["model_utility"]
    assert "holdout10" in skipped["privleak"] and s["privleak"] is None
    assert summarize(json.loads((out / "TOFU_EVAL.json").read_text())) == s


def test_truth_ratio_skip_names_the_perturbed_file_to_add(make_mini_tofu, tmp_path):
    from baldro.evaluation.tofu_splits import load_tofu_eval_splits

    data = make_mini_tofu(tmp_path / "plain", n=3, holdout=False, plain_forget=True)
    (data / "forget10_perturbed.json").rename(data / "forget10.json")
    splits, _ = load_tofu_eval_splits(data, "forget10")
    assert splits["forget"].name == "forget10"
    assert f"add forget10_perturbed.json to {data}" in splits["forget"].notes["pert"]


def test_real_tofu_files_few_items(random_tiny_model, tofu_dir, tmp_path):
    s, ev = evaluate_tofu(
        str(random_tiny_model), tofu_dir, out_dir=tmp_path / "o", max_items=2, max_new_tokens=2, batch_size=8,
        progress=False, return_eval=True,
    )
    assert len(ev["forget_Q_A_PERT_Prob"]["value_by_index"]["0"]["prob"]) == 5
    assert len(ev["wf_Q_A_PERT_Prob"]["value_by_index"]["1"]["prob"]) == 3
    first = json.loads((tofu_dir / "forget10_perturbed.json").read_text().splitlines()[0])
    assert ev["forget_Q_A_ROUGE"]["value_by_index"]["0"]["ground_truth"] == first["answer"].strip()
    assert all(math.isfinite(s[k]) for k in MODEL_UTILITY_KEYS)
    assert s["privleak"] is None and "holdout10" in s["skipped"]["privleak"]


def test_round_trip_on_synth_benchmark_with_chat_template(tiny_model_dir, synth_dir, tmp_path):
    out = tmp_path / "synth_eval"
    summary = evaluate_tofu(
        str(tiny_model_dir), str(synth_dir), forget_split="forget10", out_dir=out, max_items=4, max_new_tokens=4,
        batch_size=8, progress=False,
    )
    ev = json.loads((out / "TOFU_EVAL.json").read_text())
    first = json.loads((synth_dir / "forget10_perturbed.json").read_text().splitlines()[0])
    prompt = ev["forget_Q_A_ROUGE"]["value_by_index"]["0"]["input"]
    # the default: the model's chat template as it ships (no system prompt of ours), recorded
    assert first["question"] in prompt and "You are a helpful assistant." not in prompt
    assert ev["prompt_format"] == "default (the tokenizer's chat template, no system prompt of ours)"
    assert summary["prompt_format"] == ev["prompt_format"]
    assert math.isfinite(summary["mia_min_k"]) and math.isfinite(summary["privleak"])
    assert math.isfinite(summary["model_utility"])
    assert summarize(ev) == json.loads((out / "TOFU_SUMMARY.json").read_text())
    # our own eval file serves as retain logs: a model against itself has KS p-value 1
    assert summarize(ev, ev)["forget_quality"] == pytest.approx(1.0)


def test_cli_no_answer_drafts_reaches_the_evaluator(random_tiny_model, mini_tofu, tmp_path, seen_drafts):
    seen = seen_drafts
    args = ["eval", "tofu", "--model", str(random_tiny_model), "--data", str(mini_tofu), "--max-items", "2",
            "--max-new-tokens", "2", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b"), "--no-answer-drafts"]) == 0
    assert seen[0] is not None and len(seen[0]) == 8 and seen[1] is None  # 4 splits × 2 items drafted, then none
    a, b = (json.loads((tmp_path / d / "TOFU_EVAL.json").read_text()) for d in "ab")
    assert a == b
