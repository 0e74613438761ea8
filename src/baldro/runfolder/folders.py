"""Run folders that never look finished before they are, and checkpoints that are never deleted implicitly.

A training run writes into the hidden sibling ``.<name>.partial`` and is renamed to ``<name>`` at the end;
:func:`staged` does the same for one-shot outputs (``report``, ``data synth``, ``model tiny``). Both hold the
folder's :class:`~baldro.runfolder.lock.FolderLock` while they write.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baldro.errors import ConfigError
from baldro.runfolder.checkpoints import checkpoint_folders, incomplete_after, last_checkpoint
from baldro.runfolder.lock import FolderLock


def partial_path(final: str | Path) -> Path:
    """``<parent>/.<name>.partial``: where a run writes until it is complete."""
    final = Path(final)
    return final.parent / f".{final.name}.partial"


def check_out_dir(out: str | Path, overwrite: bool) -> Path:
    """``out`` as a Path; :class:`ConfigError` if it is a file, or a non-empty folder without ``overwrite``."""
    final = Path(out)
    if final.exists() and not final.is_dir():
        raise ConfigError(f"--out {final}: is a file; give a folder path")
    if final.is_dir() and any(final.iterdir()) and not overwrite:
        raise ConfigError(f"--out {final}: folder is not empty; choose a new folder or pass --overwrite to replace it")
    return final


def umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def open_permissions(root: Path) -> None:
    """Give the folders (0755) and files (0644) under ``root`` the read permissions the umask allows, which
    ``tempfile.mkdtemp`` (0700) and safetensors' writer (0600) leave out: others on a shared machine can read a
    finished output, unless the umask says otherwise. Files gain read bits only, folders read and search bits."""
    mask = umask()
    for folder, _, files in os.walk(root):
        for path, bits in [(folder, 0o755), *((os.path.join(folder, f), 0o644) for f in files)]:
            if not os.path.islink(path):
                mode = os.stat(path).st_mode & 0o7777
                if mode | (bits & ~mask) != mode:
                    os.chmod(path, mode | (bits & ~mask))


def resolved(path: str | Path) -> Path:
    """``path`` made absolute with every link followed: a link and the folder it points to are one folder (one
    lock, one output)."""
    return Path(path).expanduser().resolve()


def check_out_apart(out: str | Path, inputs: dict[str, Any], flag: str = "--out") -> None:
    """:class:`ConfigError` when ``out`` (links followed) is one of the existing ``inputs`` (``{flag: path}``) or a
    folder holding one: writing or replacing it would destroy what the command reads."""
    target = resolved(out)
    for name, value in inputs.items():
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            if item is None or not Path(str(item)).expanduser().exists():
                continue
            source = resolved(item)
            if source == target or target in source.parents:
                relation = "is" if source == target else "holds"
                raise ConfigError(f"{flag} {out} {relation} the input {name} {item}: the output would replace it; "
                                  f"choose another {flag}")


def _drop_leftovers(final: Path) -> None:
    """Remove what a staged write killed with ``kill -9`` left beside ``final`` (its lock is held: nobody else is
    writing them)."""
    for left in [*final.parent.glob(f".{final.name}.*.tmp"), *final.parent.glob(f".{final.name}.old-*")]:
        if left.is_dir() and not left.is_symlink():
            shutil.rmtree(left, ignore_errors=True)


@contextlib.contextmanager
def staged(out: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Lock ``out`` (resolved: a link keeps pointing to the folder it names, which is what is replaced), yield an
    empty temporary folder beside it; when the block succeeds the folder replaces ``out``, when it fails it is
    deleted, so ``out`` never holds a half-written result."""
    final = resolved(check_out_dir(out, overwrite))
    with FolderLock(final, take_stale=overwrite, stale_hint="pass --overwrite to take it over"):
        check_out_dir(final, overwrite)  # again, now that nobody else can write it
        _drop_leftovers(final)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        open_permissions(tmp)
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)


@contextlib.contextmanager
def held_out(out: str | Path, overwrite: bool = False, stale_hint: str = "") -> Iterator[Path]:
    """Hold the lock of a folder a command writes its result files into (``eval --out``), taken on the resolved
    path; when the block fails, the folder is removed if it did not exist before and is still empty."""
    final = resolved(out)
    existed = final.exists()
    with FolderLock(final, take_stale=overwrite, stale_hint=stale_hint):
        try:
            yield final
        except BaseException:
            if not existed and final.is_dir() and not any(final.iterdir()):
                final.rmdir()
            raise


@dataclass
class RunFolder:
    final: Path
    work: Path
    resume_from: Path | None = None
    created: bool = False
    incomplete: list[tuple[Path, str]] = field(default_factory=list)  # torn checkpoints newer than resume_from


def _names(found: list[tuple[Path, str]]) -> str:
    return "; ".join(f"{path.name} ({why})" for path, why in found)


def plan_run(output_dir: str | Path, overwrite: bool = False, resume: bool = False) -> RunFolder:
    """Decide the folders of a run (no side effects): where to write and which checkpoint to resume from.

    Refuses a finished folder without ``overwrite`` and a partial folder holding checkpoints without ``resume`` or
    ``overwrite`` (they are never deleted implicitly). Only complete checkpoints are resumed from
    (:mod:`baldro.runfolder.checkpoints`); incomplete ones after it are listed in ``incomplete``."""
    final = Path(output_dir).expanduser().resolve()
    work = partial_path(final)
    finished = final.is_dir() and any(final.iterdir())
    if final.exists() and not final.is_dir():
        raise ConfigError(f"output_dir {final} is a file; choose a folder path")
    if resume:
        where, checkpoint = work, last_checkpoint(work)
        if checkpoint is None and finished and last_checkpoint(final) is not None:
            where, checkpoint = final, last_checkpoint(final)
        torn = incomplete_after(where, checkpoint)
        if checkpoint is None and torn:
            raise ConfigError(f"--resume: {where} holds no complete checkpoint, only {_names(torn)}; run with "
                              "--overwrite instead of --resume to start again")
        if checkpoint is None:
            raise ConfigError(
                f"--resume: no checkpoint-* folder in {work} or {final}; set training.save_strategy=steps "
                "(and save_steps) to write checkpoints, or run without --resume"
            )
        return RunFolder(final=final, work=work, resume_from=checkpoint, incomplete=torn)
    checkpoint = last_checkpoint(work)
    if checkpoint is not None and not overwrite:
        raise ConfigError(f"output_dir {final}: an interrupted run left {checkpoint.name} in {work}; use --resume to "
                          "continue or --overwrite to start again")
    torn = incomplete_after(work, None)
    if torn and not overwrite:
        raise ConfigError(f"output_dir {final}: an interrupted run left only incomplete checkpoints in {work} "
                          f"({_names(torn)}), nothing to resume from; pass --overwrite to start again")
    if finished and not overwrite:
        raise ConfigError(f"output_dir {final} is not empty; pass --overwrite to replace it or choose another folder")
    return RunFolder(final=final, work=work)


def open_run(run: RunFolder) -> None:
    """Create the work folder (main process only, holding the lock). A resumed run from a finished folder copies it
    to the work folder, and incomplete checkpoints after the one resumed from are removed with a warning (the
    Trainer would write its next save into them); a partial folder without checkpoints is cleared with a warning."""
    if run.resume_from is not None:
        if run.resume_from.parent != run.work:
            if run.work.exists():
                warnings.warn(f"removing {run.work}: it holds no complete checkpoint", stacklevel=2)
                shutil.rmtree(run.work)
            shutil.copytree(run.final, run.work)
            run.resume_from = run.work / run.resume_from.name
        for path, why in run.incomplete:
            warnings.warn(f"{path.name} is incomplete ({why}): removed; resuming from {run.resume_from.name}",
                          stacklevel=2)
            shutil.rmtree(run.work / path.name, ignore_errors=True)
        return
    if run.work.exists():
        what = "checkpoints" if checkpoint_folders(run.work) else "files"
        warnings.warn(f"removing {run.work} and its {what}, left by an interrupted run", stacklevel=2)
        shutil.rmtree(run.work)
    run.work.mkdir(parents=True)
    run.created = True


def discard_failed(run: RunFolder) -> None:
    """After an error: remove the work folder this run created unless it holds a complete checkpoint to resume
    from (an incomplete one, cut off by the error, is removed with it)."""
    if run.created and run.work.is_dir() and last_checkpoint(run.work) is None:
        shutil.rmtree(run.work, ignore_errors=True)


def close_run(run: RunFolder) -> Path:
    """Move the finished work folder into place (replacing an old ``final``: rename it aside, rename, delete), its
    files readable as the umask allows (:func:`open_permissions`)."""
    open_permissions(run.work)
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


def claim_run(output_dir: str | Path, overwrite: bool = False, resume: bool = False) -> tuple[FolderLock, RunFolder]:
    """Lock the run folder, then :func:`plan_run` it (the caller releases the lock). A lock left by a killed process
    is taken over only with ``resume`` or ``overwrite``."""
    final = Path(output_dir).expanduser().resolve()
    hint = ("use --resume to continue or --overwrite to start again" if last_checkpoint(partial_path(final))
            else "pass --overwrite to start again, or delete the lock file")
    lock = FolderLock(final, take_stale=overwrite or resume, stale_hint=hint).acquire()
    try:
        return lock, plan_run(final, overwrite, resume)
    except BaseException:
        lock.release()
        raise
