"""The run folder, owned by this one package: lock, atomic creation, checkpoints, done marker, ``config.yaml`` and
``run_info.json``. Every command that writes a folder (``unlearn``, ``finetune``, ``eval``, ``report``, ``demo``,
``sweep``, ``data synth``, ``model tiny``) goes through here.

- **Lock.** ``.<name>.lock`` beside the folder, held with ``fcntl.flock`` (released by the OS when the process dies)
  and holding ``{"pid", "started", "host", "command"}``. A second process fails at once naming the holder. A lock file
  that still has a record although nobody holds it was left by a killed process: it is reported, and only taken over
  when the user asks (``--resume`` / ``--overwrite``, or by deleting the file).
- **Atomic creation.** A run writes into the hidden sibling ``.<name>.partial`` and is renamed to ``<name>`` at the
  end, so a crash never leaves a folder that looks finished; :func:`staged` does the same for one-shot outputs.
- **Checkpoints are never deleted implicitly**: a plain rerun over a partial folder with ``checkpoint-*`` refuses.
- **Checkpoints are complete or ignored**: only a checkpoint validated by its files is resumed from; ``--resume``
  falls back to the last complete one and removes the incomplete ones after it, saying so
  (:mod:`baldro.runfolder.checkpoints`).
"""

from baldro.runfolder.checkpoints import checkpoint_problem, last_checkpoint
from baldro.runfolder.folders import (
    RunFolder,
    check_out_apart,
    check_out_dir,
    claim_run,
    close_run,
    discard_failed,
    held_out,
    open_permissions,
    open_run,
    partial_path,
    plan_run,
    resolved,
    staged,
)
from baldro.runfolder.info import CONFIG_FILE, DONE, RUN_INFO, is_done, mark_done, read_run_info, write_run_info
from baldro.runfolder.lock import FolderLock, describe_holder, lock_path, now

__all__ = [
    "CONFIG_FILE", "DONE", "RUN_INFO", "FolderLock", "RunFolder", "check_out_apart", "check_out_dir", "checkpoint_problem", "claim_run", "close_run",
    "describe_holder", "discard_failed", "held_out", "is_done", "open_permissions", "last_checkpoint", "lock_path", "mark_done", "now", "open_run",
    "partial_path", "plan_run", "read_run_info", "resolved", "staged", "write_run_info",
]
