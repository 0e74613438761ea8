"""MUSE evaluation on a tiny model and a few-row MUSE folder written by the test."""

from __future__ import annotations

import json

import pytest
from sklearn.metrics import roc_auc_score

from baldro.cli.main import main
from baldro.data.formatting import PromptFormat, fewshot_prompt
from baldro.evaluation.muse import evaluate_muse
from baldro.evaluation.summary import summarize


def _write(folder, rel, rows):
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))


@pytest.fixture(scope="module")
def mini_muse(tmp_path_factory):
    root = tmp_path_factory.mktemp("muse")
    qa = [{"question": f"What colour is book {i}?", "answer": f"The book is blue {i}."} for i in range(3)]
    _write(root, "knowmem/forget_qa.json", qa)
    _write(root, "knowmem/retain_qa.json", qa[::-1])
    _write(root, "knowmem/forget_qa_icl.json", qa[:2])
    _write(root, "knowmem/retain_qa_icl.json", qa[1:])
    _write(root, "verbmem/forget.json", [{"prompt": f"Author {i} wrote", "gt": " a green book."} for i in range(3)])
    _write(root, "privleak/forget.json", [f"The book of author {i} is red." for i in range(4)])
    _write(root, "privleak/holdout.json", [{"text": f"Question: who is author {i}?"} for i in range(3)])
    return root


def test_muse_eval_files_and_round_trip(random_tiny_model, mini_muse, tmp_path):
    retain = {"mia_min_k": {"agg_value": 0.3}}
    s, ev = evaluate_muse(
        str(random_tiny_model), mini_muse, retain_logs=retain, out_dir=tmp_path / "o", batch_size=2,
        verbmem_max_new_tokens=4, knowmem_max_new_tokens=4, progress=False, return_eval=True,
    )
    assert set(ev) >= {"forget_knowmem_ROUGE", "retain_knowmem_ROUGE", "forget_verbmem_ROUGE", "mia_min_k", "privleak"}
    k = ev["forget_knowmem_ROUGE"]["value_by_index"]["1"]
    assert k["input"].startswith("Question: What colour is book 0?\nAnswer: The book is blue 0.\n\n")
    assert k["input"].endswith("Question: What colour is book 1?\nAnswer: ")  # open-unlearning's trailing space
    assert ev["prompt_format"] == s["prompt_format"] == "plain"
    # MUSE reports ROUGE-L F1
    vals = [v["rougeL_f1"] for v in ev["forget_verbmem_ROUGE"]["value_by_index"].values()]
    assert s["forget_verbmem_ROUGE"] == pytest.approx(sum(vals) / len(vals))
    f = [v["score"] for v in ev["mia_min_k"]["forget"]["value_by_index"].values()]
    h = [v["score"] for v in ev["mia_min_k"]["holdout"]["value_by_index"].values()]
    assert len(f) == 4 and len(h) == 3
    auc = roc_auc_score([0] * 4 + [1] * 3, f + h)
    assert s["mia_min_k"] == auc
    assert s["privleak"] == pytest.approx(((1 - auc) - 0.7) / (0.7 + 1e-10) * 100)
    written = json.loads((tmp_path / "o" / "MUSE_SUMMARY.json").read_text())
    assert summarize(json.loads((tmp_path / "o" / "MUSE_EVAL.json").read_text()), retain, "muse") == written


def test_muse_missing_parts_are_skipped(random_tiny_model, mini_muse, tmp_path, capsys):
    (mini_muse / "privleak" / "holdout.json").rename(tmp_path / "holdout.json")
    try:
        out = tmp_path / "o"
        args = ["eval", "muse", "--model", str(random_tiny_model), "--data", str(mini_muse), "--out", str(out),
                "--max-items", "2", "--no-progress", "--verbmem-max-new-tokens", "4", "--knowmem-max-new-tokens", "4"]
        assert main(args) == 0
        s = json.loads((out / "MUSE_SUMMARY.json").read_text())
        assert s["privleak"] is None and "privleak/holdout" in s["skipped"]["privleak"]
        assert "skipped privleak" in capsys.readouterr().err
        assert main(["eval", "summarize", str(out / "MUSE_EVAL.json")]) == 0
        assert json.loads(capsys.readouterr().out) == s
    finally:
        (tmp_path / "holdout.json").rename(mini_muse / "privleak" / "holdout.json")


def test_items_cut_away_by_the_position_limit_are_explained_under_skipped(random_tiny_model, mini_muse, tmp_path,
                                                                          capsys):
    # item 1's prompt alone fills the tiny model's 512 positions: its text is cut away entirely, so ES and EM have
    # nothing to measure there. The values stay open-unlearning's for that case (ES 0.0, EM null and out of the mean),
    # and skipped says which items and why (issue 22, item 7)
    import shutil

    folder = tmp_path / "muse"
    shutil.copytree(mini_muse, folder)
    rows = [{"prompt": f"Author {i} wrote", "gt": " a green book."} for i in range(3)]
    rows[1]["prompt"] = "Author wrote " * 400
    _write(folder, "verbmem/forget.json", rows)
    with pytest.warns(UserWarning, match="max_position_embeddings=512"):
        s, ev = evaluate_muse(str(random_tiny_model), folder, out_dir=tmp_path / "o", batch_size=2,
                              verbmem_max_new_tokens=2, knowmem_max_new_tokens=2, progress=False, return_eval=True)
    es = ev["extraction_strength"]["value_by_index"]
    em = ev["exact_memorization"]["value_by_index"]
    assert es["1"]["score"] == 0.0 and em["1"]["score"] is None
    assert all(em[i]["score"] is not None for i in ("0", "2"))
    assert s["exact_memorization"] == pytest.approx((em["0"]["score"] + em["2"]["score"]) / 2)
    for name in ("extraction_strength", "exact_memorization"):
        assert s["skipped"][name].startswith("partly: 1 of 3 verbmem/forget items (index 1) have no scored token")
        assert "512 positions" in s["skipped"][name]
    on_disk = json.loads((tmp_path / "o" / "MUSE_SUMMARY.json").read_text())
    assert on_disk["skipped"]["exact_memorization"] == s["skipped"]["exact_memorization"]
    # the summary of the written eval file (e.g. `baldro eval summarize`) keeps the reasons
    assert summarize(json.loads((tmp_path / "o" / "MUSE_EVAL.json").read_text()), None, "muse")["skipped"] == s["skipped"]


def test_a_capped_muse_evaluation_records_its_rows_per_split(random_tiny_model, mini_muse, tmp_path):
    s, ev = evaluate_muse(str(random_tiny_model), mini_muse, out_dir=tmp_path / "o", batch_size=2, max_items=2,
                          verbmem_max_new_tokens=2, knowmem_max_new_tokens=2, progress=False, return_eval=True)
    capped = {"max_items": 2, "items": {"verbmem/forget": 2, "knowmem/forget_qa": 2, "knowmem/retain_qa": 2,
                                        "privleak/forget": 2, "privleak/holdout": 2}}
    assert ev["capped"] == s["capped"] == capped
    assert json.loads((tmp_path / "o" / "MUSE_SUMMARY.json").read_text())["capped"] == capped
    assert "agg_value" not in ev["capped"]


def test_fewshot_prompt_shapes(tiny_model_dir):
    """open-unlearning's few-shot prompts: tag configs write user_start q user_end asst_start a asst_end per example
    (Llama-2-7b-hf: "Question: ", "\\n", "Answer: ", "\\n\\n"; Llama-2-7b-chat: asst_end " "), chat configs earlier turns."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    shots = [("a?", "b"), ("c?", "d")]
    assert fewshot_prompt(tok, shots, "q?", PromptFormat.preset("plain")) == (
        "Question: a?\nAnswer: b\n\nQuestion: c?\nAnswer: d\n\nQuestion: q?\nAnswer: ", True)
    assert fewshot_prompt(tok, shots, "q?", PromptFormat.preset("llama2")) == (
        "[INST] a? [/INST]b [INST] c? [/INST]d [INST] q? [/INST]", True)
    chat, special = fewshot_prompt(tok, shots, "q?", PromptFormat.preset("chat", system_prompt=None))
    turns = [{"role": "user", "content": "a?"}, {"role": "assistant", "content": "b"},
             {"role": "user", "content": "c?"}, {"role": "assistant", "content": "d"}, {"role": "user", "content": "q?"}]
    assert (chat, special) == (tok.apply_chat_template(turns, tokenize=False, add_generation_prompt=True), False)


def test_muse_format_option_reaches_the_knowmem_prompts(tiny_model_dir, mini_muse, tmp_path, capsys):
    args = ["eval", "muse", "--model", str(tiny_model_dir), "--data", str(mini_muse), "--max-items", "2",
            "--no-progress", "--verbmem-max-new-tokens", "2", "--knowmem-max-new-tokens", "2"]
    assert main([*args, "--out", str(tmp_path / "o"), "--format", "{preset: chat, system_prompt: null}"]) == 0
    ev = json.loads((tmp_path / "o" / "MUSE_EVAL.json").read_text())
    k = ev["forget_knowmem_ROUGE"]["value_by_index"]["1"]["input"]
    assert k == ("<|bos|><|user|>\nWhat colour is book 0?\n<|assistant|>\nThe book is blue 0.<|eos|>"  # the icl examples
                 "<|user|>\nWhat colour is book 1?\n<|assistant|>\nThe book is blue 1.<|eos|>"
                 "<|user|>\nWhat colour is book 1?\n<|assistant|>\n")  # as turns, then the question
    assert ev["prompt_format"] == "chat with system_prompt=None (the tokenizer's chat template, no system prompt of ours)"
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "bad"), "--format", "{tokenise: merged}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["baldro: error: --format: prompt format field 'tokenise' must be one of joint, separate, got 'merged'"]
    assert not (tmp_path / "bad").exists()
