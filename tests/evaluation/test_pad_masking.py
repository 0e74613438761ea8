"""``pad_masking: token`` reproduces open-unlearning's evaluator where the pad token is EOS and EOS closes every chat
turn of the prompt (SmolLM2, Llama-3.2-Instruct); ``position`` (the default) does not mask those prompt tokens."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from baldro.cli.main import main
from baldro.data.formatting import PromptFormat, encode_prompt
from baldro.evaluation.tofu import evaluate_tofu
from baldro.evaluation.tofu_splits import load_tofu_eval_splits

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
N = 3
CHAT = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def eos_pad(mini_tofu):
    """(untrained 2-layer Llama, tokenizer whose pad and EOS are both ``<|im_end|>``, which closes each chat turn)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    texts = ["system user assistant You are a helpful assistant."]
    for f in sorted(mini_tofu.iterdir()):
        for line in f.read_text().splitlines():
            row = json.loads(line)
            texts += [row["question"], row["answer"], row.get("paraphrased_answer", ""), *row.get("perturbed_answer", [])]
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<s>", "<|im_start|>", "<|im_end|>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="<|im_end|>",
                                  pad_token="<|im_end|>", additional_special_tokens=["<|im_start|>"])
    tok.chat_template = CHAT
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return LlamaForCausalLM(cfg).eval(), tok


def _anchor_logs(model, tok, data):
    sys.path.insert(0, str(BENCH))
    from ou_anchor import SUITE, OpenUnlearningTofu

    splits, _ = load_tofu_eval_splits(data, "forget10", N)
    names = {k: s.name for k, s in splits.items()}
    return OpenUnlearningTofu(model, tok, PromptFormat(), data, names, N, batch_size=32, max_new_tokens=6).run(SUITE)


def _ours(model, tok, data, pad_masking):
    return evaluate_tofu(model, data, tokenizer=tok, batch_size=2, max_new_tokens=6, max_items=N, progress=False,
                         return_eval=True, pad_masking=pad_masking)


@pytest.fixture(scope="module")
def compared(eos_pad, mini_tofu):
    sys.path.insert(0, str(BENCH))
    from eval_bench import agreement

    model, tok = eos_pad
    ref = _anchor_logs(model, tok, mini_tofu)
    out = {}
    for mode in ("token", "position"):
        summary, eval_json = _ours(model, tok, mini_tofu, mode)
        out[mode] = (summary, eval_json, agreement(eval_json, ref))
    return out


def test_the_prompt_holds_the_pad_token_before_its_end(eos_pad):
    _, tok = eos_pad
    ids = encode_prompt(tok, "What colour is the book of author 1?", PromptFormat(), 512)
    inner = [i for i, t in enumerate(ids[:-1]) if t == tok.pad_token_id]
    assert tok.pad_token_id == tok.eos_token_id and len(inner) == 1  # closes the user turn (no system turn: default)


def test_token_masking_reproduces_the_open_unlearning_anchor(compared):
    summary, eval_json, agree = compared["token"]
    assert agree["values_compared"] > 100 and agree["generations_compared"] == 4 * N
    assert agree["max_rel_diff"] < 1e-5, agree["max_rel_diff_at"]
    assert agree["generations_equal"] is True
    assert {"forget_Q_A_Prob", "forget_truth_ratio", "extraction_strength", "mia_min_k", "wf_Q_A_ROUGE"} <= set(
        agree["metrics_compared"])
    assert eval_json["pad_masking"] == summary["pad_masking"] == "token"


def test_position_masking_differs_from_the_anchor(compared):
    summary, eval_json, agree = compared["position"]
    assert agree["max_rel_diff"] > 1e-3  # the masked prompt EOS tokens change every forward pass
    assert agree["generations_equal"] is False and agree["generations_differing"]
    assert eval_json["pad_masking"] == summary["pad_masking"] == "position"
    token_items = compared["token"][1]["forget_Q_A_Prob"]["value_by_index"]
    position_items = eval_json["forget_Q_A_Prob"]["value_by_index"]
    assert all(token_items[i]["prob"] != pytest.approx(position_items[i]["prob"], rel=1e-4) for i in token_items)


def test_bad_pad_masking_is_one_line_and_exit_2(tmp_path, capsys, mini_tofu):
    out = tmp_path / "out"
    code = main(["eval", "tofu", "--model", str(tmp_path / "nowhere"), "--data", str(mini_tofu), "--out", str(out),
                 "--pad-masking", "tokens"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "--pad-masking 'tokens'" in err and "'position'" in err and "'token'" in err
    assert not out.exists()


def test_bad_pad_masking_in_the_python_api(eos_pad, mini_tofu):
    from baldro.errors import ConfigError

    model, tok = eos_pad
    with pytest.raises(ConfigError, match="pad_masking 'TOKEN' must be"):
        _ours(model, tok, mini_tofu, "TOKEN")


def test_curves_take_the_mode_from_eval_or_data(mini_tofu):
    import warnings

    from baldro.errors import ConfigError
    from baldro.evaluation.trajectory import trajectory_callback

    data = {"source": str(mini_tofu)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no retain logs
        assert trajectory_callback({"data": data, "eval_every": 2}).pad_masking == "position"
        assert trajectory_callback({"data": {**data, "pad_masking": "token"}, "eval_every": 2}).pad_masking == "token"
        cb = trajectory_callback({"data": {**data, "pad_masking": "token"}, "eval_every": 2,
                                  "eval": {"pad_masking": "position"}})
        assert cb.pad_masking == "position"
        with pytest.raises(ConfigError, match="^eval.pad_masking 'tok' must be"):
            trajectory_callback({"data": data, "eval_every": 2, "eval": {"pad_masking": "tok"}})


def test_muse_token_masking_is_recorded_and_equal_where_the_pad_never_occurs(random_tiny_model, tmp_path):
    from baldro.evaluation.muse import evaluate_muse

    for rel, rows in (("verbmem/forget.json", [{"prompt": f"Author {i} wrote", "gt": " a green book."} for i in range(3)]),
                      ("privleak/forget.json", [f"The book of author {i} is red." for i in range(4)]),
                      ("privleak/holdout.json", [{"text": f"Question: who is author {i}?"} for i in range(3)])):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(json.dumps(rows))
    runs = {mode: evaluate_muse(str(random_tiny_model), tmp_path, batch_size=2, verbmem_max_new_tokens=4,
                                progress=False, return_eval=True, pad_masking=mode) for mode in ("position", "token")}
    (s_pos, ev_pos), (s_tok, ev_tok) = runs["position"], runs["token"]
    assert ev_tok["pad_masking"] == s_tok["pad_masking"] == "token" and s_pos["pad_masking"] == "position"
    for name in ("forget_verbmem_ROUGE", "extraction_strength", "mia_min_k", "mia_loss"):
        assert s_tok[name] == pytest.approx(s_pos[name], rel=1e-5, abs=1e-7), name
    per_item = [[v["score"] for v in ev["mia_loss"]["forget"]["value_by_index"].values()] for ev in (ev_tok, ev_pos)]
    assert per_item[0] == pytest.approx(per_item[1], rel=1e-5)
    gens = [v["generation"] for v in ev_tok["forget_verbmem_ROUGE"]["value_by_index"].values()]
    assert gens == [v["generation"] for v in ev_pos["forget_verbmem_ROUGE"]["value_by_index"].values()]
