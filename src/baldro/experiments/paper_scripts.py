"""What the released BalDRO scripts run, setting by setting, with the file each value comes from.

Read from github nxZhai/BalDRO at commit 12a0b0c (``scripts/unlearn/{tofu,muse}/*.sh``, ``configs/trainer/*.yaml``,
``configs/experiment/unlearn/{tofu,muse}/default.yaml``, ``configs/model/*.yaml``, ``configs/data/datasets/*.yaml``)
and the open-unlearning code those configs run (``src/trainer/__init__.py``: ``warmup_epochs``; transformers'
``TrainingArguments`` defaults for what no file sets). A tuple value is a grid the script loops over. These values
are typed by hand; :mod:`baldro.experiments.paper_presets` builds the paper presets from them and
``docs/paper-presets.md`` sets them side by side with ours.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

RELEASED = "nxZhai/BalDRO@12a0b0c"
SAME: Any = object()  # Value.ours default: our config holds the released value as it is


@dataclass(frozen=True)
class Value:
    """One released setting: its ``value`` (a tuple: a grid), the ``file`` that sets it, the value it has in our
    config when the representation differs (``ours``), and a ``note`` on how it was read."""

    value: Any
    file: str
    ours: Any = SAME
    note: str = ""

    @property
    def expected(self) -> Any:
        """The value our config must hold for this setting."""
        return self.value if self.ours is SAME else self.ours


@dataclass(frozen=True)
class Script:
    """One released method family: ``base`` (npo | simnpo | satimp) × ``variant`` ("" | g | dv) on ``benchmark``
    (tofu | muse), the splits its script runs, and its settings beyond the benchmark's common ones."""

    benchmark: str
    base: str
    variant: str
    file: str
    trainer: str
    splits: tuple[str, ...]
    settings: dict[str, Value] = field(default_factory=dict)
    note: str = ""


TOFU_MODEL = "open-unlearning/tofu_Llama-2-7b-chat-hf_full"
MUSE_TOKENIZER = "meta-llama/Llama-2-7b-chat-hf"
LR5 = (1e-5, 2e-5, 3e-5, 4e-5, 5e-5)
LR3 = (1e-5, 2e-5, 5e-5)
DV_BETAS = (0.5, 1.0, 2.0, 5.0, 10.0)
TOFU_SPLITS = ("forget01", "forget05", "forget10")
MUSE_CORPORA = ("News", "Books")

_FINETUNE = "configs/trainer/finetune.yaml"
_TOFU_DEFAULT = "configs/experiment/unlearn/tofu/default.yaml"
_MUSE_DEFAULT = "configs/experiment/unlearn/muse/default.yaml"
_HF_DEFAULT = "transformers TrainingArguments default (no config sets it)"


def _tofu(name: str) -> str:
    return f"scripts/unlearn/tofu/{name}"


def _muse(name: str) -> str:
    return f"scripts/unlearn/muse/{name}"


def _trainer(name: str) -> str:
    return f"configs/trainer/{name}.yaml"


# Settings every script of a benchmark shares (the script in the file names is the NPO one; each family's own
# script passes the same values, except where its Script.settings say otherwise).
TOFU_COMMON: dict[str, Value] = {
    "model": Value(TOFU_MODEL, _tofu("train_tofu_npo.sh") + " (PRETRAINED_PATH)"),
    "tokenizer": Value("the model's (tokenizer_args = PRETRAINED_PATH)", _tofu("train_tofu_npo.sh"), ours=None),
    "data": Value("locuslab/TOFU", "configs/data/datasets/TOFU_QA_forget.yaml"),
    "prompt format": Value("[INST] {q} [/INST]{a}, apply_chat_template: False", "configs/model/Llama-2-7b-chat-hf.yaml",
                           ours="llama-2-7b-chat"),
    "max length": Value(512, "configs/data/datasets/TOFU_QA_forget.yaml"),
    "weights dtype": Value("bfloat16", "configs/model/Llama-2-7b-chat-hf.yaml (torch_dtype)"),
    "attention": Value("flash_attention_2", "configs/model/Llama-2-7b-chat-hf.yaml"),
    "mixed precision": Value(True, _FINETUNE + " (bf16)"),
    "optimizer": Value("paged_adamw_32bit", _FINETUNE),
    "weight decay": Value(0.01, _TOFU_DEFAULT),
    "warm-up (epochs)": Value(1.0, _TOFU_DEFAULT + " (warmup_epochs; steps: src/trainer/__init__.py)"),
    "schedule": Value("linear", _HF_DEFAULT),
    "seed": Value(0, _FINETUNE),
    "gradient checkpointing": Value(True, _tofu("train_tofu_npo.sh")),
    "evaluation": Value("every epoch (eval_strategy=epoch)", _tofu("train_tofu_npo.sh"), ours="epoch"),
    "unlearning code": Value("the released trainers", "src/trainer/unlearn/{npo,simnpo,satimp}.py", ours="released"),
    "DRO batch": Value("each device's micro-batch (inside compute_loss)", "src/trainer/unlearn/npo.py", ours="micro"),
}
MUSE_COMMON: dict[str, Value] = {
    "model": Value("muse-bench/muse_{News,Books}_target", _muse("train_muse_npo.sh") + " (PRETRAINED_PATH)",
                   ours="muse-bench/MUSE-{corpus}_target",
                   note="the script's name is no hub id; the README downloads muse-bench/MUSE-{news,books}_target"),
    "tokenizer": Value(MUSE_TOKENIZER, _muse("train_muse_npo.sh") + " (TOKENIZER_PRETRAINED)"),
    "data": Value("muse-bench/MUSE-{News,Books}, raw", "configs/data/datasets/MUSE_forget.yaml",
                  ours="muse-bench/MUSE-{corpus}"),
    "prompt format": Value("raw text, no template (PretrainingDataset)", "configs/data/datasets/MUSE_forget.yaml",
                           ours="text"),
    "forget / retain split": Value("forget / retain1", _MUSE_DEFAULT, ours=("forget", "retain1")),
    "max length": Value(2048, "configs/data/datasets/MUSE_forget.yaml"),
    "weights dtype": Value("bfloat16", "configs/model/Llama-2-7b-hf.yaml (torch_dtype)"),
    "attention": Value("flash_attention_2", "configs/model/Llama-2-7b-hf.yaml"),
    "mixed precision": Value(True, _FINETUNE + " (bf16)"),
    "optimizer": Value("paged_adamw_32bit", _FINETUNE),
    "weight decay": Value(0.0, _FINETUNE + " (the MUSE experiment sets none)"),
    "warm-up (epochs)": Value(None, _MUSE_DEFAULT + " (no warmup_epochs)"),
    "schedule": Value("constant", _MUSE_DEFAULT),
    "seed": Value(0, _FINETUNE),
    "gradient checkpointing": Value(True, _muse("train_muse_npo.sh")),
    "evaluation": Value("every epoch (eval_strategy=epoch)", _muse("train_muse_npo.sh"), ours="epoch"),
    "unlearning code": TOFU_COMMON["unlearning code"],
    "DRO batch": TOFU_COMMON["DRO batch"],
}
COMMON = {"tofu": TOFU_COMMON, "muse": MUSE_COMMON}


def _npo() -> dict[str, Value]:
    return {"NPO β": Value(0.1, _trainer("NPO")), "forget weight γ": Value(1.0, _trainer("NPO")),
            "retain weight α": Value(1.0, _trainer("NPO")), "retain loss": _nll(_trainer("NPO"))}


def _nll(file: str) -> Value:
    return Value("NLL", file + " (retain_loss_type)", ours="nll")


def _simnpo(file: str, beta: Any = (3.5, 4.5), delta: Any = (0.0, 1.0), gamma: Any = (0.125, 0.25)) -> dict[str, Value]:
    return {"SimNPO β": Value(beta, file), "SimNPO δ": Value(delta, file), "forget weight γ": Value(gamma, file),
            "retain weight α": Value(1.0, file), "retain loss": _nll(file)}


def _group(trainer: str) -> dict[str, Value]:
    return {"BalDRO-G ratio": Value(0.5, _trainer(trainer) + " (sampling_ratio)")}


def _training(file: str, lr: tuple[float, ...], batch: tuple[tuple[int, int], ...],
              epochs: tuple[int, ...]) -> dict[str, Value]:
    return {"learning rate": Value(lr, file), "batch × accumulation": Value(batch, file),
            "epochs": Value(epochs, file)}


_B8 = ((8, 2), (8, 4))
_MUSE_NPO_ALPHA = (1.0, 2.0, 5.0, 10.0)


def _tofu_scripts() -> list[Script]:
    npo, gnpo, drnpo = _tofu("train_tofu_npo.sh"), _tofu("train_tofu_groupnpo.sh"), _tofu("train_tofu_drnpo.sh")
    sim, gsim, drsim = (_tofu("train_tofu_simnpo.sh"), _tofu("train_tofu_groupsimnpo.sh"),
                        _tofu("train_tofu_drsimnpo.sh"))
    gsat, drsat = _tofu("train_tofu_groupsatimp.sh"), _tofu("train_tofu_drsatimp.sh")
    satimp = {"SatImp β1": Value((5.0, 6.0), gsat), "SatImp β2": Value(1.0, gsat),
              "forget weight γ": Value(0.1, gsat), "retain weight α": Value((1.0, 0.1, 0.01), gsat),
              "retain loss": _nll(gsat)}
    sat_training = _training(gsat, LR3, ((4, 8),), (10,))
    dr_sigma = "sigma_forget (DrSimNPO / DrSatImp's DV temperature)"
    return [
        Script("tofu", "npo", "", npo, "NPO", ("forget05", "forget01", "forget10"),
               {**_training(npo, LR5, _B8, (5, 10)), **_npo()}),
        Script("tofu", "npo", "g", gnpo, "GroupNPO", ("forget01",),
               {**_training(gnpo, LR5, _B8, (5, 10)), **_npo(), **_group("GroupNPO")},
               note="the script runs forget01 only; forget05 / forget10 use its grid"),
        Script("tofu", "npo", "dv", drnpo, "DrNPO", ("forget01",),
               {**_training(drnpo, LR5, _B8, (5, 10)), **_npo(),
                "DV temperature": Value(DV_BETAS, drnpo + " (beta_dv_forget)")},
               note="the script runs forget01 only; forget05 / forget10 use its grid. It also passes log_ori_loss, "
                    "which DrNPO's config and constructor do not have (a logging switch, no loss setting)"),
        Script("tofu", "simnpo", "", sim, "SimNPO", ("forget05", "forget01", "forget10"),
               {**_training(sim, LR3, _B8, (10,)), **_simnpo(sim)},
               note="this script takes the model from its arguments (../hf-hub/TOFU_new_models/tofu_${MODEL}_full); "
                    "the paper's is Llama-2-7b-chat, the other TOFU scripts' open-unlearning model"),
        Script("tofu", "simnpo", "g", gsim, "GroupSimNPO", ("forget05", "forget01", "forget10"),
               {**_training(gsim, LR3, _B8, (10,)), **_simnpo(gsim), **_group("GroupSimNPO")}),
        Script("tofu", "simnpo", "dv", drsim, "DrSimNPO", ("forget05", "forget01", "forget10"),
               {**_training(drsim, LR3, _B8, (10,)), **_simnpo(drsim),
                "DV temperature": Value(1.0, drsim + f" ({dr_sigma})")}),
        Script("tofu", "satimp", "", gsat, "SatImp", ("forget05", "forget01", "forget10"),
               {**sat_training, **satimp},
               note="no train_tofu_satimp.sh is released (the README names it): the grid of "
                    "train_tofu_groupsatimp.sh with the SatImp trainer"),
        Script("tofu", "satimp", "g", gsat, "GroupSatImp", ("forget05", "forget01", "forget10"),
               {**sat_training, **satimp, **_group("GroupSatImp")}),
        Script("tofu", "satimp", "dv", drsat, "DrSatImp", ("forget05", "forget01", "forget10"),
               {**_training(drsat, LR3, ((4, 8),), (10,)),
                **{k: replace(v, file=v.file.replace(gsat, drsat)) for k, v in satimp.items()},
                "DV temperature": Value(1.0, drsat + f" ({dr_sigma})")}),
    ]


def _muse_scripts() -> list[Script]:
    npo, gnpo, drnpo = _muse("train_muse_npo.sh"), _muse("train_muse_npo_group.sh"), _muse("train_muse_drnpo.sh")
    sim, gsim, drsim = (_muse("train_muse_simnpo.sh"), _muse("train_muse_simnpo_group.sh"),
                        _muse("train_muse_drsimnpo.sh"))
    sat, gsat, drsat = (_muse("train_muse_satimp.sh"), _muse("train_muse_satimp_group.sh"),
                        _muse("train_muse_drsatimp.sh"))

    def npo_args(file: str, alpha: Any) -> dict[str, Value]:
        return {"NPO β": Value(0.1, _trainer("NPO")), "forget weight γ": Value(1.0, file),
                "retain weight α": Value(alpha, file), "retain loss": _nll(file)}

    def satimp_args(file: str) -> dict[str, Value]:
        return {"SatImp β1": Value(5.0, file), "SatImp β2": Value(1.0, file), "forget weight γ": Value(1.0, file),
                "retain weight α": Value(1.0, file), "retain loss": _nll(file)}

    unread = ("which {trainer} does not take (its config has no such key, and Hydra refuses to override a missing "
              "key): read as the DV temperature grid the script means")
    dv_grid = "DV temperature"
    return [
        Script("muse", "npo", "", npo, "NPO", MUSE_CORPORA,
               {**_training(npo, LR5, ((4, 8),), (10,)), **npo_args(npo, _MUSE_NPO_ALPHA)}),
        Script("muse", "npo", "g", gnpo, "GroupNPO", ("Books", "News"),
               {**_training(gnpo, LR5, ((4, 8),), (10,)), **npo_args(gnpo, _MUSE_NPO_ALPHA), **_group("GroupNPO")}),
        Script("muse", "npo", "dv", drnpo, "DrNPO", MUSE_CORPORA,
               {**_training(drnpo, LR5, ((4, 4), (4, 8)), (10,)), **npo_args(drnpo, 1.0),
                dv_grid: Value(DV_BETAS, drnpo + " (beta_dv_forget)")},
               note="the script also passes sigma=1.0, which DrNPO does not take (no loss setting of DrNPO)"),
        Script("muse", "simnpo", "", sim, "SimNPO", MUSE_CORPORA,
               {**_training(sim, LR3, ((4, 8),), (10,)), **_simnpo(sim)}),
        Script("muse", "simnpo", "g", gsim, "GroupSimNPO", ("Books", "News"),
               {**_training(gsim, LR5, ((4, 8),), (10,)), **_simnpo(gsim, 4.5, 0.0, 0.125), **_group("GroupSimNPO")}),
        Script("muse", "simnpo", "dv", drsim, "DrSimNPO", MUSE_CORPORA,
               {**_training(drsim, LR3, ((4, 8),), (10,)), **_simnpo(drsim),
                dv_grid: Value(DV_BETAS, drsim + " (beta_dv_forget)",
                               note="the script passes beta_dv_forget, " + unread.format(trainer="DrSimNPO"))}),
        Script("muse", "satimp", "", sat, "SatImp", MUSE_CORPORA,
               {**_training(sat, LR3, ((4, 8),), (10,)), **satimp_args(sat)}),
        Script("muse", "satimp", "g", gsat, "GroupSatImp", ("Books", "News"),
               {**_training(gsat, LR3, ((4, 8),), (10,)), **satimp_args(gsat), **_group("GroupSatImp")}),
        Script("muse", "satimp", "dv", drsat, "DrSatImp", MUSE_CORPORA,
               {**_training(drsat, LR5, ((4, 4), (4, 8)), (10,)),
                **{**satimp_args(drsat), "SatImp β1": Value(5.0, _trainer("SatImp")),
                   "SatImp β2": Value(1.0, _trainer("SatImp"))},
                dv_grid: Value(DV_BETAS, drsat + " (beta_dv_forget)",
                               note="the script passes beta_dv_forget (and beta=0.1, sigma=1.0), "
                                    + unread.format(trainer="DrSatImp"))}),
    ]


SCRIPTS: tuple[Script, ...] = (*_tofu_scripts(), *_muse_scripts())


def script_for(benchmark: str, base: str, variant: str) -> Script:
    """The released family of ``benchmark`` / ``base`` / ``variant`` (KeyError when there is none)."""
    for script in SCRIPTS:
        if (script.benchmark, script.base, script.variant) == (benchmark, base, variant):
            return script
    raise KeyError((benchmark, base, variant))


def settings_of(script: Script) -> dict[str, Value]:
    """Every setting of a family: the benchmark's common ones, then its own."""
    return {**COMMON[script.benchmark], **script.settings}


__all__ = ["COMMON", "DV_BETAS", "MUSE_CORPORA", "RELEASED", "SAME", "SCRIPTS", "TOFU_SPLITS", "Script", "Value",
           "script_for", "settings_of"]
