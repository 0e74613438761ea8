"""The generated config reference (docs/config.md) is current, and the README's "add your own aggregator" snippet
works as shown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from baldro import aggregators
from baldro.aggregators.base import AGGREGATORS
from baldro.reference_doc import config_reference

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_config_reference_matches_the_code() -> None:
    text = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert text == config_reference(), "regenerate it: make docs"


def test_add_your_own_aggregator_snippet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AGGREGATORS, "_classes", dict(AGGREGATORS._classes))
    snippet = re.search(r"```python\n(# src/baldro/aggregators/mean_max.py\n.*?)```", README.read_text(), re.S)
    assert snippet is not None
    exec(compile(snippet.group(1), "README-snippet", "exec"), {})
    agg = aggregators.build("mean_max", eps=0.3)
    losses = torch.tensor([1.0, 4.0, 2.0], requires_grad=True)
    value, weights = agg(losses)
    (grad,) = torch.autograd.grad(value, losses)
    assert value.item() == pytest.approx(0.7 * 7 / 3 + 0.3 * 4)
    assert torch.allclose(weights, grad) and weights.sum().item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="allowed parameters: eps"):
        aggregators.build("mean_max", beta=1.0)
