"""Run folders that never look finished before they are.

A run writes into a hidden sibling ``.<name>.partial`` and is renamed to ``<name>`` only at the end, so a crash
leaves no folder that looks complete. A non-empty ``<name>`` is refused unless ``overwrite``; ``resume`` continues
from the last checkpoint in the partial folder (or in a finished folder, when one is given to extend).
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

from baldro.errors import ConfigError

CONFIG_FILE = "config.yaml"


@dataclass
class RunFolder:
    final: Path
    work: Path
    resume_from: Path | None = None


def partial_path(final: Path) -> Path:
    return final.parent / f".{final.name}.partial"


def last_checkpoint(folder: Path) -> Path | None:
    """The ``checkpoint-<step>`` sub-folder with the highest step, if any."""
    if not folder.is_dir():
        return None
    steps = []
    for child in folder.iterdir():
        if child.is_dir() and child.name.startswith("checkpoint-") and child.name[11:].isdigit():
            steps.append((int(child.name[11:]), child))
    return max(steps)[1] if steps else None


def plan_run(output_dir: str | Path, overwrite: bool = False, resume: bool = False) -> RunFolder:
    """Decide the folders of a run (no side effects): where to write and which checkpoint to resume from."""
    final = Path(output_dir).expanduser().resolve()
    work = partial_path(final)
    finished = final.is_dir() and any(final.iterdir())
    if final.exists() and not final.is_dir():
        raise ConfigError(f"output_dir {final} is a file; choose a folder path")
    if resume:
        checkpoint = last_checkpoint(work) or (last_checkpoint(final) if finished else None)
        if checkpoint is None:
            raise ConfigError(
                f"--resume: no checkpoint-* folder in {work} or {final}; set training.save_strategy=steps "
                "(and save_steps) to write checkpoints, or run without --resume"
            )
        return RunFolder(final=final, work=work, resume_from=checkpoint)
    if finished and not overwrite:
        raise ConfigError(f"output_dir {final} is not empty; pass --overwrite to replace it or choose another folder")
    return RunFolder(final=final, work=work)


def open_run(run: RunFolder) -> None:
    """Create the work folder (main process only). A resumed run from a finished folder copies it to the work folder."""
    if run.resume_from is not None:
        if not run.work.exists():
            shutil.copytree(run.final, run.work)
            run.resume_from = run.work / run.resume_from.name
        return
    if run.work.exists():
        warnings.warn(f"removing {run.work}, left by an interrupted run (use --resume to continue it)", stacklevel=2)
        shutil.rmtree(run.work)
    run.work.mkdir(parents=True)


def close_run(run: RunFolder) -> Path:
    """Move the finished work folder into place (replacing an old ``final`` atomically enough: rename, then delete)."""
    old = None
    if run.final.exists():
        old = run.final.parent / f".{run.final.name}.old"
        if old.exists():
            shutil.rmtree(old)
        run.final.rename(old)
    run.work.rename(run.final)
    if old is not None:
        shutil.rmtree(old)
    return run.final
