"""The README's generated config reference is current, and its "add your own aggregator" snippet works as shown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from baldro import aggregators
from baldro.aggregators.base import AGGREGATORS
from baldro.reference_doc import config_reference

README = Path(__file__).resolve().parents[1] / "README.md"


def test_config_reference_section_matches_the_code() -> None:
    text = README.read_text()
    section = re.search(r"<!-- config-reference -->\n(.*?)\n<!-- /config-reference -->", text, re.S)
    assert section is not None, "README.md lost its config-reference markers"
    assert section.group(1) == config_reference(), "regenerate it: python -m baldro.reference_doc"


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
