"""The run folder, owned by one module: lock, atomic creation, checkpoints, done marker, ``config.yaml`` and
``run_info.json``. Every command that writes a folder (``unlearn``, ``finetune``, ``eval``, ``report``, ``demo``,
``sweep``, ``data synth``, ``model tiny``) goes through here.

- **Lock.** ``.<name>.lock`` beside the folder, held with ``fcntl.flock`` (released by the OS when the process dies)
  and holding ``{"pid", "started", "host", "command"}``. A second process fails at once naming the holder. A lock file
  that still has a record although nobody holds it was left by a killed process: it is reported, and only taken over
  when the user asks (``--resume`` / ``--overwrite``, or by deleting the file).
- **Atomic creation.** A run writes into the hidden sibling ``.<name>.partial`` and is renamed to ``<name>`` at the
  end, so a crash never leaves a folder that looks finished; :func:`staged` does the same for one-shot outputs.
- **Checkpoints are never deleted implicitly**: a plain rerun over a partial folder with ``checkpoint-*`` refuses.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baldro.errors import ConfigError

CONFIG_FILE = "config.yaml"
RUN_INFO = "run_info.json"
DONE = ".baldro_done"


def lock_path(folder: str | Path) -> Path:
    """``<parent>/.<name>.lock``: beside the folder, so that renaming the folder into place keeps the lock."""
    folder = Path(folder)
    return folder.parent / f".{folder.name}.lock"


def partial_path(final: str | Path) -> Path:
    final = Path(final)
    return final.parent / f".{final.name}.partial"


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe_holder(record: dict[str, Any]) -> str:
    """``pid 123 (started 2026-01-01 12:00:00 UTC on host, `baldro unlearn ...`)``."""
    where = f" on {record['host']}" if record.get("host") else ""
    command = f", `{record['command']}`" if record.get("command") else ""
    return f"pid {record.get('pid', '?')} (started {record.get('started', '?')}{where}{command})"


class FolderLock:
    """An exclusive OS-level lock on a folder; use as a context manager or call :meth:`acquire` / :meth:`release`.

    ``take_stale``: take over a lock file left by a process that died (reported as a warning and kept in
    :attr:`stale`); otherwise such a file is a :class:`ConfigError` that says how to clear it (``stale_hint``).
    """

    def __init__(self, folder: str | Path, take_stale: bool = False, stale_hint: str = "") -> None:
        self.folder = Path(folder)
        self.path = lock_path(self.folder)
        self.take_stale = take_stale
        self.stale_hint = stale_hint
        self.stale: dict[str, Any] | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _read(self, fd: int) -> dict[str, Any]:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 65536).decode("utf-8", "replace").strip()
        if not text:
            return {}
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            return {"pid": "?", "started": "?", "raw": text[:80]}
        return record if isinstance(record, dict) else {"raw": text[:80]}

    def acquire(self) -> FolderLock:
        if self.held:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                holder = self._read(fd)
                os.close(fd)
                raise ConfigError(
                    f"{self.folder} is in use by {describe_holder(holder)}; wait for it to finish or choose another "
                    "folder"
                ) from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the previous holder removed the file between our open and our lock: try again
        record = self._read(fd)
        if record and record.get("pid") != os.getpid():
            alive = "still running (but not holding the lock)" if _pid_alive(record.get("pid")) else "no longer running"
            if not self.take_stale:
                os.close(fd)
                hint = self.stale_hint or f"delete {self.path} if that process is gone"
                raise ConfigError(
                    f"{self.folder}: a run by {describe_holder(record)}, {alive}, was interrupted and left the lock "
                    f"{self.path}; {hint}"
                )
            self.stale = record
            warnings.warn(f"{self.folder}: taking over the lock left by {describe_holder(record)}, {alive}",
                          stacklevel=2)
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else ""
        own = {"pid": os.getpid(), "started": now(), "host": socket.gethostname(), "command": command[:300]}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(own) + "\n").encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file, then unlock (a waiter that opened the old file sees it is gone and retries)."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


# --------------------------------------------------------------------------------------------------- one-shot outputs


def check_out_dir(out: str | Path, overwrite: bool) -> Path:
    """``out`` as a Path; :class:`ConfigError` if it is a file, or a non-empty folder without ``overwrite``."""
    final = Path(out)
    if final.exists() and not final.is_dir():
        raise ConfigError(f"--out {final}: is a file; give a folder path")
    if final.is_dir() and any(final.iterdir()) and not overwrite:
        raise ConfigError(f"--out {final}: folder is not empty; choose a new folder or pass --overwrite to replace it")
    return final


@contextlib.contextmanager
def staged(out: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Lock ``out``, yield an empty temporary folder beside it; when the block succeeds the folder replaces ``out``,
    when it fails it is deleted, so ``out`` never holds a half-written result."""
    final = check_out_dir(out, overwrite)
    with FolderLock(final, take_stale=overwrite, stale_hint="pass --overwrite to take it over"):
        final = check_out_dir(out, overwrite)  # again, now that nobody else can write it
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)


# ------------------------------------------------------------------------------------------------------- run folders


@dataclass
class RunFolder:
    final: Path
    work: Path
    resume_from: Path | None = None
    created: bool = False


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
    """Decide the folders of a run (no side effects): where to write and which checkpoint to resume from.

    Refuses a finished folder without ``overwrite`` and a partial folder holding checkpoints without ``resume`` or
    ``overwrite`` (they are never deleted implicitly)."""
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
    checkpoint = last_checkpoint(work)
    if checkpoint is not None and not overwrite:
        raise ConfigError(f"output_dir {final}: an interrupted run left {checkpoint.name} in {work}; use --resume to "
                          "continue or --overwrite to start again")
    if finished and not overwrite:
        raise ConfigError(f"output_dir {final} is not empty; pass --overwrite to replace it or choose another folder")
    return RunFolder(final=final, work=work)


def open_run(run: RunFolder) -> None:
    """Create the work folder (main process only, holding the lock). A resumed run from a finished folder copies it
    to the work folder; a partial folder without checkpoints is cleared with a warning."""
    if run.resume_from is not None:
        if not run.work.exists():
            shutil.copytree(run.final, run.work)
            run.resume_from = run.work / run.resume_from.name
        return
    if run.work.exists():
        what = "checkpoints" if last_checkpoint(run.work) else "files"
        warnings.warn(f"removing {run.work} and its {what}, left by an interrupted run", stacklevel=2)
        shutil.rmtree(run.work)
    run.work.mkdir(parents=True)
    run.created = True


def discard_failed(run: RunFolder) -> None:
    """After an error: remove the work folder this run created unless it holds checkpoints to resume from."""
    if run.created and run.work.is_dir() and last_checkpoint(run.work) is None:
        shutil.rmtree(run.work, ignore_errors=True)


def close_run(run: RunFolder) -> Path:
    """Move the finished work folder into place (replacing an old ``final``: rename it aside, rename, delete)."""
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


# ------------------------------------------------------------------------------------ done marker and run_info.json


def mark_done(folder: Path) -> None:
    (Path(folder) / DONE).write_text("")


def is_done(folder: Path) -> bool:
    return (Path(folder) / DONE).exists()


def read_run_info(folder: str | Path) -> dict[str, Any]:
    """``run_info.json`` of a folder as a dict (empty when absent); malformed JSON is a ConfigError naming it."""
    path = Path(folder) / RUN_INFO
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid JSON ({err}); delete it or restore it") from err
    if not isinstance(info, dict):
        raise ConfigError(f"{path}: must be a JSON object")
    return info


def write_run_info(folder: str | Path, **fields: Any) -> Path:
    """Merge ``fields`` into ``run_info.json`` (atomically: temporary file, then rename)."""
    path = Path(folder) / RUN_INFO
    info = {**read_run_info(folder), **fields}
    tmp = path.with_name(f".{RUN_INFO}.tmp")
    tmp.write_text(json.dumps(info, indent=1, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())


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
