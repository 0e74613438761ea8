"""Failures of the machine rather than of baldro — a full disk, a read-only folder, a missing permission — as one
line for the user, whichever library met them: ``OSError`` (Python's own writes), ``SafetensorError`` carrying an
``os error N`` (safetensors' writer), and the ``RuntimeError`` of ``torch.save``'s zip writer, which on a full disk
says only "unexpected pos" or "file write failed" (it loses the OS error)."""

from __future__ import annotations

import errno
import os
import re

FIXES = {
    errno.ENOSPC: "free some space or write elsewhere (--out / output_dir)",
    errno.EDQUOT: "free some space or write elsewhere (--out / output_dir)",
    errno.EROFS: "write to a writable folder (--out / output_dir)",
    errno.EACCES: "write to a folder you may write to, or fix its permissions",
    errno.EPERM: "write to a folder you may write to, or fix its permissions",
}
TORCH_WRITER = re.compile(r"PytorchStreamWriter failed|file write failed|inline_container\.cc.*unexpected pos")


def _os_line(code: int | None, strerror: str, filename: object = None) -> str:
    where = f"{filename}: " if filename else ""
    fix = FIXES.get(code or -1)
    return f"{where}{strerror}" + (f"; {fix}" if fix else "")


def environment_error(err: BaseException, out: object = None) -> str | None:
    """The one line describing ``err`` when the machine caused it (see the module docstring), else ``None``;
    ``out``: the command's ``--out``, named when the error does not say which file it met."""
    if isinstance(err, OSError):
        strerror = err.strerror or str(err) or type(err).__name__
        return _os_line(err.errno, strerror, err.filename or (f"writing --out {out}" if out else None))
    text = str(err)
    if type(err).__name__ == "SafetensorError":
        found = re.search(r"os error (\d+)", text)
        if found:
            code = int(found.group(1))
            return _os_line(code, f"writing a safetensors file failed: {os.strerror(code)}")
    if isinstance(err, RuntimeError) and TORCH_WRITER.search(text):
        return ("writing a file with torch.save failed (the disk is probably full: its writer does not say); "
                f"{FIXES[errno.ENOSPC]}")
    return None
