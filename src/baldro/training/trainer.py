"""``UnlearnTrainer``: a ``transformers.Trainer`` whose loss is objective × aggregator × retain term.

    total = γ · aggregate_i ℓ_i(forget batch) + λ · retain(retain batch)        (``baldro.composition``)

The loss path is lean: per-sample statistics come from the final hidden states with the LM head applied only at
answer tokens (``baldro.core.sequence``), ``labels`` are never passed to the model, the reference log-likelihoods
of NPO / IdkDPO come from a cache computed once (:mod:`baldro.training.reference_cache`), BalDRO-G back-propagates
through the kept rows only (ranked in a no-grad pass or in the one autograd pass, :mod:`baldro.training.group_plan`),
and ``dro_scope="global"`` aggregates over the whole
effective batch (:mod:`baldro.training.dro_scope`).

Every path computes ``UnlearnLoss`` (the one place the formula lives) through a DRO-scope strategy
(:class:`~baldro.training.dro_scope.MicroScope` / ``GlobalScope``). Besides ``loss``, the Trainer's ``log()``
receives, averaged over the logging window and every process: ``forget/loss`` (the aggregate), ``forget/loss_mean``
and ``forget/loss_q10|q50|q90`` (the per-sample losses), ``retain/loss`` (the answer-token mean NLL of the retain
rows, weighted by their token counts: the same number for any process count), and ``dro/ess`` (1/Σw²), ``dro/max_weight``,
``dro/weight_entropy``, ``dro/kept_fraction`` and ``dro/beta_star`` (kl_radius) — so ``report_to: tensorboard``
or ``wandb`` plots them (TensorBoard is tested; W&B goes through the same ``log()`` but is not tested offline).

Batches are ``{"forget": {...}, "retain": {...}, "idk": {...}}`` (``baldro.data.collate.UnlearnCollator``) where each
part has ``input_ids``, ``attention_mask``, ``labels`` and ``index``.

What the loss reads from a batch lives in :mod:`baldro.training.loss_inputs` (given a ``LossSources``); the scope
strategies in :mod:`baldro.training.dro_scope`, which see the Trainer only through a
:class:`~baldro.training.scope_context.ScopeContext` (both built here, per call). At ~370 lines this file is over the
project's ~300 on purpose: what is left is the ``Trainer`` overrides themselves (``train``, ``compute_loss``, ``log``,
``training_step``, ``floating_point_ops``, ``get_batch_samples``) and the state they share (reference cache, metrics
window), which must live on the class.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
import transformers
from torch import Tensor, nn
from transformers import Trainer, TrainerCallback

from baldro import aggregators as aggregators_mod
from baldro import objectives as objectives_mod
from baldro import retain as retain_mod
from baldro.aggregators import Aggregator
from baldro.composition import UnlearnLoss, loss_quantiles, weight_statistics
from baldro.core.labels import IGNORE_INDEX
from baldro.errors import BaldroError
from baldro.objectives import ForgetInputs, Objective
from baldro.retain import RetainInputs, RetainTerm
from baldro.runfolder import last_checkpoint
from baldro.training import loss_inputs
from baldro.training.dro_scope import build_scope, gather_cat
from baldro.training.group_plan import GROUP_PLANS
from baldro.training.per_sample_log import FILE_NAME as PER_SAMPLE_FILE
from baldro.training.per_sample_log import PerSampleLog
from baldro.training.reference_cache import REFERENCE_FILE, ReferenceCache, compute_reference_cache
from baldro.training.scope_context import ScopeContext
from baldro.training.sharding import check_full_save, pooled_means

TRANSFORMERS_VERSION = tuple(int(p) for p in transformers.__version__.split(".")[:2])


class NonFiniteLossError(BaldroError):
    """The loss became NaN or infinite; the message names the step and the batch's dataset indices."""


def _build(value: Any, module: Any) -> Any:
    if value is None or not isinstance(value, str | dict):
        return value
    spec = {"name": value} if isinstance(value, str) else dict(value)
    spec.pop("weight", None)
    return module.build(spec.pop("name"), **spec)


class _EpochCallback(TrainerCallback):
    """Tells the dataset the epoch, so its retain draws follow (seed, epoch, index)."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(math.floor((state.epoch or 0.0) + 1e-6))


class _ReferenceCacheCallback(TrainerCallback):
    """Computes the reference cache when training begins: after the Trainer has wrapped the model (DDP, FSDP,
    DeepSpeed), so the cache takes the training step's path through the same wrapper, on every process."""

    def __init__(self, trainer: UnlearnTrainer) -> None:
        self.trainer = trainer

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.trainer.ensure_reference_cache(self.trainer.model_wrapped)


class UnlearnTrainer(Trainer):
    """A ``Trainer`` for unlearning. Extra keyword arguments over ``transformers.Trainer``:

    ``forget_dataset`` / ``retain_dataset`` / ``idk_dataset`` (``QADataset``s, combined with ``UnlearnDataset``) or
    a ready ``train_dataset``; ``objective``, ``aggregator``, ``retain`` (components, names or ``{name, ...}``
    dicts); ``forget_weight`` γ, ``retain_weight`` λ, ``retain_aggregator``; ``dro_scope`` ``"micro"`` or
    ``"global"``; ``reference_cache`` (a :class:`ReferenceCache`; computed in ``train()`` when needed and absent,
    and saved as ``reference_logp.safetensors`` in ``output_dir``); ``reference_model`` (a frozen copy of the
    initial model, needed by the ``kl`` retain term; used live by the objective only when ``compute_loss`` runs
    without a cache); ``log_every`` for ``per_sample.jsonl`` (None: off); ``chunk_tokens``; ``forget_unit`` and
    ``retain_rows`` (``UnlearnLoss`` options, set by ``compat: released``); ``group_plan`` (BalDRO-G in one pass or
    two, ``auto``: the cheaper, :mod:`baldro.training.group_plan`).
    """

    def __init__(
        self,
        model: nn.Module | None = None,
        args: Any = None,
        *,
        forget_dataset: Any = None,
        retain_dataset: Any = None,
        idk_dataset: Any = None,
        objective: Objective | str | dict = "npo",
        aggregator: Aggregator | str | dict = "mean",
        retain: RetainTerm | str | dict | None = None,
        forget_weight: float = 1.0,
        retain_weight: float = 1.0,
        retain_aggregator: Aggregator | str | dict | None = None,
        dro_scope: str = "micro",
        reference_cache: ReferenceCache | None = None,
        reference_model: nn.Module | None = None,
        log_every: int | None = 1,
        chunk_tokens: int = 1024,
        forget_unit: str = "sample",
        retain_rows: str = "all",
        group_plan: str = "auto",
        **kwargs: Any,
    ) -> None:
        self.scope = build_scope(dro_scope)
        if group_plan not in GROUP_PLANS:
            raise ValueError(f"group_plan must be one of {', '.join(GROUP_PLANS)}, got {group_plan!r}")
        self.group_plan = group_plan
        if isinstance(retain, dict) and "weight" in retain:
            retain_weight = float(retain["weight"])
        self.loss_fn = UnlearnLoss(
            objective=_build(objective, objectives_mod),
            aggregator=_build(aggregator, aggregators_mod),
            retain=_build(retain, retain_mod),
            forget_weight=forget_weight,
            retain_weight=retain_weight,
            retain_aggregator=_build(retain_aggregator, aggregators_mod),
            forget_unit=forget_unit,
            retain_rows=retain_rows,
        )
        if dro_scope == "global" and self.loss_fn.global_scope_problem():
            raise ValueError(f"dro_scope='global' does not support {self.loss_fn.global_scope_problem()}; use 'micro'")
        self.dro_scope = dro_scope
        self.reference_cache = reference_cache
        self.reference_model = reference_model
        self.chunk_tokens = chunk_tokens
        self._metrics: defaultdict[str, list[float]] = defaultdict(list)
        self._metric_weights: defaultdict[str, list[float]] = defaultdict(list)  # keys logged as weighted means
        if args is not None:
            args.remove_unused_columns = False
        if kwargs.get("train_dataset") is None and forget_dataset is not None:
            from baldro.data.collate import UnlearnDataset

            seed = getattr(args, "seed", 0)
            kwargs["train_dataset"] = UnlearnDataset(forget_dataset, retain_dataset, idk_dataset, seed=seed)
        if kwargs.get("data_collator") is None:
            from baldro.data.collate import UnlearnCollator

            tokenizer = kwargs.get("processing_class") or kwargs.get("tokenizer")
            if tokenizer is None:
                raise ValueError("UnlearnTrainer needs processing_class=<tokenizer> or a data_collator")
            kwargs["data_collator"] = UnlearnCollator(tokenizer)
        super().__init__(model=model, args=args, **kwargs)
        self.model_accepts_loss_kwargs = False
        self.add_callback(_EpochCallback(self.train_dataset))
        self.add_callback(_ReferenceCacheCallback(self))
        self.per_sample_log = PerSampleLog(Path(self.args.output_dir) / PER_SAMPLE_FILE, log_every) if log_every else None
        if self.loss_fn.retain is not None and self.loss_fn.retain.needs_reference_logits and reference_model is None:
            raise ValueError("the 'kl' retain term needs reference_model=<a frozen copy of the initial model>")
        if self.reference_model is not None:
            self.reference_model.eval().requires_grad_(False)
            self.reference_model.to(self.args.device)

    # ----- set-up ---------------------------------------------------------------------------------------------
    @property
    def objective(self) -> Objective:
        return self.loss_fn.objective

    def _needs_cache(self) -> bool:
        return self.objective.needs_reference and self.reference_cache is None

    def ensure_reference_cache(self, model: nn.Module | None = None) -> None:
        """Load or compute the reference cache (eval mode, no grad, the training collator) before any update.

        ``model``: the model to run, by default ``self.model``; in ``train()`` the wrapped model the training step
        runs (the reference values then come through the same wrapper and lean-head path as the policy's: with FSDP
        or ZeRO-3 the unwrapped model holds no usable weights, and a cache computed on another path differs by
        float rounding, enough to break BalDRO-G's exact ties at step 1). Every process computes it."""
        if not self._needs_cache():
            return
        model = self.model if model is None else model
        path = Path(self.args.output_dir) / REFERENCE_FILE
        self.accelerator.wait_for_everyone()  # every process decides before the main one writes the file
        if path.exists():
            self.reference_cache = ReferenceCache.load(path)
            return
        parts = ("forget", "idk") if self.objective.needs_idk else ("forget",)
        dataset = self.train_dataset
        items = (dataset[i] for i in range(len(dataset)))
        with self.compute_loss_context_manager():  # the numeric context of the training step (see _forward_context)
            self.reference_cache = compute_reference_cache(
                model,
                items,
                self.data_collator,
                self.args.per_device_train_batch_size,
                self.args.device,
                parts,
                self.chunk_tokens,
                forward_context=self._forward_context,
            )
        if self.args.should_save:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".partial")
            self.reference_cache.save(partial)
            partial.replace(path)

    def train(self, resume_from_checkpoint: Any = None, *args: Any, **kwargs: Any) -> Any:
        """The Trainer's ``train``, refused up front when the model would not be saved in full
        (:func:`baldro.training.sharding.check_full_save`). The reference cache is computed when training begins,
        through the wrapped model; when resuming it is the run folder's (or, if missing, computed from the initial
        weights before the checkpoint is loaded)."""
        check_full_save(self)
        if resume_from_checkpoint is True:
            resume_from_checkpoint = last_checkpoint(Path(self.args.output_dir))
            if resume_from_checkpoint is None:
                raise ValueError(f"resume_from_checkpoint=True but {self.args.output_dir} has no checkpoint-* folder")
        if resume_from_checkpoint:
            self.ensure_reference_cache()
        if self.per_sample_log is not None and resume_from_checkpoint and self.args.should_save:
            digits = Path(str(resume_from_checkpoint)).name.rsplit("-", 1)[-1]
            if digits.isdigit():
                self.per_sample_log.truncate_after(int(digits))
        return super().train(resume_from_checkpoint and str(resume_from_checkpoint), *args, **kwargs)

    def _forward_context(self) -> Any:
        """The mixed-precision context accelerate puts around a prepared model's ``forward`` (``training.bf16/fp16``
        autocast, a no-op otherwise). The reference passes (cache, ``reference_model``) run the forward under it and
        the LM head outside it, inside ``compute_loss_context_manager`` — exactly as the training step runs the
        policy — so that at lr = 0 the log-ratio is 0, not bf16 rounding noise."""
        return self.accelerator.autocast()

    def _policy_context(self, model: nn.Module) -> Any:
        """:meth:`_forward_context` when ``model``'s forward is accelerate-wrapped (inside ``train()``), else ``None``
        (a direct ``compute_loss`` call on an unprepared model runs it in plain precision)."""
        return self._forward_context if getattr(model, "_original_forward", None) is not None else None

    # ----- per-sample pieces (:mod:`baldro.training.loss_inputs`) ------------------------------------------------
    def loss_sources(self) -> loss_inputs.LossSources:
        """What :mod:`~baldro.training.loss_inputs` reads of the Trainer, as it is now (the cache may come later)."""
        return loss_inputs.LossSources(self.objective, self.loss_fn.retain, self.chunk_tokens, self.reference_cache,
                                       self.reference_model, self._policy_context)

    def forget_inputs(self, model: nn.Module, inputs: dict[str, Any], rows: Tensor | None = None) -> ForgetInputs:
        """The objective's inputs on the forget batch (optionally only ``rows``), with autograd as the caller sets."""
        return loss_inputs.forget_inputs(self.loss_sources(), model, inputs, rows)

    def retain_inputs(self, model: nn.Module, retain: dict[str, Tensor]) -> RetainInputs:
        """The retain term's inputs on the retain batch (with the answer-token KL for ``kl``)."""
        return loss_inputs.retain_inputs(self.loss_sources(), model, retain)

    def scope_context(self) -> ScopeContext:
        """What the DRO-scope strategy may use of the Trainer, read from the instance now (so wrappers set on it
        are the ones called)."""
        return ScopeContext(
            loss_fn=self.loss_fn, group_plan=self.group_plan, forget_inputs=self.forget_inputs,
            retain_inputs=self.retain_inputs, record_batch=self.record_batch, check_finite=self.check_finite,
            ga_divisor=self.ga_divisor, window_size=self.window_size, prepare_inputs=self._prepare_inputs,
            num_processes=self.accelerator.num_processes,
        )

    # ----- the loss -------------------------------------------------------------------------------------------
    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        """``UnlearnLoss`` on this micro-batch, through the DRO scope's strategy (:mod:`baldro.training.dro_scope`)."""
        out = self.scope.loss(self.scope_context(), model, inputs)
        if model.training and out.retain_loss is not None:
            tokens = int((inputs["retain"]["labels"][:, 1:] != IGNORE_INDEX).sum())
            self._metrics["retain/loss"].append(float(out.retain_loss) / out.retain_share)
            self._metric_weights["retain/loss"].append(float(tokens))  # the token mean over the window
        return (out.total, {"loss": out.total}) if return_outputs else out.total

    def record_batch(
        self,
        index: Tensor,
        per_sample: Tensor,
        weights: Tensor,
        nll: Tensor | None,
        stats: dict[str, float],
        forget_loss: Tensor,
        gathered: bool = False,
    ) -> None:
        """Metrics for :meth:`log` and rows for ``per_sample.jsonl`` of one aggregation (a micro-batch, or the whole
        window under ``dro_scope: global``; ``gathered``: the tensors already hold every process's rows)."""
        metrics = self._metrics
        metrics["forget/loss"].append(float(forget_loss))
        for key, value in loss_quantiles(per_sample).items():
            metrics[f"forget/{key}"].append(value)
        for key, value in {**weight_statistics(weights), **stats}.items():
            metrics[f"dro/{key}"].append(float(value))
        step = self.state.global_step + 1
        if self.per_sample_log is None or not self.per_sample_log.due(step) or nll is None:
            return
        rows = [index, per_sample, weights, nll]
        if not gathered:
            rows = [gather_cat(t.detach().float()) for t in rows]
        if self.args.should_save:
            self.per_sample_log.write(step, rows[0].long(), *rows[1:], stats)

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """The Trainer's log, plus the forget/retain losses and DRO statistics averaged since the last log (as TRL's
        trainers do) and over every process's values, so that ``report_to`` (TensorBoard, W&B) shows them."""
        if "loss" in logs:  # every process logs here (the Trainer gathers the loss first): pool the ranks' values
            logs = {**logs, **pooled_means(self._metrics, self._metric_weights)}
            self._metrics.clear()
            self._metric_weights.clear()
        super().log(logs, *args, **kwargs)

    def window_size(self) -> int:
        """Micro-batches in this optimizer step's accumulation window."""
        return int(getattr(self, "current_gradient_accumulation_steps", None) or self.args.gradient_accumulation_steps)

    def ga_divisor(self) -> int:
        """What ``training_step`` divides our loss by before ``backward``. transformers 4.46–4.47: nothing;
        4.48–4.54: ``gradient_accumulation_steps``; ≥ 4.55: the window's micro-batch count."""
        if getattr(self, "current_gradient_accumulation_steps", None):
            return int(self.current_gradient_accumulation_steps)
        return self.args.gradient_accumulation_steps if TRANSFORMERS_VERSION >= (4, 48) else 1

    def training_step(self, model: nn.Module, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Tensor:
        """The Trainer's step, then a NaN/inf check on its (detached) loss — where the Trainer itself already waits
        for the device — before the optimizer can apply the gradients."""
        index = inputs["forget"]["index"]
        loss = super().training_step(model, inputs, *args, **kwargs)
        self.check_finite(loss, index)
        return loss

    def check_finite(self, total: Tensor, index: Tensor) -> None:
        if not bool(torch.isfinite(total.detach()).all()):
            raise NonFiniteLossError(
                f"the loss is {float(total.detach().float())} at step {self.state.global_step + 1} on forget dataset "
                f"indices {index.tolist()}; lower training.learning_rate or check these rows"
            )

    def floating_point_ops(self, inputs: dict[str, Any]) -> int:
        """≈ 6 · parameters · tokens of every part of the batch (forget, retain, idk), for ``total_flos``."""
        if not hasattr(self, "_n_params"):
            counter = getattr(self.model, "num_parameters", None)
            self._n_params = counter(exclude_embeddings=True) if callable(counter) else 0
        tokens = sum(int(part["input_ids"].numel()) for part in inputs.values() if isinstance(part, dict))
        return 6 * tokens * self._n_params

    # ----- global DRO scope -----------------------------------------------------------------------------------
    def get_batch_samples(self, epoch_iterator: Any, num_batches: int, *args: Any, **kwargs: Any) -> Any:
        batch_samples, num_items = super().get_batch_samples(epoch_iterator, num_batches, *args, **kwargs)
        if batch_samples:
            self.scope.plan_window(self.scope_context(), self.model_wrapped, batch_samples)
        return batch_samples, num_items
