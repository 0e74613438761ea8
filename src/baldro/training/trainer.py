"""``UnlearnTrainer``: a ``transformers.Trainer`` whose loss is objective × aggregator × retain term.

    total = γ · aggregate_i ℓ_i(forget batch) + λ · retain(retain batch)        (``baldro.composition``)

The loss path is lean: per-sample statistics come from the final hidden states with the LM head applied only at
answer tokens (``baldro.core.sequence``), ``labels`` are never passed to the model, the reference log-likelihoods
of NPO / IdkDPO come from a cache computed once (:mod:`baldro.training.reference_cache`), BalDRO-G ranks the batch
in a no-grad pass and runs autograd on the kept rows only, and ``dro_scope="global"`` aggregates over the whole
effective batch (:mod:`baldro.training.dro_scope`).

Batches are ``{"forget": {...}, "retain": {...}, "idk": {...}}`` (``baldro.data.collate.UnlearnCollator``) where each
part has ``input_ids``, ``attention_mask``, ``labels`` and ``index``.
"""

from __future__ import annotations

import math
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
from baldro.aggregators.group import GroupAggregator
from baldro.composition import LossOutput, UnlearnLoss
from baldro.core.sequence import (
    answer_token_kl,
    final_hidden_states,
    model_sequence_stats,
    output_head,
    stats_from_hidden,
)
from baldro.errors import BaldroError
from baldro.objectives import ForgetInputs, Objective
from baldro.retain import RetainInputs, RetainTerm
from baldro.runfolder import last_checkpoint
from baldro.training.dro_scope import MicroPlan, gather_cat, rank_offset, split_weights
from baldro.training.per_sample_log import FILE_NAME as PER_SAMPLE_FILE
from baldro.training.per_sample_log import PerSampleLog
from baldro.training.reference_cache import REFERENCE_FILE, ReferenceCache, compute_reference_cache

PLAN_KEY = "_dro_slot"
TRANSFORMERS_VERSION = tuple(int(p) for p in transformers.__version__.split(".")[:2])
SPARSE_AGGREGATORS = (GroupAggregator,)


class NonFiniteLossError(BaldroError):
    """The loss became NaN or infinite; the message names the step and the batch's dataset indices."""


def _build(value: Any, module: Any) -> Any:
    if value is None or not isinstance(value, str | dict):
        return value
    spec = {"name": value} if isinstance(value, str) else dict(value)
    spec.pop("weight", None)
    return module.build(spec.pop("name"), **spec)


def _rows(part: dict[str, Tensor], rows: Tensor) -> dict[str, Tensor]:
    """The given rows of a collated part, with trailing all-padding columns removed."""
    out = {k: v[rows] for k, v in part.items() if isinstance(v, Tensor) and v.dim() >= 1 and v.shape[0] > 0}
    mask = out.get("attention_mask")
    if mask is not None and mask.dim() == 2 and mask.numel():
        used = mask.any(dim=0).nonzero()
        width = int(used.max()) + 1 if used.numel() else mask.shape[1]
        out = {k: (v[:, :width] if v.dim() == 2 else v) for k, v in out.items()}
    return out


class _EpochCallback(TrainerCallback):
    """Tells the dataset the epoch, so its retain draws follow (seed, rank, epoch, index)."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(math.floor((state.epoch or 0.0) + 1e-6))


class UnlearnTrainer(Trainer):
    """A ``Trainer`` for unlearning. Extra keyword arguments over ``transformers.Trainer``:

    ``forget_dataset`` / ``retain_dataset`` / ``idk_dataset`` (``QADataset``s, combined with ``UnlearnDataset``) or
    a ready ``train_dataset``; ``objective``, ``aggregator``, ``retain`` (components, names or ``{name, ...}``
    dicts); ``forget_weight`` γ, ``retain_weight`` λ, ``retain_aggregator``; ``dro_scope`` ``"micro"`` or
    ``"global"``; ``reference_cache`` (a :class:`ReferenceCache`; computed in ``train()`` when needed and absent,
    and saved as ``reference_logp.safetensors`` in ``output_dir``); ``reference_model`` (a frozen copy of the
    initial model, needed by the ``kl`` retain term; used live by the objective only when ``compute_loss`` runs
    without a cache); ``log_every`` for ``per_sample.jsonl`` (None: off); ``chunk_tokens``.
    """

    loss_is_scaled_for_ga = False

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
        **kwargs: Any,
    ) -> None:
        if dro_scope not in ("micro", "global"):
            raise ValueError(f"dro_scope must be 'micro' or 'global', got {dro_scope!r}")
        if isinstance(retain, dict) and "weight" in retain:
            retain_weight = float(retain["weight"])
        self.loss_fn = UnlearnLoss(
            objective=_build(objective, objectives_mod),
            aggregator=_build(aggregator, aggregators_mod),
            retain=_build(retain, retain_mod),
            forget_weight=forget_weight,
            retain_weight=retain_weight,
            retain_aggregator=_build(retain_aggregator, aggregators_mod),
        )
        if dro_scope == "global" and self.loss_fn.retain_aggregator is not None:
            raise ValueError("dro_scope='global' does not support retain_aggregator; use dro_scope='micro'")
        self.dro_scope = dro_scope
        self.reference_cache = reference_cache
        self.reference_model = reference_model
        self.chunk_tokens = chunk_tokens
        self._plans: dict[int, MicroPlan] = {}
        self._next_slot = 0
        if args is not None:
            args.remove_unused_columns = False
        if kwargs.get("train_dataset") is None and forget_dataset is not None:
            from baldro.data.collate import UnlearnDataset

            seed = getattr(args, "seed", 0)
            rank = getattr(args, "process_index", 0)
            kwargs["train_dataset"] = UnlearnDataset(forget_dataset, retain_dataset, idk_dataset, seed=seed, rank=rank)
        if kwargs.get("data_collator") is None:
            from baldro.data.collate import UnlearnCollator

            tokenizer = kwargs.get("processing_class") or kwargs.get("tokenizer")
            if tokenizer is None:
                raise ValueError("UnlearnTrainer needs processing_class=<tokenizer> or a data_collator")
            kwargs["data_collator"] = UnlearnCollator(tokenizer)
        super().__init__(model=model, args=args, **kwargs)
        self.model_accepts_loss_kwargs = False
        self.add_callback(_EpochCallback(self.train_dataset))
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

    def ensure_reference_cache(self) -> None:
        """Load or compute the reference cache (eval mode, no grad, the training collator) before any update."""
        if not self._needs_cache():
            return
        path = Path(self.args.output_dir) / REFERENCE_FILE
        self.accelerator.wait_for_everyone()  # every process decides before the main one writes the file
        if path.exists():
            self.reference_cache = ReferenceCache.load(path)
            return
        parts = ("forget", "idk") if self.objective.needs_idk else ("forget",)
        dataset = self.train_dataset
        items = (dataset[i] for i in range(len(dataset)))
        self.reference_cache = compute_reference_cache(
            self.model,
            items,
            self.data_collator,
            self.args.per_device_train_batch_size,
            self.args.device,
            parts,
            self.chunk_tokens,
        )
        if self.args.should_save:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".partial")
            self.reference_cache.save(partial)
            partial.replace(path)

    def train(self, resume_from_checkpoint: Any = None, *args: Any, **kwargs: Any) -> Any:
        self.ensure_reference_cache()
        if resume_from_checkpoint is True:
            resume_from_checkpoint = last_checkpoint(Path(self.args.output_dir))
            if resume_from_checkpoint is None:
                raise ValueError(f"resume_from_checkpoint=True but {self.args.output_dir} has no checkpoint-* folder")
        if self.per_sample_log is not None and resume_from_checkpoint and self.args.should_save:
            digits = Path(str(resume_from_checkpoint)).name.rsplit("-", 1)[-1]
            if digits.isdigit():
                self.per_sample_log.truncate_after(int(digits))
        return super().train(resume_from_checkpoint and str(resume_from_checkpoint), *args, **kwargs)

    # ----- per-sample pieces ----------------------------------------------------------------------------------
    def _reference_logp(self, part: dict[str, Tensor], which: str) -> Tensor:
        if self.reference_cache is not None:
            return self.reference_cache.lookup(part["index"], which)
        if self.reference_model is None:
            raise RuntimeError("no reference log-likelihoods: call ensure_reference_cache() or pass reference_model")
        with torch.no_grad():
            stats = model_sequence_stats(
                self.reference_model, part["input_ids"], part["labels"], part.get("attention_mask"), self.chunk_tokens
            )
        return stats.logp_sum

    def forget_inputs(self, model: nn.Module, inputs: dict[str, Any], rows: Tensor | None = None) -> ForgetInputs:
        """The objective's inputs on the forget batch (optionally only ``rows``), with autograd as the caller sets."""
        forget = inputs["forget"] if rows is None else _rows(inputs["forget"], rows)
        stats = model_sequence_stats(
            model, forget["input_ids"], forget["labels"], forget.get("attention_mask"), self.chunk_tokens
        )
        fi = ForgetInputs(stats=stats)
        if self.objective.needs_reference:
            fi.ref_logp = self._reference_logp(forget, "forget")
        if self.objective.needs_idk:
            if "idk" not in inputs:
                raise ValueError(f"objective {self.objective!r} needs refusal answers: pass idk_dataset")
            idk = inputs["idk"] if rows is None else _rows(inputs["idk"], rows)
            fi.idk_stats = model_sequence_stats(
                model, idk["input_ids"], idk["labels"], idk.get("attention_mask"), self.chunk_tokens
            )
            if self.objective.needs_reference:
                fi.ref_idk_logp = self._reference_logp(idk, "idk")
        return fi

    def retain_inputs(self, model: nn.Module, retain: dict[str, Tensor]) -> RetainInputs:
        term = self.loss_fn.retain
        if term is None or not term.needs_reference_logits:
            stats = model_sequence_stats(
                model, retain["input_ids"], retain["labels"], retain.get("attention_mask"), self.chunk_tokens
            )
            return RetainInputs(stats=stats)
        hidden = final_hidden_states(model, retain["input_ids"], retain.get("attention_mask"))
        with torch.no_grad():
            ref_hidden = final_hidden_states(self.reference_model, retain["input_ids"], retain.get("attention_mask"))
        head, labels = output_head(model), retain["labels"]
        token_kl = answer_token_kl(hidden, ref_hidden, labels, head, output_head(self.reference_model), self.chunk_tokens)
        return RetainInputs(stats=stats_from_hidden(hidden, labels, head, self.chunk_tokens), token_kl=token_kl)

    def _per_sample_losses(self, model: nn.Module, inputs: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """Detached (ℓ, NLL) of every forget row — the ranking / pre-pass (call under ``torch.no_grad``)."""
        fi = self.forget_inputs(model, inputs)
        return self.objective(fi).detach(), fi.stats.nll_mean.detach()

    def _weighted_forget(self, model: nn.Module, inputs: dict[str, Any], weights: Tensor) -> Tensor:
        """Σ_i w_i·ℓ_i with autograd, running the model only on rows with w_i > 0 (sparse aggregators only: finding
        the rows waits for the device)."""
        if not isinstance(self.loss_fn.aggregator, SPARSE_AGGREGATORS):
            ell = self.objective(self.forget_inputs(model, inputs))
            return (weights.to(ell.dtype) * ell).sum()
        rows = (weights > 0).nonzero().flatten()
        if rows.numel() == 0:
            rows = torch.zeros(1, dtype=torch.long, device=weights.device)
            fi = self.forget_inputs(model, inputs, rows)
            return 0.0 * self.objective(fi).sum()
        dense = rows.numel() == weights.numel()
        fi = self.forget_inputs(model, inputs, None if dense else rows)
        ell = self.objective(fi)
        return (weights[rows].to(ell.dtype) * ell).sum()

    # ----- the loss -------------------------------------------------------------------------------------------
    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        forget = inputs["forget"]
        slot = forget.pop(PLAN_KEY, None)
        plan = self._plans.pop(int(slot[0]), None) if slot is not None else None
        out = self._global_loss(model, inputs, plan) if plan is not None else self._micro_loss(model, inputs)
        if plan is None and model.training and self._ga_divisor() != self._window_size():
            out.total = out.total * (self._ga_divisor() / self._window_size())  # the mean over micro-batches
        if self.per_sample_log is not None and plan is None and model.training:
            step = self.state.global_step + 1
            if self.per_sample_log.due(step):
                nll = out.stats.pop("_nll")
                rows = [gather_cat(t.detach().float()) for t in (forget["index"], out.per_sample, out.weights, nll)]
                if self.args.should_save:
                    self.per_sample_log.write(step, rows[0].long(), *rows[1:], out.stats)
        return (out.total, {"loss": out.total}) if return_outputs else out.total

    def _micro_loss(self, model: nn.Module, inputs: dict[str, Any]) -> LossOutput:
        lf = self.loss_fn
        if isinstance(lf.aggregator, SPARSE_AGGREGATORS):
            with torch.no_grad():
                ell, nll = self._per_sample_losses(model, inputs)
            _, weights = lf.aggregator(ell, nll=nll)
            forget_value = self._weighted_forget(model, inputs, weights)
            per_sample = ell
        else:
            fi = self.forget_inputs(model, inputs)
            forget_value, per_sample, weights = lf.forget_part(fi)
            nll = fi.stats.nll_mean.detach()
        total = lf.forget_weight * forget_value
        retain_value = None
        if lf.retain is not None and lf.retain_weight != 0:
            retain_value = lf.retain_part(self.retain_inputs(model, inputs["retain"]))
            total = total + lf.retain_weight * retain_value
        stats = dict(lf.aggregator.last_stats)
        stats["_nll"] = nll
        return LossOutput(
            total=total,
            forget_loss=forget_value.detach(),
            retain_loss=None if retain_value is None else retain_value.detach(),
            per_sample=per_sample.detach(),
            weights=weights.detach(),
            stats=stats,
        )

    def _global_loss(self, model: nn.Module, inputs: dict[str, Any], plan: MicroPlan) -> LossOutput:
        lf = self.loss_fn
        forget_value = self._weighted_forget(model, inputs, plan.weights)
        total = lf.forget_weight * forget_value
        retain_value = None
        if lf.retain is not None and lf.retain_weight != 0:
            ri = self.retain_inputs(model, inputs["retain"])
            local_tokens = int(ri.stats.n_tokens.sum())
            share = local_tokens / max(plan.retain_tokens_total or 1, 1)
            retain_value = lf.retain.loss(ri) * share
            total = total + lf.retain_weight * retain_value
        return LossOutput(
            total=total * plan.scale * self._ga_divisor(),
            forget_loss=forget_value.detach(),
            retain_loss=None if retain_value is None else retain_value.detach(),
            per_sample=plan.weights.new_zeros(0),
            weights=plan.weights,
        )

    def _window_size(self) -> int:
        """Micro-batches in this optimizer step's accumulation window."""
        return int(getattr(self, "current_gradient_accumulation_steps", None) or self.args.gradient_accumulation_steps)

    def _ga_divisor(self) -> int:
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
        self._check_finite(loss, index)
        return loss

    def _check_finite(self, total: Tensor, index: Tensor) -> None:
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
        if self.dro_scope == "global" and batch_samples:
            self._plan_window(batch_samples)
        return batch_samples, num_items

    def _plan_window(self, batch_samples: list[dict[str, Any]]) -> None:
        """The no-grad pre-pass: weights of the aggregator on the whole effective batch (see ``dro_scope``)."""
        lf = self.loss_fn
        model = self.model_wrapped
        was_training = model.training
        model.train()
        losses, nlls, indices, sizes, retain_tokens = [], [], [], [], 0
        with torch.no_grad():
            for batch in batch_samples:
                prepared = self._prepare_inputs(batch)
                ell, nll = self._per_sample_losses(model, prepared)
                losses.append(ell.float())
                nlls.append(nll.float())
                indices.append(prepared["forget"]["index"])
                sizes.append(ell.numel())
                if "retain" in prepared:
                    retain_tokens += int((prepared["retain"]["labels"][:, 1:] != -100).sum())
        model.train(was_training)
        local = torch.cat(losses)
        all_losses, all_nll = gather_cat(local), gather_cat(torch.cat(nlls))
        all_index = gather_cat(torch.cat(indices))
        self._check_finite(all_losses.sum(), all_index[~torch.isfinite(all_losses)])
        _, weights = lf.aggregator(all_losses, nll=all_nll)
        retain_total = int(gather_cat(torch.tensor([retain_tokens], device=local.device)).sum())
        scale = float(self.accelerator.num_processes)
        offset = rank_offset(local.numel())
        for batch, w in zip(batch_samples, split_weights(weights.detach(), sizes, offset)):
            slot = self._next_slot
            self._next_slot += 1
            self._plans[slot] = MicroPlan(weights=w, scale=scale, retain_tokens_total=retain_total)
            batch["forget"][PLAN_KEY] = torch.tensor([slot])
        step = self.state.global_step + 1
        if self.per_sample_log is not None and self.args.should_save and self.per_sample_log.due(step):
            self.per_sample_log.write(step, all_index, all_losses, weights, all_nll, dict(lf.aggregator.last_stats))
