"""Fingerprints of a run's inputs (data files, model files, tokenizer), recorded in ``run_info.json`` (``inputs``)
so that ``--resume`` can refuse a run whose inputs changed since it started, naming the input and the file.

A file's fingerprint is its size and a SHA-256: of the whole file up to :data:`FULL_HASH_BYTES`, above that of its
size and :data:`SAMPLES` evenly spaced 64 KiB blocks (first and last included), marked ``sampled`` — model weights of
several GB cost milliseconds, and a retrained or replaced weights file changes every block. Modification times are
not part of it: a copy of the same files is the same input. A folder's fingerprint is that of its files (hidden
names skipped; sub-folders only when ``recursive``). Something that is not a local path (a hub id) is recorded by
name only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

FULL_HASH_BYTES = 64 * 1024 * 1024
SAMPLES = 32
BLOCK = 64 * 1024


def file_fingerprint(path: Path) -> dict[str, Any]:
    """``{"size", "sha256"}``, plus ``"sampled": True`` for a file over :data:`FULL_HASH_BYTES`."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        if size <= FULL_HASH_BYTES:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
            return {"size": size, "sha256": digest.hexdigest()}
        digest.update(str(size).encode())
        for i in range(SAMPLES):
            fh.seek((size - BLOCK) * i // (SAMPLES - 1))
            digest.update(fh.read(BLOCK))
    return {"size": size, "sha256": digest.hexdigest(), "sampled": True}


def _files(folder: Path, recursive: bool) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file()
                  and not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(folder).parts))


def fingerprint(source: str | Path, recursive: bool = True) -> dict[str, Any]:
    """The fingerprint of a local file or folder (``{"path", "files": {relative name: file fingerprint}}``), or
    ``{"name": source}`` for anything else (a hub id)."""
    path = Path(str(source)).expanduser()
    if path.is_file():
        return {"path": str(path.resolve()), "files": {path.name: file_fingerprint(path)}}
    if path.is_dir():
        return {"path": str(path.resolve()),
                "files": {str(f.relative_to(path)): file_fingerprint(f) for f in _files(path, recursive)}}
    return {"name": str(source)}


def input_changes(saved: dict[str, Any], now: dict[str, Any]) -> dict[str, list[str]]:
    """``{input name: [what changed, ...]}`` between two ``{input name: fingerprint}`` records: an input given
    differently, or a file recorded before that is now missing or has other contents. Files added since are not
    changes (nothing read them when the run started)."""
    out: dict[str, list[str]] = {}
    for name in sorted(set(saved) | set(now)):
        before, after = saved.get(name), now.get(name)
        if before is None or after is None:
            out[name] = ["given now, not when the run started" if before is None else "no longer given"]
            continue
        if "files" not in before or "files" not in after:
            if before != after:
                out[name] = [f"{before.get('path') or before.get('name')} → {after.get('path') or after.get('name')}"]
            continue
        files: list[str] = []
        for rel, old in sorted(before["files"].items()):
            new = after["files"].get(rel)
            if new is None:
                files.append(f"{rel} is missing")
            elif (new["size"], new["sha256"]) != (old["size"], old["sha256"]):
                files.append(f"{rel} changed (sha256 {old['sha256'][:12]} → {new['sha256'][:12]}, "
                             f"{old['size']} → {new['size']} bytes)")
        if files:
            out[name] = files
    return out
