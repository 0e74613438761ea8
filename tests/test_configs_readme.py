"""configs/README.md states what the preset files set: the TOFU training settings, and that no preset writes the
checkpoints `--resume` needs (with the override that makes a run resumable)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "configs" / "README.md").read_text()


def _presets(pattern: str) -> dict[str, dict]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted((ROOT / "configs").glob(pattern))}


def test_the_tofu_row_states_the_tofu_presets_settings():
    row = next(line for line in DOC.splitlines() if line.startswith("| `tofu_{ga,"))
    lr, epochs, batch, accumulation, decay = re.search(
        r"lr ([\d.e-]+), (\d+) epochs, effective batch \d+ as (\d+) × (\d+), weight decay ([\d.]+)", row).groups()
    unlearn = {k: v for k, v in _presets("tofu_*.yaml").items() if "finetune" not in k}
    assert len(unlearn) == 15
    for name, config in unlearn.items():
        t = config["training"]
        assert (t["learning_rate"], t["num_train_epochs"]) == (float(lr), int(epochs)), name
        assert (t["per_device_train_batch_size"], t["gradient_accumulation_steps"]) == (int(batch), int(accumulation))
        assert t["weight_decay"] == float(decay), name


def test_resume_needs_checkpoints_and_the_doc_says_how_to_get_them():
    strategies = {name: c.get("training", {}).get("save_strategy") for name, c in _presets("*.yaml").items()}
    assert set(strategies.values()) == {"no"}, "update configs/README.md's --resume sentence"
    assert "Every preset here sets `training.save_strategy: 'no'`" in DOC
    assert "`--set training.save_strategy=steps\n--set training.save_steps=50`" in DOC
    assert "needs `training.save_strategy: steps`)" not in DOC
