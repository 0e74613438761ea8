"""Run presets: the one source of every config in ``configs/`` and of what ``baldro demo`` runs.

These are the *recommended* family: the paper's definitions (``compat: paper``), one setting per method. The other
family, the released scripts' settings and grids (``compat: released``), is :mod:`baldro.experiments.paper_presets`
(``baldro paper``, docs/paper-presets.md).

Two sizes share one set of builders: :class:`DemoSettings` (the embedded benchmark on a tiny CPU model; the demo, the
``tiny_*.yaml`` presets and the study use it) and the paper-sized TOFU / MUSE settings below. The method sections
come from :mod:`baldro.experiments.methods`. ``configs/*.yaml`` are generated, never edited by hand:

    python -m baldro.experiments.presets --write configs     # regenerate
    python -m baldro.experiments.presets --check configs     # exit 1 when a file differs (a test runs this)

The demo's values are the truth for the tiny presets: no warm-up, ``max_length`` 512, 15 base epochs.
"""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from baldro.experiments.methods import BASES, VARIANTS, method_config


@dataclass
class DemoSettings:
    """Sizes and hyper-parameters of the tiny pipeline (``quick`` shrinks everything to a smoke run). ``seeds`` is
    the number of unlearning seeds per method (3; 1 with ``quick``); it does not change any cached stage."""

    authors: int = 40
    questions: int = 8
    percents: tuple[int, ...] = (1, 5, 10)  # forget splits written (the largest is the designed forget set)
    uniform: bool = False
    own_forget_values: bool = False  # forget / holdout authors' values unused by retain authors (study benchmark)
    close_paraphrase: bool = False  # paraphrased answers one phrasing step from the answer's (study benchmark)
    own_phrasings: bool = False  # forget / holdout authors' answer templates unused by retain authors (study benchmark)
    own_forget_fraction: float | None = None  # only this share of the forget authors own their values (mixed design)
    graded_copies: bool = False  # forget facts' extra copies graded 0 / 2-3 / 5-7 at the same row budget (study benchmark)
    retain_weight: float | None = None  # λ of every method's retain term (None: the method preset's, 1.0)
    layers: int = 2
    hidden: int = 128
    base_epochs: float = 15
    target_epochs: float = 30
    finetune_lr: float = 3e-3
    finetune_batch: int = 32
    unlearn_epochs: float = 5
    unlearn_lr: float = 5e-4
    unlearn_batch: int = 8
    eval_batch: int = 64
    max_new_tokens: int = 48
    max_length: int = 512
    curve_every: int = 4  # the demo's unlearning curves: TOFU evaluation every 4 of its 20 steps (and at 0 and the end)
    seeds: int = 3

    @classmethod
    def quick(cls) -> DemoSettings:
        return cls(authors=20, questions=4, hidden=64, base_epochs=3, target_epochs=4, unlearn_epochs=1,
                   max_new_tokens=8, seeds=1)

    def cache_key(self) -> dict[str, Any]:
        """The settings a cached stage depends on (all but ``seeds``), JSON-shaped (lists, not tuples);
        the generator options and ``retain_weight`` (:data:`OPTIONAL_SETTINGS`) only when set, so folders built before they existed stay valid."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()
                if k != "seeds" and not (k in OPTIONAL_SETTINGS and v in (None, False))}


# Generator options that are off by default and left out of :meth:`DemoSettings.cache_key` when off.
OPTIONAL_DESIGN = ("own_forget_values", "close_paraphrase", "own_phrasings", "own_forget_fraction",
                   "graded_copies")
# Settings left out of :meth:`DemoSettings.cache_key` when off / None (folders built before them stay valid).
OPTIONAL_SETTINGS = (*OPTIONAL_DESIGN, "retain_weight")


# What only the demo adds to a tiny preset: its stages log to a file, so no progress bars.
DEMO_ONLY_TRAINING = {"disable_tqdm": True}


def tiny_training(settings: DemoSettings, epochs: float, lr: float, batch: int, logging_steps: int,
                  seed: int = 0) -> dict[str, Any]:
    """``training`` section of a tiny run (CPU, no warm-up, linear decay, no checkpoints)."""
    return {
        "learning_rate": lr,
        "num_train_epochs": epochs,
        "per_device_train_batch_size": batch,
        "weight_decay": 0.0,
        "warmup_steps": 0,
        "lr_scheduler_type": "linear",
        "logging_steps": logging_steps,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "dataloader_num_workers": 0,
        "seed": seed,
    }


def method_sections(method: str) -> dict[str, Any]:
    """``objective`` / ``aggregator`` / ``retain`` / ``forget_weight`` / ``dro_scope`` / ``log_every`` of a method."""
    cfg = method_config(method)
    return {
        "objective": cfg["objective"],
        "aggregator": cfg["aggregator"],
        "retain": cfg["retain"],
        "forget_weight": cfg.get("forget_weight", 1.0),
        "dro_scope": "micro",
        "log_every": 1,
    }


def finetune_config(settings: DemoSettings, model: str | Path, data: str | Path, split: str | list[str],
                    epochs: float, output_dir: str | Path) -> dict[str, Any]:
    """A tiny fine-tune (base, target or retain model)."""
    return {
        "model": {"path": str(model), "dtype": "float32"},
        "data": {"source": str(data), "split": split, "kind": "qa", "max_length": settings.max_length},
        "training": tiny_training(settings, epochs, settings.finetune_lr, settings.finetune_batch, 20),
        "output_dir": str(output_dir),
    }


def _with_retain_weight(sections: dict[str, Any], weight: float | None) -> dict[str, Any]:
    """``sections`` with the retain term's weight λ set to ``weight`` (unchanged when None or without a retain term)."""
    if weight is not None and isinstance(sections.get("retain"), dict):
        sections = {**sections, "retain": {**sections["retain"], "weight": float(weight)}}
    return sections


def unlearn_config(settings: DemoSettings, method: str, model: str | Path, data: str | Path, forget_split: str,
                   retain_split: str, output_dir: str | Path, seed: int = 0) -> dict[str, Any]:
    """A tiny unlearning run of ``method`` (a ``<base>[+<variant>]`` preset name)."""
    return {
        "model": {"path": str(model), "dtype": "float32"},
        "data": {"source": str(data), "forget_split": forget_split, "retain_split": retain_split,
                 "max_length": settings.max_length},
        **_with_retain_weight(method_sections(method), settings.retain_weight),
        "training": tiny_training(settings, settings.unlearn_epochs, settings.unlearn_lr, settings.unlearn_batch, 5,
                                  seed),
        "output_dir": str(output_dir),
    }


# Paper-sized settings of the recommended family: lr 1e-5, 10 epochs, effective batch 32 as 4 × 8 (open-unlearning's
# MUSE default; its TOFU default is 8 × 4, the released BalDRO scripts use 8 × 2 / 8 × 4 on TOFU), weight decay 0.01.
# The released scripts' own settings are the other family: baldro.experiments.paper_presets (`baldro paper`).
PAPER_TRAINING: dict[str, Any] = {
    "learning_rate": 1e-5,
    "num_train_epochs": 10,
    "per_device_train_batch_size": 4,
    "gradient_accumulation_steps": 8,
    "weight_decay": 0.01,
    "warmup_ratio": 0.1,
    "lr_scheduler_type": "linear",
    "bf16": True,
    "logging_steps": 10,
    "save_strategy": "no",
    "report_to": "none",
}
TOFU_MODEL = "open-unlearning/tofu_Llama-3.2-1B-Instruct_full"
TOFU_BASE_MODEL = "meta-llama/Llama-3.2-1B-Instruct"
PAPER_GRID = (("ga", "graddiff", "npo", "simnpo", "satimp"), ("", "g", "dv"))
MUSE_GRID = (("news", "News"), ("books", "Books"))

_OBJECTIVE_NAMES = {"ga": "gradient ascent on the forget set", "graddiff": "GradDiff: gradient ascent",
                    "npo": "NPO", "simnpo": "SimNPO", "satimp": "SatImp", "wga": "WGA", "idk_dpo": "IdkDPO"}
_AGGREGATOR_NAMES = {"mean": "mean over the batch (the base method)",
                     "group": "BalDRO-G: mean over the hardest samples of each batch",
                     "dv": "BalDRO-DV: soft maximum", "kl_radius": "KL-ball DRO", "chi2": "chi-square DRO"}


def _params(section: dict[str, Any], extra: dict[str, Any] | None = None) -> str:
    items = {k: v for k, v in section.items() if k != "name"} | (extra or {})
    return f" ({', '.join(f'{k} {v:g}' if isinstance(v, float) else f'{k} {v}' for k, v in items.items())})" \
        if items else ""


def describe(method: str) -> str:
    """One line for a preset's header, built from its values, e.g. ``NPO (beta 0.1) + retain NLL; aggregator: ...``."""
    base = method.partition("+")[0]
    s = method_sections(method)
    gamma = {"gamma": s["forget_weight"]} if s["forget_weight"] != 1.0 else None
    text = _OBJECTIVE_NAMES[base] + _params(s["objective"], gamma)
    text += f" + retain NLL (lambda {s['retain']['weight']:g})" if s["retain"] else ", no retain term"
    return f"{text}; aggregator: {_AGGREGATOR_NAMES[s['aggregator']['name']]}{_params(s['aggregator'])}."


def _file_stem(prefix: str, method: str) -> str:
    base, _, variant = method.partition("+")
    return f"{prefix}_{base}" + (f"_{variant}" if variant else "")


def preset_files() -> dict[str, tuple[str, dict[str, Any]]]:
    """``{file name: (header comment, config)}`` of every file in ``configs/``."""
    files: dict[str, tuple[str, dict[str, Any]]] = {}
    tiny, demo = DemoSettings(), "demo_out"
    paths = "Paths follow `baldro demo --out demo_out`"
    for stem, model, split, epochs, what in (
        ("base", "tiny", "general", tiny.base_epochs, "the base model on the general-knowledge split"),
        ("target", "base/model", ["full", "general"], tiny.target_epochs,
         "the target model on full + general replay (replay keeps the base model's knowledge)"),
        ("retain", "base/model", ["retain90", "general"], tiny.target_epochs,
         "the retain model on retain90 + general replay"),
    ):
        files[f"tiny_finetune_{stem}.yaml"] = (
            f"Embedded benchmark: fine-tune {what} (tiny model, CPU, minutes), as `baldro demo` does.\n{paths}; "
            "change them with --set model.path=... data.source=... output_dir=...",
            finetune_config(tiny, f"{demo}/{model}", f"{demo}/data", split, epochs, f"{demo}/{stem}/model"))
    for split, name in (("full", "target_full"), ("retain90", "retain_retain90")):
        cfg = {"model": {"path": TOFU_BASE_MODEL, "dtype": "bfloat16"},
               "data": {"source": "locuslab/TOFU", "split": split, "kind": "qa", "max_length": 512},
               "training": {**PAPER_TRAINING, "num_train_epochs": 5, "warmup_ratio": 0.2},
               "output_dir": f"runs/tofu_{name}"}
        files[f"tofu_finetune_{split}.yaml"] = (
            f"TOFU: fine-tune the {name.split('_')[0]} model on the '{split}' split (lr 1e-5, 5 epochs, batch 32).", cfg)
    bases, variants = PAPER_GRID
    for method in (b + (f"+{v}" if v else "") for b in bases for v in variants):
        stem = _file_stem("tofu", method)
        cfg = {"model": {"path": TOFU_MODEL, "dtype": "bfloat16"},
               "data": {"source": "locuslab/TOFU", "forget_split": "forget10", "retain_split": "retain90",
                        "max_length": 512},
               **method_sections(method),
               "training": {**PAPER_TRAINING, "seed": 0},
               "output_dir": f"runs/{stem}_forget10"}
        files[f"{stem}.yaml"] = (
            f"TOFU unlearning, recommended preset (the paper's definitions, compat: paper): {describe(method)}\n"
            "lr 1e-5, 10 epochs, effective batch 32 as 4 x 8 accumulation on one device (divide\n"
            "gradient_accumulation_steps by the process count on more; with dro_scope micro the DRO weighs each\n"
            "4-row micro-batch), weight decay 0.01, warm-up 1 epoch. Not the released scripts' settings (8 x 2 /\n"
            "8 x 4, Llama-2-7b-chat, their grids): those are `baldro paper` (docs/paper-presets.md).\n"
            f"Usage: baldro unlearn --config configs/{stem}.yaml --set model.path=... "
            "--set data.forget_split=forget05 ...", cfg)
        tiny_stem = _file_stem("tiny", method)
        files[f"{tiny_stem}.yaml"] = (
            f"Embedded benchmark, tiny model: {describe(method)}\n{paths} (what the demo runs, seed aside).",
            unlearn_config(tiny, method, f"{demo}/target/model", f"{demo}/data", "forget10", "retain90",
                           f"{demo}/presets/{tiny_stem.removeprefix('tiny_')}"))
    for short, long in MUSE_GRID:
        for variant in variants:
            method = "npo" + (f"+{variant}" if variant else "")
            stem = _file_stem(f"muse_{short}", method)
            training = {**PAPER_TRAINING, "lr_scheduler_type": "constant_with_warmup", "gradient_checkpointing": True}
            cfg = {"model": {"path": f"muse-bench/MUSE-{long}_target", "dtype": "bfloat16"},
                   "data": {"source": f"muse-bench/MUSE-{long}", "kind": "text", "forget_split": "forget",
                            "retain_split": "retain1", "max_length": 2048},
                   **method_sections(method), "training": training, "output_dir": f"runs/{stem}"}
            files[f"{stem}.yaml"] = (
                f"MUSE-{long} unlearning on raw text (2048-token chunks), retain split retain1, recommended preset\n"
                f"(the paper's definitions, compat: paper): {describe(method)}\n"
                "Point data.source at a local MUSE folder or the hub id. The released scripts' settings (weight decay 0,\n"
                f"constant schedule without warm-up, seed 0, their grids) are `baldro paper --show muse_{short}_npo`.",
                cfg)
    return dict(sorted(files.items()))


SCHEMA_LINE = "# yaml-language-server: $schema=../docs/baldro.schema.json\n"  # an editor checks the file (make docs)
GENERATED = "Generated by `python -m baldro.experiments.presets --write configs`: edit the presets, not this file."


def render(header: str, config: dict[str, Any]) -> str:
    """The YAML text of one preset file: the schema line, ``# `` comment lines, then the config in its key order."""
    import yaml

    comment = "".join(f"# {line}\n" for line in [*header.splitlines(), GENERATED])
    return SCHEMA_LINE + comment + yaml.safe_dump(copy.deepcopy(config), sort_keys=False, default_flow_style=False, width=120)


def stale_files(folder: str | Path) -> list[str]:
    """Names of preset files in ``folder`` that are missing, differ from the presets, or are not presets at all."""
    folder = Path(folder)
    files = preset_files()
    stale = [n for n, (h, c) in files.items() if not (folder / n).is_file() or (folder / n).read_text() != render(h, c)]
    return stale + sorted(p.name for p in folder.glob("*.yaml") if p.name not in files)


def write_presets(folder: str | Path) -> list[Path]:
    """(Re)write every preset file into ``folder``; remove ``*.yaml`` files that are no preset."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = preset_files()
    for path in folder.glob("*.yaml"):
        if path.name not in files:
            path.unlink()
    written = []
    for name, (header, config) in files.items():
        (folder / name).write_text(render(header, config))
        written.append(folder / name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m baldro.experiments.presets", description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", metavar="DIR", help="write every preset YAML file into DIR")
    group.add_argument("--check", metavar="DIR", help="exit 1 when DIR's YAML files differ from the presets")
    args = parser.parse_args(argv)
    if args.write:
        print(f"wrote {len(write_presets(args.write))} files into {args.write}")
        return 0
    stale = stale_files(args.check)
    if stale:
        print(f"{args.check}: out of date: {', '.join(stale)}; run python -m baldro.experiments.presets --write "
              f"{args.check}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["BASES", "VARIANTS", "DemoSettings", "finetune_config", "method_sections", "preset_files", "render",
           "unlearn_config", "write_presets"]
