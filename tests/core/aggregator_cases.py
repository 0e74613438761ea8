"""Shared inputs of the aggregator tests: a batch of losses with a negative and a zero, and one aggregation with its
gradient."""

from __future__ import annotations

import torch

from baldro import aggregators

LOSSES = [0.3, 2.5, -1.0, 1.7, 0.9, 4.2, 0.0]


def run(name: str, losses, dtype=torch.float64, **params):
    x = torch.tensor(losses, dtype=dtype, requires_grad=True)
    value, weights = aggregators.build(name, **params)(x)
    (grad,) = torch.autograd.grad(value, x)
    return x, value.detach(), weights, grad
