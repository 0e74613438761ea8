"""Loading dataset splits from the Hugging Face hub without hanging when it cannot be reached.

Before calling :func:`datasets.load_dataset` we try one TCP connection to the hub endpoint (3 s). When it fails, or
``datasets`` raises, the user gets one :class:`DataError` saying to pass a local folder and how to download one.
With ``HF_HUB_OFFLINE=1`` (or ``HF_DATASETS_OFFLINE=1``) no connection is tried and only the local cache is used.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Any
from urllib.parse import urlparse

from baldro.errors import DataError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
PROBE_TIMEOUT_S = 3.0


def looks_like_hub_id(source: str) -> bool:
    """``owner/name`` with no other slashes."""
    return bool(HUB_ID.match(source))


def _offline() -> bool:
    return any(
        os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on")
        for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def _reachable() -> bool:
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def unreachable(repo_id: str, why: str) -> DataError:
    """The one error for a hub dataset that cannot be loaded."""
    return DataError(
        f"cannot load '{repo_id}' from the Hugging Face hub ({why}); if it is a local folder it does not exist. "
        f"Pass a local folder instead, e.g. download it with: hf download --repo-type dataset {repo_id} --local-dir DIR"
    )


def _check_reachable(repo_id: str) -> None:
    if not _offline() and not _reachable():
        raise unreachable(repo_id, "hub not reachable from this machine")


def hub_config_names(repo_id: str) -> list[str]:
    """The dataset's config names on the hub."""
    import datasets

    _check_reachable(repo_id)
    try:
        return list(datasets.get_dataset_config_names(repo_id))
    except Exception as err:  # noqa: BLE001 - datasets raises many types (ConnectionError, FileNotFoundError, ...)
        raise unreachable(repo_id, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from err


def load_hub_rows(repo_id: str, config: str, split: str | None = None) -> list[dict[str, Any]]:
    """Rows of ``config`` (its ``split``, or its only/"train" split) as python dicts."""
    import datasets

    _check_reachable(repo_id)
    try:
        loaded = datasets.load_dataset(repo_id, config)
    except ValueError as err:
        raise DataError(f"{repo_id}: no config '{config}' on the hub ({str(err).splitlines()[0]})") from err
    except Exception as err:  # noqa: BLE001 - see hub_config_names
        raise unreachable(repo_id, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from err
    names = list(loaded.keys())
    if split is None:
        split = "train" if "train" in names or len(names) != 1 else names[0]
    if split not in names:
        raise DataError(f"{repo_id}: config '{config}' has no split '{split}' (it has: {', '.join(names)})")
    return [dict(r) for r in loaded[split]]
