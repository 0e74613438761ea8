"""The paper's experiments as presets that are the released scripts (``baldro paper``), and their docs table.

One experiment per table row the paper reports — TOFU forget01 / forget05 / forget10 and MUSE News / Books, each
base loss NPO / SimNPO / SatImp, each without DRO, with BalDRO-G and with BalDRO-DV — plus the β grid of Fig. 4.
Each is a run config (``compat: released``: the released trainers' definitions, docs/compat.md) and the grid its
script loops over; every value is read from :mod:`baldro.experiments.paper_scripts` (what the released script
passes, with its file), translated into our keys (:data:`SETTING_KEYS`). ``docs/paper-presets.md`` is generated
from these presets and checked by a test:

    python -m baldro.experiments.paper_presets --write-docs docs/paper-presets.md
    python -m baldro.experiments.paper_presets --check-docs docs/paper-presets.md

These are the *released* family. The recommended presets in ``configs/`` (:mod:`baldro.experiments.presets`:
the paper's DV sign, ``compat: paper``, one setting per method) are the other family.
"""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baldro.errors import ConfigError
from baldro.experiments.paper_scripts import (
    COMMON,
    MUSE_CORPORA,
    RELEASED,
    SCRIPTS,
    TOFU_SPLITS,
    Script,
    Value,
    settings_of,
)

# Our config key(s) of every released setting (two keys: a pair the script varies together).
SETTING_KEYS: dict[str, tuple[str, ...]] = {
    "model": ("model.path",),
    "tokenizer": ("model.tokenizer",),
    "data": ("data.source",),
    "prompt format": ("data.format",),  # MUSE: data.kind (PROMPT_KEY)
    "forget / retain split": ("data.forget_split", "data.retain_split"),
    "max length": ("data.max_length",),
    "weights dtype": ("model.dtype",),
    "attention": ("model.attn_implementation",),
    "mixed precision": ("training.bf16",),
    "optimizer": ("training.optim",),
    "weight decay": ("training.weight_decay",),
    "warm-up (epochs)": ("training.warmup_epochs",),
    "schedule": ("training.lr_scheduler_type",),
    "seed": ("training.seed",),
    "gradient checkpointing": ("training.gradient_checkpointing",),
    "evaluation": ("eval_every",),
    "unlearning code": ("compat",),
    "DRO batch": ("dro_scope",),
    "learning rate": ("training.learning_rate",),
    "batch × accumulation": ("training.per_device_train_batch_size", "training.gradient_accumulation_steps"),
    "epochs": ("training.num_train_epochs",),
    "NPO β": ("objective.beta",),
    "SimNPO β": ("objective.beta",),
    "SimNPO δ": ("objective.delta",),
    "SatImp β1": ("objective.beta1",),
    "SatImp β2": ("objective.beta2",),
    "forget weight γ": ("forget_weight",),
    "retain weight α": ("retain.weight",),
    "retain loss": ("retain.name",),
    "BalDRO-G ratio": ("aggregator.ratio",),
    "DV temperature": ("aggregator.beta",),
}
PROMPT_KEY = {"tofu": ("data.format",), "muse": ("data.kind",)}

# Settings where our preset holds another value than the released one, on purpose: (benchmark, setting) → why.
DIFFERENCES: dict[tuple[str, str], str] = {
    ("muse", "evaluation"): "MUSE runs are evaluated once, after training (baldro's unlearning curves evaluate "
                            "TOFU-style splits only); the released code evaluates every epoch",
}

# Short names of grid keys in run-folder names (as the released scripts' SUFFIX: lr…_b…_ga…_e…).
POINT_ALIASES = {
    "training.learning_rate": "lr", "training.per_device_train_batch_size": "b",
    "training.gradient_accumulation_steps": "ga", "training.num_train_epochs": "e", "objective.beta": "beta",
    "objective.delta": "d", "objective.beta1": "b1", "forget_weight": "g", "retain.weight": "a",
    "aggregator.beta": "dv",
}
OBJECTIVES = {"npo": "NPO", "simnpo": "SimNPO", "satimp": "SatImp"}
VARIANT_ROWS = {"": "", "g": "+BalDRO-G", "dv": "+BalDRO-DV"}
AGGREGATORS = {"": "mean", "g": "group", "dv": "dv"}
COMPONENTS = ("objective", "aggregator", "retain")
EVAL_DEFAULTS = {"batch_size": 32, "max_new_tokens": 200, "max_length": 512}  # open-unlearning: generation 200 tokens
RETAIN_MODEL = {"tofu": "open-unlearning/tofu_Llama-2-7b-chat-hf_{retain_split}", "muse": "muse-bench/MUSE-{corpus}_retrain"}
Axis = tuple[tuple[str, ...], tuple[Any, ...]]  # (keys, values): one value per point; a tuple per point for 2 keys


@dataclass(frozen=True)
class Experiment:
    """One paper experiment: the run config of its first grid point, the grid its script loops over, where the paper
    reports it (``paper``, ``row``), the folder id of its runs (``runs``: the Fig. 4 grid shares the DV runs) and,
    for the β figure, the key its rows are (``rows_by``)."""

    name: str
    script: Script
    split: str  # forget01 | forget05 | forget10 | News | Books
    config: dict[str, Any]
    axes: tuple[Axis, ...]
    paper: str
    row: str
    runs: str
    rows_by: str | None = None

    @property
    def benchmark(self) -> str:
        return self.script.benchmark

    @property
    def size(self) -> int:
        n = 1
        for _, values in self.axes:
            n *= len(values)
        return n

    def placeholders(self) -> dict[str, str]:
        """What ``{…}`` in a model / data / retain path is replaced by for this experiment."""
        return placeholders(self.benchmark, self.split)

    @property
    def retain_model(self) -> str:
        return RETAIN_MODEL[self.benchmark].format(**self.placeholders())


def placeholders(benchmark: str, split: str) -> dict[str, str]:
    """The ``{…}`` fields of a path on ``split``: ``forget_split``, ``retain_split``, ``holdout_split`` (TOFU's
    partner splits, e.g. forget01 → retain99, holdout01; MUSE: forget, retain1, holdout), ``corpus`` (MUSE: News or
    Books), ``split`` and ``benchmark``."""
    if benchmark == "tofu":
        pct = split[-2:]
        return {"benchmark": "tofu", "forget_split": split, "retain_split": f"retain{100 - int(pct)}",
                "holdout_split": f"holdout{pct}", "corpus": "", "split": split}
    return {"benchmark": "muse", "forget_split": "forget", "retain_split": "retain1", "holdout_split": "holdout",
            "corpus": split, "split": split}


def setting_keys(benchmark: str, setting: str) -> tuple[str, ...]:
    return PROMPT_KEY[benchmark] if setting == "prompt format" else SETTING_KEYS[setting]


def get_key(config: dict[str, Any], key: str) -> Any:
    """``config["a"]["b"]`` for ``"a.b"`` (None when absent)."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def set_key(config: dict[str, Any], key: str, value: Any) -> None:
    *parents, last = key.split(".")
    node = config
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def _is_grid(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) > 1 and not all(isinstance(v, str) for v in value)


def _single(value: Any) -> Any:
    """A one-value grid is that value (``(10,)`` → 10; ``((4, 8),)`` → (4, 8))."""
    return value[0] if isinstance(value, tuple) and len(value) == 1 and not isinstance(value[0], str) else value


def _fill(value: Any, fields: dict[str, str]) -> Any:
    return value.format(**fields) if isinstance(value, str) and "{" in value else value


def _base_config(script: Script, name: str) -> dict[str, Any]:
    """What no released setting names: the method's components, logging, run folder, evaluation."""
    config: dict[str, Any] = {
        "model": {}, "data": {"source": None},
        "objective": {"name": script.base}, "aggregator": {"name": AGGREGATORS[script.variant]},
        "retain": {"name": "nll"}, "forget_weight": 1.0, "dro_scope": "micro", "compat": "released", "log_every": 1,
        "training": {"logging_steps": 1, "save_strategy": "no", "report_to": "none"},
        "output_dir": f"runs/{name}",
    }
    if script.benchmark == "tofu":
        config["eval"] = dict(EVAL_DEFAULTS)
    return config


def build_experiment(script: Script, split: str, name: str | None = None, rows_by: str | None = None) -> Experiment:
    """The experiment of ``script`` on ``split`` (a TOFU forget split or a MUSE corpus)."""
    stem = f"{script.benchmark}_{split.lower()}_{script.base}" + (f"_{script.variant}" if script.variant else "")
    name = name or stem
    config = _base_config(script, name)
    fields = placeholders(script.benchmark, split)
    axes: list[Axis] = []
    for setting, value in settings_of(script).items():
        keys = setting_keys(script.benchmark, setting)
        if (script.benchmark, setting) in DIFFERENCES:
            continue
        expected = _fill(value.expected, fields)
        if _is_grid(expected):
            axes.append((keys, expected))
            expected = expected[0]
        expected = _single(expected)
        for key, part in zip(keys, expected if len(keys) > 1 else (expected,)):
            if part is not None:
                set_key(config, key, part)
    if script.benchmark == "tofu":
        set_key(config, "data.forget_split", fields["forget_split"])
        set_key(config, "data.retain_split", fields["retain_split"])
    table, row = paper_reference(script, split)
    return Experiment(name, script, split, config, tuple(axes), table, row, stem, rows_by)


def paper_reference(script: Script, split: str) -> tuple[str, str]:
    """(where the paper reports the experiment, its row label there)."""
    row = OBJECTIVES[script.base] + VARIANT_ROWS[script.variant]
    if script.benchmark == "muse":
        return f"Table 2 (MUSE-{split})", row
    return {"forget01": "Table 1 (TOFU forget01)", "forget05": "Fig. 3 (TOFU forget05; FQ also in the text)",
            "forget10": "Fig. 3 (TOFU forget10; not typed: a figure)"}[split], row


def paper_experiments() -> dict[str, Experiment]:
    """Every paper experiment by name: TOFU splits × methods, MUSE corpora × methods, then the Fig. 4 β grid."""
    out: dict[str, Experiment] = {}
    for script in SCRIPTS:
        for split in TOFU_SPLITS if script.benchmark == "tofu" else MUSE_CORPORA:
            exp = build_experiment(script, split)
            out[exp.name] = exp
    dv = out["tofu_forget01_npo_dv"]
    fig4 = build_experiment(dv.script, "forget01", name="tofu_forget01_npo_dv_beta", rows_by="aggregator.beta")
    out[fig4.name] = Experiment(fig4.name, fig4.script, fig4.split, fig4.config, fig4.axes,
                                "Fig. 4 (β of BalDRO-DV; not typed: a figure)", "NPO+BalDRO-DV per β", dv.runs,
                                "aggregator.beta")
    return dict(sorted(out.items(), key=lambda kv: _order(kv[1])))


def _order(exp: Experiment) -> tuple[Any, ...]:
    split_rank = (TOFU_SPLITS + MUSE_CORPORA).index(exp.split)
    return (exp.benchmark != "tofu", split_rank, list(OBJECTIVES).index(exp.script.base),
            list(VARIANT_ROWS).index(exp.script.variant), exp.rows_by is not None)


def experiment(name: str) -> Experiment:
    """The experiment called ``name``; ConfigError naming close ones otherwise."""
    experiments = paper_experiments()
    if name not in experiments:
        import difflib

        close = difflib.get_close_matches(name, list(experiments), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "see `baldro paper --list`"
        raise ConfigError(f"unknown paper experiment {name!r}; {hint}")
    return experiments[name]


def select(patterns: list[str]) -> list[Experiment]:
    """Experiments named by ``patterns`` (exact names or shell patterns such as ``tofu_forget01_*``), in list order,
    each once; ConfigError for a pattern that names none."""
    import fnmatch

    experiments = paper_experiments()
    chosen: list[str] = []
    for pattern in patterns:
        names = [n for n in experiments if fnmatch.fnmatchcase(n, pattern)] if any(c in pattern for c in "*?[") \
            else [experiment(pattern).name]
        if not names:
            raise ConfigError(f"{pattern!r} names no paper experiment; see `baldro paper --list`")
        chosen += [n for n in names if n not in chosen]
    return [experiments[n] for n in chosen]


def grid_points(exp: Experiment, overrides: dict[str, Any] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """``[(point name, run config)]`` of every grid point, ``overrides`` (``{dotted key: value}``) set in each; points
    that the overrides make equal are run once (``--set training.learning_rate=1e-5`` runs one learning rate). A key
    of a loss component (``objective.``, ``aggregator.``, ``retain.``) is set only where the preset has it."""
    import itertools

    overrides = overrides or {}
    points: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for combo in itertools.product(*(values for _, values in exp.axes)):
        config = copy.deepcopy(exp.config)
        parts: list[str] = []
        for (keys, _), value in zip(exp.axes, combo):
            for key, v in zip(keys, value if len(keys) > 1 else (value,)):
                set_key(config, key, v)
        for key, value in overrides.items():
            if key.split(".")[0] in COMPONENTS and get_key(exp.config, key) is None:
                continue  # a loss parameter pins the experiments that have it (aggregator.beta: the DV ones)
            set_key(config, key, value)
        for keys, _ in exp.axes:
            parts += [f"{POINT_ALIASES.get(k, k.rsplit('.', 1)[-1])}{get_key(config, k):g}"
                      if isinstance(get_key(config, k), int | float) else f"{k}={get_key(config, k)}" for k in keys]
        name = "_".join(parts) or "point"
        if name not in seen:
            seen.add(name)
            points.append((name, config))
    return points


def ours(exp: Experiment, setting: str) -> Any:
    """The value our experiment holds for a released setting: a tuple over the grid for a varied key (pairs for two
    keys varied together), else the config's value (a tuple for two fixed keys)."""
    keys = setting_keys(exp.benchmark, setting)
    for axis_keys, values in exp.axes:
        if axis_keys == keys:
            return values
    values = tuple(get_key(exp.config, k) for k in keys)
    return values if len(keys) > 1 else values[0]


def _norm(value: Any) -> Any:
    value = _single(value)
    if isinstance(value, tuple):
        return tuple(_norm(v) for v in value)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def matches(exp: Experiment, setting: str, value: Value) -> bool:
    """Whether our experiment holds what the released script passes for ``setting``."""
    return _norm(ours(exp, setting)) == _norm(_fill(value.expected, exp.placeholders()))


# ---------------------------------------------------------------------------------------------------------- docs

GENERATED = ("<!-- Generated by `python -m baldro.experiments.paper_presets --write-docs docs/paper-presets.md` from "
             "src/baldro/experiments/paper_scripts.py and paper_presets.py; a test checks it. Edit those, not this "
             "file. -->")


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        if value and all(isinstance(v, tuple) for v in value):
            return ", ".join(" × ".join(_show(x) for x in v) for v in value)
        inner = ", ".join(_show(v) for v in value)
        return inner if len(value) == 2 and all(isinstance(v, str) for v in value) else "{" + inner + "}"
    return str(value)


def _ours_cell(exp: Experiment, setting: str) -> str:
    keys = setting_keys(exp.benchmark, setting)
    return f"`{' × '.join(keys)}`: {_show(ours(exp, setting))}"


def _setting_rows(exp: Experiment, settings: dict[str, Value], general: bool = False) -> list[str]:
    rows = ["| setting | released value | file | ours | same |", "|---|---|---|---|---|"]
    for setting, value in settings.items():
        same = matches(exp, setting, value)
        difference = DIFFERENCES.get((exp.benchmark, setting))
        mark = "yes" if same else ("no: see below" if difference else "NO")
        released = _show(value.value) + (f" ({value.note})" if value.note else "")
        released = released.replace("{News,Books}", "{News, Books}")
        ours_cell = _ours_cell(exp, setting).replace(exp.split, "{corpus}") if general and exp.benchmark == "muse" \
            else _ours_cell(exp, setting)
        rows.append(f"| {setting} | {released} | `{value.file}` | {ours_cell} | {mark} |")
    return rows


def docs_text() -> str:
    """The text of docs/paper-presets.md."""
    experiments = paper_experiments()
    lines = [
        "# The paper's experiments: presets that are the released scripts", "", GENERATED, "",
        "`baldro paper` runs the experiments the BalDRO paper (Shao et al., arXiv 2601.09172) reports, with the",
        f"settings the released scripts pass (github {RELEASED}). Two preset families exist, on purpose:", "",
        "* **released** (this page, `baldro paper`): every setting as the released script passes it, the grid it loops",
        "  over included, and `compat: released` (the released trainers' loss definitions, docs/compat.md) — what",
        "  the paper's numbers were made with. Llama-2-7b-chat (TOFU) / Llama-2-7b (MUSE), one GPU.",
        "* **recommended** (`configs/*.yaml`, `baldro demo`, `baldro study`): the paper's definitions (`compat: paper`,",
        "  the DV sign of the paper's equations, β on each loss's scale), one setting per method, Llama-3.2-1B for",
        "  TOFU, effective batch 32 as 4 × 8.", "",
        "`baldro paper --show NAME` prints an experiment's run config (its first grid point; the grid in the header).",
        "", "## Experiments", "",
        "| experiment | where the paper reports it | row | released script | runs |", "|---|---|---|---|---|",
    ]
    for exp in experiments.values():
        row = exp.row if exp.rows_by is None else f"{exp.row} (rows: `{exp.rows_by}`)"
        lines.append(f"| `{exp.name}` | {exp.paper} | {row} | `{exp.script.file}` | {exp.size} |")
    for benchmark, title in (("tofu", "TOFU"), ("muse", "MUSE")):
        first = next(e for e in experiments.values() if e.benchmark == benchmark)
        lines += ["", f"## {title}: settings every script shares", "",
                  *_setting_rows(first, COMMON[benchmark], general=True)]
    lines += ["", "## Each method family", "",
              "The settings a family's script adds (TOFU: the splits it runs; where it runs fewer, the other splits",
              "use its grid). Braces: a grid the script loops over; pairs: per-device batch × accumulation."]
    for script in SCRIPTS:
        exp = next(e for e in experiments.values() if e.script is script)
        heading = f"### {script.benchmark.upper()} {OBJECTIVES[script.base]}{VARIANT_ROWS[script.variant]} " \
                  f"(`{script.trainer}`)"
        lines += ["", heading, "", f"Script `{script.file}`, splits {', '.join(script.splits)}.",
                  *([f"Note: {script.note}."] if script.note else []), "",
                  *_setting_rows(exp, script.settings)]
    lines += ["", "## Differences", ""]
    lines += [f"* {benchmark.upper()} {setting}: {why}." for (benchmark, setting), why in DIFFERENCES.items()]
    lines += [
        "* Warm-up steps: ⌊warmup_epochs · forget rows / (batch · accumulation · devices)⌋ as open-unlearning, with",
        "  devices = processes; open-unlearning counts `torch.cuda.device_count()` (the same on one GPU).",
        "* The selection of a result from a grid is not in the released code (it logs every epoch to wandb); see",
        "  `baldro paper` below for the rule the table uses.",
        "", "## What a machine cannot run", "",
        "`baldro paper` runs each point as the preset says where the machine can, and otherwise substitutes and",
        "records it (`substitutions` in the out folder's `summary.json`, printed at the start):", "",
        "* `training.optim: paged_adamw_32bit` needs bitsandbytes and a GPU: `adamw_torch` instead (the same AdamW",
        "  update, 32-bit state; paging only moves optimizer state between GPU and CPU memory, and the fused kernel",
        "  rounds differently).",
        "* `model.attn_implementation: flash_attention_2` needs the flash-attn package and a GPU: PyTorch's SDPA.",
        "* On a CPU: `training.use_cpu: true`, `bf16: false`, `model.dtype: float32` (miniatures, tests).", "",
        RUNNING.rstrip("\n"),
    ]
    return "\n".join(lines) + "\n"


RUNNING = """## `baldro paper`

```bash
baldro paper --list                        # the experiments, one a line, name first
baldro paper --show tofu_forget01_npo_dv   # its run config: the first grid point, the grid in the header
# Table 1 on a GPU, from local copies of the open-unlearning models, TOFU and the published retain logs
baldro paper 'tofu_forget01_*' --out paper_out --model models/tofu_Llama-2-7b-chat-hf_full --data data/tofu \\
  --retain-logs evals/tofu_Llama-2-7b-chat-hf_{retain_split}/TOFU_EVAL.json
# the same command as a CPU miniature (what the test suite runs): a tiny model, one step, 3 items
baldro paper tofu_forget01_npo --out mini --model tiny --data bench --retain-model tiny \\
  --set training.learning_rate=1e-3 --set training.per_device_train_batch_size=5 \\
  --set training.gradient_accumulation_steps=1 --set training.num_train_epochs=1 \\
  --max-new-tokens 2 --eval-max-items 3
```

* Paths (`--model`, `--tokenizer`, `--data`, `--retain-logs`, `--retain-model`) may hold `{forget_split}`,
  `{retain_split}`, `{holdout_split}`, `{corpus}` (News / Books), `{split}`. Without `--retain-logs` the retain
  model (default: open-unlearning's `tofu_Llama-2-7b-chat-hf_{retain_split}`, `muse-bench/MUSE-{corpus}_retrain`)
  is evaluated once per split, as the runs are. `--set KEY=VALUE` pins a key in every grid point (a loss parameter
  such as `aggregator.beta` only where the preset has it); points it makes equal run once.
* Every grid point is a cached stage (`<out>/runs/<experiment>/<point>/`: `point.json`, `train/model` with
  `trajectory.jsonl`, `eval/`); an interrupted run resumes at the first unfinished point, and a folder is reused only
  with the same config (otherwise `--fresh` or another `--out`). The Fig. 4 grid shares the DV experiment's runs.
* TOFU runs are evaluated at every epoch's end (`eval_every: epoch`, as `eval_strategy: epoch`), MUSE runs after
  training. An experiment's result is its best evaluation over the grid and its epochs (step 0 excluded): TOFU the
  highest Forget Quality, ties by Model Utility; MUSE the PrivLeak closest to 0, ties by KnowMem on D_r. The
  released code selects nothing (it logs every epoch) and no rule could be read from the paper here: this one is
  ours, and `results.csv` holds every evaluation for another.
* `paper_table.md` is in the paper's layout (Table 1 and 3 for forget01, Fig. 3's forget05 / forget10 in Table 1's
  columns, Table 2 for MUSE, a row per β for Fig. 4), each cell `paper / ours`. The paper's values are typed in
  `src/baldro/experiments/paper_values.csv` with their table and row; they were transcribed from a public
  reproduction note of the paper's tables and not yet checked against the paper itself (its HTML could not be read
  where they were typed). Fluency (open-unlearning's gibberish classifier) is not computed by baldro.
* Cost: the grids are the scripts' — 20 runs for TOFU NPO, 100 for NPO+DV (5 β), 48 for each SimNPO family; each
  a 7B model for 5–10 epochs. Pin what you do not need with `--set`.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m baldro.experiments.paper_presets", description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write-docs", metavar="FILE", help="write the side-by-side table (docs/paper-presets.md)")
    group.add_argument("--check-docs", metavar="FILE", help="exit 1 when FILE differs from the generated table")
    args = parser.parse_args(argv)
    if args.write_docs:
        Path(args.write_docs).write_text(docs_text(), encoding="utf-8")
        print(f"wrote {args.write_docs}")
        return 0
    path = Path(args.check_docs)
    if not path.is_file() or path.read_text(encoding="utf-8") != docs_text():
        print(f"{path}: out of date; run python -m baldro.experiments.paper_presets --write-docs {path}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["DIFFERENCES", "SETTING_KEYS", "Experiment", "docs_text", "experiment", "grid_points", "matches", "ours",
           "paper_experiments", "select"]
