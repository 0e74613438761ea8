"""Output folders written all at once: build in a hidden sibling folder, then rename it into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from baldro.errors import ConfigError


def check_out_dir(out: str | Path, overwrite: bool) -> Path:
    """``out`` as a Path; :class:`ConfigError` if it is a file, or a non-empty folder without ``overwrite``."""
    final = Path(out)
    if final.exists() and not final.is_dir():
        raise ConfigError(f"--out {final}: is a file; give a folder path")
    if final.is_dir() and any(final.iterdir()) and not overwrite:
        raise ConfigError(f"--out {final}: folder is not empty; choose a new folder or pass --overwrite to replace it")
    return final


@contextmanager
def staged_out_dir(out: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``out``; when the block succeeds it replaces ``out``, when it fails it
    is deleted, so ``out`` never holds a half-written result."""
    final = check_out_dir(out, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
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
