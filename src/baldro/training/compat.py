"""``compat``: one run-config switch between the paper's definitions (``paper``, default) and what the released
BalDRO code (github nxZhai/BalDRO, ``src/trainer/unlearn/{npo,satimp,simnpo}.py``, ``src/trainer/utils.py``) computes
(``released``). Every difference is selected here, as component parameters and :class:`~baldro.composition.UnlearnLoss`
options, and nowhere else; docs/compat.md has the table.

``released`` changes (each only where the released code has the trainer in question):

* ``dv`` (DrNPO / DrSatImp / DrSimNPO): the soft-min sign (``sign: official``), also on a ``dv`` retain aggregator
  (their ``retain_dro``); with ``satimp`` the DV runs over the batch's answer tokens, not samples
  (``forget_unit: token``); with ``npo`` and ``satimp`` the retain term is the mean over sequences of the summed NLL
  (``reduction: sequence_sum``; DrSimNPO keeps the token mean).
* ``group`` (GroupNPO / GroupSatImp / GroupSimNPO): k = max(1, ⌊ratio·B⌋) (``rounding: floor``), ranking by
  likelihood for every objective (``rank_by: likelihood``), the retain term on a random subset of k retain rows
  (``retain_rows: kept``).
* ``satimp`` under ``mean`` or ``group``: the token mean over the (kept) batch (``granularity: token``).
* the batches: ``data.pad_masking: token`` unless the config sets it — the released code trains with
  open-unlearning's collator (``attention_mask = input_ids != pad``; :mod:`baldro.core.padmask`), so with a tokenizer
  whose pad token occurs in the text (pad = EOS) the EOS tokens inside prompts are masked as there
  (:func:`data_defaults`).

The parameters named above are overwritten (the switch wins over the sections). ``released`` needs
``dro_scope: micro`` and the ``nll`` retain term (the released DRO trainers accept no other).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from baldro.errors import ConfigError

COMPAT_MODES = ("paper", "released")
SEQUENCE_SUM_RETAIN = ("npo", "satimp")  # DrNPO, DrSatImp: compute_batch_nll(model, retain).mean()
TOKEN_DV = ("satimp",)  # DrSatImp: DV over the flat vector of answer-token losses


@dataclass
class LossSpec:
    """The component specs (``{name, ...params}`` or None) and ``UnlearnLoss`` options of a run."""

    objective: dict[str, Any]
    aggregator: dict[str, Any]
    retain: dict[str, Any] | None
    retain_aggregator: dict[str, Any] | None
    options: dict[str, str] = field(default_factory=dict)


def _spec(value: Any) -> Any:
    if value is None:
        return None
    return {"name": value} if isinstance(value, str) else copy.deepcopy(value)


def loss_spec(cfg: dict[str, Any]) -> LossSpec:
    """The loss of a resolved unlearn config under its ``compat`` mode, one of :data:`COMPAT_MODES` (checked by the
    schema; ConfigError for a combination the released code does not have)."""
    spec = LossSpec(
        objective=_spec(cfg.get("objective")),
        aggregator=_spec(cfg.get("aggregator")) or {"name": "mean"},
        retain=_spec(cfg.get("retain")),
        retain_aggregator=_spec(cfg.get("retain_aggregator")),
    )
    if cfg.get("compat") == "released":
        _released(spec, cfg)
    return spec


def data_defaults(cfg: dict[str, Any]) -> None:
    """Fill in what ``compat`` implies for the ``data`` section of a resolved unlearn config (in place): under
    ``released`` the batches' ``pad_masking`` is ``token`` unless set. Runs before the config is saved, so the run
    folder's ``config.yaml`` states the mask it was trained with."""
    if cfg.get("compat", "paper") == "released":
        data = cfg.setdefault("data", {})
        if isinstance(data, dict):
            data.setdefault("pad_masking", "token")


def _released(spec: LossSpec, cfg: dict[str, Any]) -> None:
    if cfg.get("dro_scope", "micro") != "micro":
        raise ConfigError("compat: released needs dro_scope: micro (the released trainers aggregate per micro-batch)")
    if spec.retain is not None and spec.retain.get("name") != "nll":
        raise ConfigError(
            f"compat: released supports only the nll retain term (got {spec.retain.get('name')!r}); "
            "use retain: {name: nll} or compat: paper"
        )
    objective = spec.objective.get("name") if isinstance(spec.objective, dict) else None
    aggregator = spec.aggregator.get("name")
    if aggregator == "dv":
        spec.aggregator["sign"] = "official"
        if objective in TOKEN_DV:
            spec.options["forget_unit"] = "token"
        if objective in SEQUENCE_SUM_RETAIN and spec.retain is not None:
            spec.retain["reduction"] = "sequence_sum"
    if aggregator == "group":
        spec.aggregator.update(rank_by="likelihood", rounding="floor")
        spec.options["retain_rows"] = "kept"
    if objective == "satimp" and aggregator in ("mean", "group"):
        spec.objective["granularity"] = "token"
    if spec.retain_aggregator is not None and spec.retain_aggregator.get("name") == "dv":
        spec.retain_aggregator["sign"] = "official"


def build_loss(raw: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    """(``UnlearnLoss``, its options) of a validated unlearn mapping under its ``compat`` mode, after
    :func:`data_defaults` (in place: the run folder's config.yaml records the mask); ConfigError for a bad pairing
    (e.g. ``rank_by: loss`` with satimp)."""
    from baldro import aggregators, objectives, retain
    from baldro.composition import UnlearnLoss

    data_defaults(raw)
    spec = loss_spec(raw)
    parts = {
        "objective": objectives.build(**spec.objective),
        "aggregator": aggregators.build(**spec.aggregator),
        "retain": retain.build(**{k: v for k, v in spec.retain.items() if k != "weight"}) if spec.retain else None,
        "retain_aggregator": aggregators.build(**spec.retain_aggregator) if spec.retain_aggregator else None,
    }
    try:
        return UnlearnLoss(**parts, **spec.options), spec.options  # type: ignore[arg-type]
    except ValueError as err:
        raise ConfigError(f"config keys objective/aggregator: {err}") from err
