"""Which ``checkpoint-<step>`` folders are complete: a checkpoint counts only when validated by its files.

The Trainer writes a checkpoint in this order: weights, optimizer / scheduler / scaler / RNG state, then
``trainer_state.json`` (``Trainer._save_checkpoint``). A checkpoint is complete when ``trainer_state.json`` is a JSON
object whose ``global_step`` is the folder's step, and every ``*.safetensors`` in it is whole
(:func:`baldro.readback.safetensors_problem`). A save cut short by Ctrl-C, ``kill -9`` or a full disk therefore
leaves an *incomplete* checkpoint, which is never resumed from: ``--resume`` falls back to the last complete one.
"""

from __future__ import annotations

import json
from pathlib import Path

from baldro.readback import safetensors_problem

PREFIX = "checkpoint-"
STATE_FILE = "trainer_state.json"


def checkpoint_folders(folder: Path) -> list[tuple[int, Path]]:
    """``[(step, path)]`` of the ``checkpoint-<step>`` sub-folders of ``folder``, by step."""
    if not folder.is_dir():
        return []
    found = [(int(c.name[len(PREFIX):]), c) for c in folder.iterdir()
             if c.is_dir() and c.name.startswith(PREFIX) and c.name[len(PREFIX):].isdigit()]
    return sorted(found)


def checkpoint_problem(checkpoint: Path) -> str | None:
    """Why ``checkpoint`` cannot be resumed from (``None`` when it is complete)."""
    state = checkpoint / STATE_FILE
    if not state.is_file():
        return f"no {STATE_FILE}: the save was interrupted"
    try:
        record = json.loads(state.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return f"{STATE_FILE} is cut off or damaged: the save was interrupted"
    step = checkpoint.name[len(PREFIX):]
    if not isinstance(record, dict) or (step.isdigit() and record.get("global_step") not in (None, int(step))):
        return f"{STATE_FILE} does not describe step {step}"
    for weights in sorted(checkpoint.rglob("*.safetensors")):
        problem = safetensors_problem(weights)
        if problem is not None:
            return f"{weights.relative_to(checkpoint)} is damaged ({problem})"
    return None


def last_checkpoint(folder: Path) -> Path | None:
    """The complete ``checkpoint-<step>`` sub-folder with the highest step, if any (incomplete ones are skipped)."""
    for _, path in reversed(checkpoint_folders(folder)):
        if checkpoint_problem(path) is None:
            return path
    return None


def incomplete_after(folder: Path, checkpoint: Path | None) -> list[tuple[Path, str]]:
    """``[(path, why)]`` of the incomplete checkpoints of ``folder`` with a higher step than ``checkpoint`` (all of
    them when it is ``None``)."""
    floor = -1 if checkpoint is None else int(checkpoint.name[len(PREFIX):])
    found = []
    for step, path in checkpoint_folders(folder):
        problem = checkpoint_problem(path) if step > floor else None
        if problem is not None:
            found.append((path, problem))
    return found
