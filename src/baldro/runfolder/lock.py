"""The run folder's lock: ``fcntl.flock`` on ``.<name>.lock`` beside the folder, holding the holder's record.

The OS releases the lock when the process dies; a lock *file* that still holds a record although nobody holds the
lock was left by a killed process: :class:`FolderLock` reports it and takes it over only when asked.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from baldro.errors import ConfigError


def now() -> str:
    """The current UTC time as ``YYYY-MM-DD HH:MM:SS UTC``."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())


def lock_path(folder: str | Path) -> Path:
    """``<parent>/.<name>.lock``: beside the folder, so that renaming the folder into place keeps the lock."""
    folder = Path(folder)
    return folder.parent / f".{folder.name}.lock"


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

    The lock is taken on the resolved path (links followed), so ``--out DIR`` and ``--out LINK`` (to DIR) exclude
    each other. ``take_stale``: take over a lock file left by a process that died (reported as a warning and kept in
    :attr:`stale`); otherwise such a file is a :class:`ConfigError` that says how to clear it (``stale_hint``).
    """

    def __init__(self, folder: str | Path, take_stale: bool = False, stale_hint: str = "") -> None:
        self.folder = Path(folder).expanduser().resolve()  # a link and its folder are one folder: one lock
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
