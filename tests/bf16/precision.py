"""The precision model the bf16 suite's tolerances come from, in one place.

bfloat16 keeps 8 significant bits (7 stored + the implicit one) and float32's 8-bit exponent: rounding a number to
bf16 changes it by at most the unit roundoff ``U = 2**-8`` (≈ 3.9e-3) relative. Under CPU autocast every matrix
product rounds its two inputs to bf16 and accumulates in float32, so each product carries a relative error of order
U; the roundings of different entries are independent and largely cancel in sums, which is why a quantity computed
through a whole (tiny) model still differs from float32 by about U, not by (number of products) × U. A model *stored*
in bf16 (``model.dtype: bfloat16``, as the real configs train and open-unlearning evaluates) adds its activations and
gradients stored in bf16: about one more U. Everything after the forward — the LM head of the lean path, the
per-sample losses, the aggregator, the reference log-likelihoods — must run in float32: those are compared with a
float32 recomputation at float32's own precision (``FLOAT32_REL``), so that bf16 arithmetic leaking into the loss
algebra is caught even where it hides inside the forward's noise.

Each comparison is two-sided: the difference must be *positive* (bf16 really ran: a float32-only code path, e.g. an
autocast that never applied, gives exactly 0) and below the bound (a dtype mismatch, a lost scale or a quantity
kept in bf16 exceeds it).
"""

from __future__ import annotations

import torch
from torch import Tensor

U = 2.0**-8  # bf16 unit roundoff: 8 significant bits, round to nearest
FLOAT32_REL = 1e-5  # float32 arithmetic only (unit roundoff 2**-24 ≈ 6e-8), over sums of a few hundred terms


def relative_l2(got: Tensor, want: Tensor) -> float:
    """‖got − want‖₂ / ‖want‖₂ in float64."""
    got, want = got.detach().double().flatten(), want.detach().double().flatten()
    return float((got - want).norm() / want.norm())


def max_relative(got: Tensor, want: Tensor) -> float:
    """max_i |got_i − want_i| / |want_i| in float64."""
    got, want = got.detach().double().flatten(), want.detach().double().flatten()
    return float(((got - want).abs() / want.abs()).max())


def assert_bf16_close(error: float, bound: float, what: str) -> None:
    """0 < error ≤ bound (see the module docstring), with the error in units of U in the message."""
    assert error > 0, f"{what}: identical to float32 — bf16 never ran on this path (a float32-only code path?)"
    assert error <= bound, f"{what}: relative error {error:.3g} = {error / U:.3g} U exceeds {bound / U:.3g} U"


def grads_vector(grads: dict[str, Tensor]) -> Tensor:
    return torch.cat([grads[k].detach().double().flatten() for k in sorted(grads)])
