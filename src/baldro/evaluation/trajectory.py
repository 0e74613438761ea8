"""Unlearning curves: a ``TrainerCallback`` that runs the TOFU evaluation during training → ``trajectory.jsonl``.

At step 0 (``on_train_begin``), every ``every`` optimizer steps (``every="epoch"``: at the end of every epoch, as
open-unlearning's ``eval_strategy: epoch``) and at the end of training the model is evaluated on
the TOFU-style splits exactly as ``baldro eval tofu`` does (same code path, :func:`baldro.evaluation.tofu.run_tofu_eval`)
and one JSON line is appended to ``<output_dir>/trajectory.jsonl``::

    {"step", "epoch", "eval_seconds", "n_forget_items", <every scalar of TOFU_SUMMARY.json: forget_quality,
     model_utility, forget_truth_ratio, forget_Q_A_Prob, ...>, "forget_nll_mean", "forget_nll_p10", "forget_nll_p50",
     "forget_nll_p90", "forget_nll_iqr", "train_loss_n", "train_loss_p10", "train_loss_p50", "train_loss_p90",
     "train_loss_iqr"}

``forget_nll_*`` are over the forget items' answer NLL (mean over answer tokens, EOS included — the ``avg_loss`` of
``forget_Q_A_Prob``); ``forget_nll_iqr`` = p90 − p10 (linear-interpolated percentiles, ``numpy.percentile``).
``train_loss_n``, ``train_loss_p10`` / ``p50`` / ``p90`` and ``train_loss_iqr`` (= p90 − p10) summarise the
objective's per-sample forget losses ℓ_i that training logged in ``per_sample.jsonl`` since the previous row (steps
in (previous step, this step]; each ℓ_i as computed in its own step — what the DRO aggregator saw); null at step 0,
without a per-sample log (``log_every: null``) or when no logged step falls in the window.

The evaluation does not disturb training: the model goes to eval mode and back, everything runs under no-grad, and
the torch / CUDA / ``random`` / numpy RNG states are restored afterwards, so a run gives the same weights with and
without curves. The splits are read, and their questions and answers tokenised, once per run. Under DDP only the
main process evaluates (on its full model replica) and writes; the others wait at the next collective. Sharded
setups (FSDP, ZeRO-3) are not supported.
"""

from __future__ import annotations

import copy
import difflib
import json
import random
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback

from baldro.core.padmask import DEFAULT_PAD_MASKING, check_pad_masking
from baldro.core.run_files import PER_SAMPLE_FILE
from baldro.data.prompt_formats import PromptFormat, format_from_spec
from baldro.errors import ConfigError, DataError
from baldro.evaluation.retain_logs import retain_forget_truth_ratios
from baldro.evaluation.tofu import checked_retain, run_tofu_eval
from baldro.evaluation.tofu_scorer import TofuScorer
from baldro.evaluation.tofu_splits import load_tofu_eval_splits
from baldro.readback import read_jsonl, replace_text

TRAJECTORY_FILE = "trajectory.jsonl"
EVERY_EPOCH = "epoch"  # eval_every: epoch — evaluate at the end of every epoch
EVAL_KEYS = ("retain_logs", "source", "forget_split", "batch_size", "max_new_tokens", "max_length", "format",
             "pad_masking", "draft_answers")
NO_RETAIN = (
    "eval.retain_logs is not set: trajectory.jsonl will have forget_quality null; set it to the retain model's "
    "TOFU_EVAL.json (baldro eval tofu of the retain model) to get Forget Quality"
)


def nll_spread(values: list[float]) -> dict[str, float]:
    """Mean, 10/50/90 % percentiles (linear interpolation) and p90 − p10 of per-item forget NLLs."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return {k: float("nan") for k in ("forget_nll_mean", "forget_nll_p10", "forget_nll_p50", "forget_nll_p90", "forget_nll_iqr")}
    p10, p50, p90 = np.percentile(arr, [10, 50, 90])
    return {
        "forget_nll_mean": float(arr.mean()),
        "forget_nll_p10": float(p10),
        "forget_nll_p50": float(p50),
        "forget_nll_p90": float(p90),
        "forget_nll_iqr": float(p90 - p10),
    }


TRAIN_LOSS_KEYS = ("train_loss_p10", "train_loss_p50", "train_loss_p90", "train_loss_iqr")


def train_loss_spread(per_sample: Path, after_step: int | None, step: int) -> dict[str, float | int | None]:
    """``train_loss_*`` of a trajectory row: percentiles of the per-sample losses logged in ``per_sample`` at steps
    in (``after_step``, ``step``] (``after_step`` None: no earlier row, so the window is empty)."""
    losses: list[float] = []
    if after_step is not None and per_sample.is_file():
        for line in per_sample.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                if after_step < row["step"] <= step:
                    losses.append(float(row["loss"]))
    if not losses:
        return {"train_loss_n": 0, **dict.fromkeys(TRAIN_LOSS_KEYS)}
    p10, p50, p90 = np.percentile(np.asarray(losses, dtype=np.float64), [10, 50, 90])
    return {"train_loss_n": len(losses), "train_loss_p10": float(p10), "train_loss_p50": float(p50),
            "train_loss_p90": float(p90), "train_loss_iqr": float(p90 - p10)}


def first_forget_items(retain: Mapping[str, Any], n: int, name: str = "the retain logs") -> dict[str, Any]:
    """The retain logs with ``forget_truth_ratio`` cut to its first ``n`` items (the rows ``max_items`` keeps)."""
    scores = retain_forget_truth_ratios(retain, name)
    if len(scores) < n:
        raise DataError(
            f"{name}: key 'forget_truth_ratio' has {len(scores)} per-item scores but the curve evaluates {n} forget "
            "items; use the retain model's logs for the same forget split, or lower eval_max_items"
        )
    out = dict(retain)
    entry = copy.deepcopy(retain["forget_truth_ratio"])
    entry["value_by_index"] = dict(list(entry["value_by_index"].items())[:n])
    out["forget_truth_ratio"] = entry
    return out


def trajectory_row(step: int, epoch: float | None, summary: Mapping[str, Any], eval_json: Mapping[str, Any], seconds: float) -> dict[str, Any]:
    """One line of ``trajectory.jsonl`` from a TOFU summary and eval dict (see the module docstring)."""
    items = eval_json["forget_Q_A_Prob"]["value_by_index"]
    nll = [float(v["avg_loss"]) for v in items.values()]
    row: dict[str, Any] = {"step": int(step), "epoch": None if epoch is None else float(epoch)}
    row["eval_seconds"] = round(float(seconds), 3)
    row["n_forget_items"] = len(nll)
    row.update({k: v for k, v in summary.items() if v is None or isinstance(v, int | float)})
    row.update(nll_spread(nll))
    return row


class _RngGuard:
    """Saves the torch, CUDA, ``random`` and numpy RNG states on entry and restores them on exit."""

    def __enter__(self) -> _RngGuard:
        self.torch_state = torch.get_rng_state()
        self.cuda_state = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
        self.py_state = random.getstate()
        self.np_state = np.random.get_state()
        return self

    def __exit__(self, *exc: Any) -> None:
        torch.set_rng_state(self.torch_state)
        if self.cuda_state is not None:
            torch.cuda.set_rng_state_all(self.cuda_state)
        random.setstate(self.py_state)
        np.random.set_state(self.np_state)


class TrajectoryCallback(TrainerCallback):
    """Evaluates TOFU at step 0, every ``every`` steps (or every epoch: ``every="epoch"``) and at the end; appends rows
    to ``output_dir/trajectory.jsonl``.

    ``source`` / ``forget_split``: the TOFU-style data; ``retain_logs``: the retain model's TOFU_EVAL.json (path or
    dict; cut to the first ``max_items`` forget items when it has more); ``max_items`` keeps the first rows of every
    split; ``fmt``, ``batch_size``, ``max_new_tokens``, ``max_length``, ``pad_masking``, ``draft_answers`` as in
    :func:`~baldro.evaluation.tofu.evaluate_tofu`.
    """

    def __init__(
        self,
        every: int | str,
        source: str | Path,
        forget_split: str = "forget10",
        retain_logs: str | Path | Mapping[str, Any] | None = None,
        max_items: int | None = None,
        fmt: PromptFormat | None = None,
        batch_size: int = 32,
        max_new_tokens: int = 200,
        max_length: int = 512,
        file_name: str = TRAJECTORY_FILE,
        pad_masking: str = DEFAULT_PAD_MASKING,
        draft_answers: bool = True,
    ) -> None:
        if every != EVERY_EPOCH and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise ConfigError(f"eval_every={every!r} must be a positive integer (optimizer steps between evaluations) "
                              f"or {EVERY_EPOCH!r}")
        self.every, self.file_name = every, file_name
        self.pad_masking = check_pad_masking(pad_masking, "eval.pad_masking")
        if not isinstance(draft_answers, bool):
            raise ConfigError(f"eval.draft_answers must be true or false, got {draft_answers!r}")
        self.draft_answers = draft_answers
        self.splits, self.skipped = load_tofu_eval_splits(source, forget_split, max_items)
        retain, self.retain_name = checked_retain(retain_logs)
        n = len(self.splits["forget"].rows)
        self.retain = None if retain is None else first_forget_items(retain, n, self.retain_name)
        self.fmt, self.batch_size, self.max_new_tokens, self.max_length = fmt or PromptFormat.auto(), batch_size, max_new_tokens, max_length
        self.scorer: TofuScorer | None = None
        self.last_step: int | None = None
        self.last: tuple[dict[str, Any], dict[str, Any]] | None = None  # (summary, eval dict) of the latest row

    def evaluate(self, model: torch.nn.Module, tokenizer: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """(summary, eval dict) of ``model`` now; the model's mode and every RNG state are left as they were."""
        if self.scorer is None or self.scorer.tok is not tokenizer:
            if tokenizer.pad_token_id is None:
                raise ConfigError("the tokenizer has no pad token; set one (e.g. the EOS token) before training")
            self.scorer = TofuScorer(model, tokenizer, int(tokenizer.pad_token_id), self.fmt, self.batch_size,
                               self.max_new_tokens, self.max_length, progress=False, pad_masking=self.pad_masking,
                               draft_answers=self.draft_answers)
        self.scorer.model = model
        was_training = model.training
        model.eval()
        try:
            with _RngGuard(), torch.no_grad():
                return run_tofu_eval(self.scorer, self.splits, self.skipped, self.retain, self.retain_name)
        finally:
            model.train(was_training)

    def _record(self, args: Any, state: Any, model: Any, tokenizer: Any) -> None:
        if self.last_step == state.global_step:
            return
        previous, self.last_step = self.last_step, state.global_step
        if not state.is_world_process_zero:
            return
        start = time.perf_counter()
        summary, eval_json = self.evaluate(model, tokenizer)
        self.last = (summary, eval_json)
        row = trajectory_row(state.global_step, state.epoch, summary, eval_json, time.perf_counter() - start)
        row.update(train_loss_spread(Path(args.output_dir) / PER_SAMPLE_FILE, previous, state.global_step))
        path = Path(args.output_dir) / self.file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def _truncate_after(self, path: Path, step: int) -> None:
        """Drop rows beyond ``step`` (a resumed run re-evaluates them); a last line torn by the crash is dropped with
        a warning, any other damage is a DataError naming the line."""
        if not path.is_file():
            return
        rows, torn = read_jsonl(path, drop_torn_tail=True)
        if torn:
            warnings.warn(f"{path}: {torn}: dropped", stacklevel=2)
        for number, row in enumerate(rows, 1):
            if not isinstance(row, dict) or not isinstance(row.get("step"), int):
                raise DataError(f"{path}: row {number} has no integer 'step'; the file is damaged: restore or delete it")
        kept = [row for row in rows if row["step"] <= step]
        replace_text(path, "".join(json.dumps(row) + "\n" for row in kept))
        if kept:
            self.last_step = kept[-1]["step"]

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, processing_class: Any = None, **kwargs: Any) -> None:
        from baldro.core.sharded import parameters_sharded

        if model is not None and parameters_sharded(model):  # every process stops here, before the first step
            raise ConfigError("eval_every: the unlearning curve is evaluated by the main process alone, which needs the "
                              "whole model; with FSDP or ZeRO-3 the weights are sharded — drop eval_every and evaluate "
                              "the saved model (baldro eval tofu)")
        if state.is_world_process_zero:
            self._truncate_after(Path(args.output_dir) / self.file_name, state.global_step)
        self._record(args, state, model, processing_class)

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, processing_class: Any = None, **kwargs: Any) -> None:
        if self.every != EVERY_EPOCH and state.global_step % self.every == 0:
            self._record(args, state, model, processing_class)

    def on_epoch_end(self, args: Any, state: Any, control: Any, model: Any = None, processing_class: Any = None, **kwargs: Any) -> None:
        if self.every == EVERY_EPOCH:
            self._record(args, state, model, processing_class)

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, processing_class: Any = None, **kwargs: Any) -> None:
        self._record(args, state, model, processing_class)


def _prompt_format(spec: Any) -> PromptFormat | None:
    return None if spec is None else format_from_spec(spec, "eval.format / data.format")


def _positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}={value!r} must be a positive integer")
    return value


def trajectory_callback(cfg: Mapping[str, Any]) -> TrajectoryCallback | None:
    """The callback a resolved ``baldro unlearn`` config asks for (``eval_every``, ``eval_max_items``, ``eval``
    section), or None without ``eval_every``. Data, retain logs and keys are checked here, before any training."""
    every = cfg.get("eval_every")
    section = cfg.get("eval") or {}
    if every is None:
        if cfg.get("eval_max_items") is not None or section:
            raise ConfigError("eval_max_items / eval need eval_every=N (evaluate every N optimizer steps) to take effect")
        return None
    if not isinstance(section, Mapping):
        raise ConfigError(f"config key 'eval' must be a mapping, got {section!r}")
    for key in section:
        if key not in EVAL_KEYS:
            close = difflib.get_close_matches(str(key), EVAL_KEYS, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}?" if close else f"valid keys: {', '.join(EVAL_KEYS)}"
            raise ConfigError(f"unknown key eval.{key!r} in the config; {hint}")
    data = cfg.get("data") or {}
    if data.get("kind", "qa") != "qa":
        raise ConfigError("eval_every evaluates TOFU-style splits; it needs data.kind: qa")
    source = section.get("source") or data.get("source")
    if not source:
        raise ConfigError("eval_every needs the eval data: set data.source or eval.source to a TOFU-style folder")
    max_items = cfg.get("eval_max_items")
    if section.get("retain_logs") is None:
        warnings.warn(NO_RETAIN, stacklevel=2)
    return TrajectoryCallback(
        every,  # checked by the callback: a positive integer or "epoch"
        source,
        section.get("forget_split") or data.get("forget_split") or "forget10",
        retain_logs=section.get("retain_logs"),
        max_items=None if max_items is None else _positive_int(max_items, "eval_max_items"),
        fmt=_prompt_format(section.get("format", data.get("format"))),
        batch_size=_positive_int(section.get("batch_size", 32), "eval.batch_size"),
        max_new_tokens=_positive_int(section.get("max_new_tokens", 200), "eval.max_new_tokens"),
        max_length=_positive_int(section.get("max_length", 512), "eval.max_length"),
        pad_masking=section.get("pad_masking", data.get("pad_masking", DEFAULT_PAD_MASKING)),
        draft_answers=section.get("draft_answers", True),
    )
