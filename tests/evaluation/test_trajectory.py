"""Unlearning curves: ``eval_every`` writes ``trajectory.jsonl`` without changing the training result."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from baldro.cli.main import main
from baldro.errors import ConfigError, DataError
from baldro.evaluation.tofu import evaluate_tofu
from baldro.evaluation.trajectory import (
    TRAJECTORY_FILE,
    TrajectoryCallback,
    first_forget_items,
    nll_spread,
    train_loss_spread,
    trajectory_callback,
)
from baldro.runfolder import partial_path
from baldro.training import run_unlearn

ITEMS = 4
NEW_TOKENS = 6
TRAINING = {
    "max_steps": 4,  # 10 forget items / batch 4: crosses an epoch boundary (the sampler draws from the torch RNG)
    "per_device_train_batch_size": 4,
    "learning_rate": 1e-2,
    "save_strategy": "no",
    "disable_tqdm": True,
    "use_cpu": True,
    "logging_strategy": "no",
    "seed": 3,
}


@pytest.fixture(scope="module")
def retain_logs(tiny_model_dir, synth_dir, tmp_path_factory):
    """A stand-in retain model's TOFU_EVAL.json on the first ITEMS rows (the untrained tiny model itself)."""
    out = tmp_path_factory.mktemp("retain_eval")
    evaluate_tofu(tiny_model_dir, synth_dir, max_items=ITEMS, out_dir=out, max_new_tokens=NEW_TOKENS, progress=False)
    return out / "TOFU_EVAL.json"


def _config(model, data, out, **extra):
    cfg = {
        "model": {"path": str(model)},
        "data": {"source": str(data), "max_length": 96},
        "objective": {"name": "npo", "beta": 0.1},
        "aggregator": {"name": "dv", "beta": 2.0},
        "retain": {"name": "nll", "weight": 1.0},
        "training": dict(TRAINING),
        "output_dir": str(out),
        "log_every": None,
    }
    cfg.update(extra)
    return cfg


def _rows(folder):
    return [json.loads(line) for line in (folder / TRAJECTORY_FILE).read_text().splitlines()]


def test_last_trajectory_line_equals_a_separate_eval_of_the_final_model(tiny_model_dir, synth_dir, retain_logs, tmp_path, capsys):
    cfg = _config(tiny_model_dir, synth_dir, tmp_path / "run", eval={"retain_logs": str(retain_logs), "max_new_tokens": NEW_TOKENS})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["unlearn", "--config", str(tmp_path / "c.yaml"), "--set", "eval_every=3", "--set", f"eval_max_items={ITEMS}"]) == 0
    rows = _rows(tmp_path / "run")
    assert [r["step"] for r in rows] == [0, 3, 4]  # step 0, every 3 steps, and the end
    assert rows[0]["epoch"] == 0 and rows[-1]["epoch"] == pytest.approx(4 / 3)
    assert all(r["n_forget_items"] == ITEMS and r["eval_seconds"] > 0 for r in rows)
    assert rows[0]["forget_quality"] == pytest.approx(1.0)  # step 0 is the stand-in retain model itself
    assert rows[-1]["forget_nll_mean"] > rows[0]["forget_nll_mean"]  # NPO at lr 1e-2 pushes the forget NLL up
    capsys.readouterr()
    assert main(["eval", "tofu", "--model", str(tmp_path / "run"), "--data", str(synth_dir), "--retain-logs", str(retain_logs),
                 "--out", str(tmp_path / "ev"), "--max-items", str(ITEMS), "--max-new-tokens", str(NEW_TOKENS), "--no-progress"]) == 0
    summary = json.loads((tmp_path / "ev" / "TOFU_SUMMARY.json").read_text())
    last = rows[-1]
    compared = [k for k, v in summary.items() if isinstance(v, float)]
    assert {"forget_quality", "model_utility", "forget_truth_ratio", "forget_Q_A_Prob"} <= set(compared)
    for key in compared:
        assert last[key] == pytest.approx(summary[key], abs=1e-6), key  # absolute 1e-6, also for privleak (~100)
    items = json.loads((tmp_path / "ev" / "TOFU_EVAL.json").read_text())["forget_Q_A_Prob"]["value_by_index"]
    spread = nll_spread([v["avg_loss"] for v in items.values()])
    for key, value in spread.items():
        assert last[key] == pytest.approx(value, abs=1e-6), key


def test_train_loss_spread_reads_the_per_sample_losses_of_its_window(tmp_path):
    log = tmp_path / "per_sample.jsonl"
    losses = {1: [9.0, 9.0], 2: [1.0, 2.0], 3: [3.0, 4.0, 5.0], 4: [100.0]}
    log.write_text("".join(json.dumps({"step": s, "index": i, "loss": v, "weight": 0.5, "nll": 0.1}) + "\n"
                           for s, vs in losses.items() for i, v in enumerate(vs)))
    got = train_loss_spread(log, 1, 3)  # steps 2 and 3: losses 1..5
    # numpy's linear percentiles of [1, 2, 3, 4, 5]: p10 = 1.4, p50 = 3, p90 = 4.6
    assert got["train_loss_n"] == 5
    assert (got["train_loss_p10"], got["train_loss_p50"], got["train_loss_p90"]) == pytest.approx((1.4, 3.0, 4.6))
    assert got["train_loss_iqr"] == pytest.approx(3.2)
    assert train_loss_spread(log, 3, 4)["train_loss_iqr"] == 0.0  # one sample
    for empty in (train_loss_spread(log, None, 4), train_loss_spread(log, 4, 4), train_loss_spread(tmp_path / "no", 0, 4)):
        assert empty == {"train_loss_n": 0, "train_loss_p10": None, "train_loss_p50": None, "train_loss_p90": None,
                         "train_loss_iqr": None}


def test_trajectory_rows_carry_the_training_loss_spread_since_the_last_row(tiny_model_dir, synth_dir, retain_logs, tmp_path):
    cb = TrajectoryCallback(3, synth_dir, retain_logs=retain_logs, max_items=ITEMS, max_new_tokens=NEW_TOKENS)
    out = run_unlearn(_config(tiny_model_dir, synth_dir, tmp_path / "run", log_every=1), callbacks=[cb])
    rows = _rows(out)
    logged = [json.loads(line) for line in (out / "per_sample.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 3, 4] and rows[0]["train_loss_n"] == 0 and rows[0]["train_loss_iqr"] is None
    for previous, row, n in zip(rows, rows[1:], (10, 4)):  # steps 1-3: one epoch of the 10 forget items (4 + 4 + 2)
        window = [e["loss"] for e in logged if previous["step"] < e["step"] <= row["step"]]
        assert row["train_loss_n"] == len(window) == n
        p10, p90 = np.percentile(window, [10, 90])
        assert (row["train_loss_p10"], row["train_loss_iqr"]) == pytest.approx((p10, p90 - p10), abs=1e-12)
        assert row["train_loss_iqr"] > 0


def test_curves_leave_the_trained_weights_unchanged(tiny_model_dir, synth_dir, retain_logs, tmp_path):
    plain = run_unlearn(_config(tiny_model_dir, synth_dir, tmp_path / "plain"))
    cb = TrajectoryCallback(1, synth_dir, retain_logs=retain_logs, max_items=ITEMS, max_new_tokens=NEW_TOKENS)
    curved = run_unlearn(_config(tiny_model_dir, synth_dir, tmp_path / "curved"), callbacks=[cb])
    assert [r["step"] for r in _rows(curved)] == [0, 1, 2, 3, 4]
    a, b = load_file(str(plain / "model.safetensors")), load_file(str(curved / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit-identical
    base = load_file(str(tiny_model_dir / "model.safetensors"))
    assert max(float((a[k] - base[k]).abs().max()) for k in a) > 1e-4  # the run did train


def test_evaluate_restores_rng_and_training_mode(tiny_model_dir, synth_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).train()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    cb = TrajectoryCallback(1, synth_dir, max_items=2, max_new_tokens=3)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    summary, _ = cb.evaluate(model, tok)
    assert torch.equal(torch.rand(3), expected) and model.training
    assert summary["forget_quality"] is None  # no retain logs: FQ is null, the rest is there
    assert 0 <= summary["model_utility"] <= 1  # (0 here: an untrained model recalls no word, ROUGE = 0)
    encoded = dict(cb.scorer.encoded)
    cb.evaluate(model, tok)
    assert all(cb.scorer.encoded[k] is v for k, v in encoded.items())  # the tokenised splits are reused


def test_nll_spread_hand_values():
    s = nll_spread([5.0, 1.0, 3.0, 2.0, 4.0])
    assert s["forget_nll_mean"] == 3.0 and s["forget_nll_p50"] == 3.0
    assert s["forget_nll_p10"] == pytest.approx(1.4) and s["forget_nll_p90"] == pytest.approx(4.6)
    assert s["forget_nll_iqr"] == pytest.approx(3.2)
    assert all(math.isnan(v) for v in nll_spread([]).values())


def test_first_forget_items_cuts_the_retain_logs():
    retain = {"forget_truth_ratio": {"agg_value": 0.5, "value_by_index": {str(i): {"score": i / 10} for i in range(5)}}}
    cut = first_forget_items(retain, 3)
    assert list(cut["forget_truth_ratio"]["value_by_index"]) == ["0", "1", "2"]
    assert len(retain["forget_truth_ratio"]["value_by_index"]) == 5  # the input is not modified
    with pytest.raises(DataError, match="3 per-item scores but the curve evaluates 4"):
        first_forget_items(cut, 4)


def test_config_errors_come_before_any_folder(tiny_model_dir, synth_dir, retain_logs, tmp_path, capsys):
    data = {"source": str(synth_dir)}
    assert trajectory_callback({"data": data}) is None
    with pytest.raises(ConfigError, match="need eval_every"):
        trajectory_callback({"data": data, "eval_max_items": 3})
    with pytest.raises(ConfigError, match="did you mean retain_logs"):
        trajectory_callback({"data": data, "eval_every": 2, "eval": {"retain_log": "x"}})
    with pytest.raises(ConfigError, match="eval_every=0 must be a positive integer"):
        trajectory_callback({"data": data, "eval_every": 0, "eval": {"retain_logs": str(retain_logs)}})
    with pytest.raises(ConfigError, match="data.kind: qa"):
        trajectory_callback({"data": {**data, "kind": "text"}, "eval_every": 2})
    with pytest.raises(ConfigError, match="eval.draft_answers must be true or false, got 'no'"):
        trajectory_callback({"data": data, "eval_every": 2, "eval": {"retain_logs": str(retain_logs), "draft_answers": "no"}})
    few = {"data": data, "eval_every": 2, "eval_max_items": 4}
    plain = trajectory_callback({**few, "eval": {"retain_logs": str(retain_logs), "draft_answers": False}})
    assert plain.draft_answers is False and trajectory_callback(few).draft_answers is True
    out = tmp_path / "run"
    cfg = _config(tiny_model_dir, synth_dir, out, eval={"retain_logs": str(retain_logs)})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["unlearn", "--config", str(tmp_path / "c.yaml"), "--set", "eval_every=2"]) == 2  # 10 items > 4
    err = capsys.readouterr().err
    assert "forget_truth_ratio" in err and "eval_max_items" in err
    assert not out.exists() and not partial_path(out).exists()


def test_only_the_main_process_writes_and_a_resume_drops_later_rows(synth_dir, tmp_path):
    from types import SimpleNamespace

    cb = TrajectoryCallback(2, synth_dir, max_items=2)

    def no_eval(model, tokenizer):
        raise AssertionError("a non-main process must not evaluate")

    cb.evaluate = no_eval
    args = SimpleNamespace(output_dir=str(tmp_path))
    cb.on_train_begin(args, SimpleNamespace(global_step=0, epoch=0.0, is_world_process_zero=False), None)
    cb.on_step_end(args, SimpleNamespace(global_step=2, epoch=0.5, is_world_process_zero=False), None)
    assert not (tmp_path / TRAJECTORY_FILE).exists()
    path = tmp_path / TRAJECTORY_FILE
    path.write_text("".join(json.dumps({"step": s}) + "\n" for s in (0, 2, 4)))
    resumed = TrajectoryCallback(2, synth_dir, max_items=2)
    resumed.evaluate = no_eval  # step 2 is already in the file: no new evaluation at train begin
    resumed.on_train_begin(args, SimpleNamespace(global_step=2, epoch=0.5, is_world_process_zero=True), None)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [0, 2]


def test_eval_every_epoch_evaluates_at_each_epoch_end_as_open_unlearnings_eval_strategy_epoch(tiny_model_dir, synth_dir,
                                                                                             retain_logs, tmp_path):
    # 10 forget items, batch 4: 3 steps an epoch; 7 steps = 2 full epochs and the start of a third
    cb = trajectory_callback({"data": {"source": str(synth_dir)}, "eval_every": "epoch", "eval_max_items": ITEMS,
                              "eval": {"retain_logs": str(retain_logs), "max_new_tokens": NEW_TOKENS}})
    out = run_unlearn(_config(tiny_model_dir, synth_dir, tmp_path / "run", training={**TRAINING, "max_steps": 7}),
                      callbacks=[cb])
    rows = _rows(out)
    assert [r["step"] for r in rows] == [0, 3, 6, 7]  # start, the two epoch ends, the end of training
    assert [r["epoch"] for r in rows[1:3]] == [pytest.approx(1.0), pytest.approx(2.0)]
    with pytest.raises(ConfigError, match="eval_every='epochs' must be a positive integer .* or 'epoch'"):
        trajectory_callback({"data": {"source": str(synth_dir)}, "eval_every": "epochs"})
