"""The bf16 suite: every test here runs a real code path under bf16 (CPU autocast, or a model stored in bf16 as the
real configs and open-unlearning's evaluation have it) and compares it with float32 at a tolerance stated with its
reason (:mod:`tests.bf16.precision`). Marked ``bf16``: ``pytest -m bf16`` runs only these; the default run includes
them (seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.bf16)
