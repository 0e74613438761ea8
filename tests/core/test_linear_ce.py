"""The fused LM head + cross-entropy against ``F.cross_entropy(head(h).float())``: values, gradients, chunking, the
no-grad buffer, skipped zero-gradient tokens, and when it refuses a head."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from baldro.core.linear_ce import fusable_head, linear_cross_entropy, nonzero_runs
from baldro.core.lm_head import LogitHead

N, H, V = 13, 8, 37


def _case(dtype=torch.float32, bias=False, seed=0, scale=1.0):
    torch.manual_seed(seed)
    head = nn.Linear(H, V, bias=bias).to(dtype)
    with torch.no_grad():
        head.weight.mul_(scale)
    hidden = torch.randn(N, H, dtype=dtype, requires_grad=True)
    targets = torch.randint(0, V, (N,))
    upstream = torch.randn(N)
    return head, hidden, targets, upstream


def _grads(head, hidden, loss):
    params = [hidden, head.weight] + ([head.bias] if head.bias is not None else [])
    return torch.autograd.grad(loss, params)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("chunk", [1, 5, 1024])
def test_values_and_gradients_match_the_generic_path(dtype, bias, chunk):
    head, hidden, targets, upstream = _case(dtype, bias)
    generic = F.cross_entropy(head(hidden).float(), targets, reduction="none")
    fused = linear_cross_entropy(hidden, head.weight, head.bias, targets, chunk)
    assert fused.dtype == torch.float32 and fused.shape == (N,)
    torch.testing.assert_close(fused, generic, rtol=1e-6, atol=1e-6)
    for a, b in zip(_grads(head, hidden, (fused * upstream).sum()), _grads(head, hidden, (generic * upstream).sum())):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_large_logits_and_underflowing_probabilities_stay_exact():
    head, hidden, targets, upstream = _case(scale=400.0)  # logits of order 1e3: exp() overflows without the shift
    generic = F.cross_entropy(head(hidden).float(), targets, reduction="none")
    fused = linear_cross_entropy(hidden, head.weight, None, targets)
    assert float(generic.detach().max()) > 200  # some targets have probability far below float32's smallest number
    torch.testing.assert_close(fused, generic, rtol=1e-6, atol=1e-4)
    assert torch.isfinite(torch.stack([g.abs().sum() for g in _grads(head, hidden, (fused * upstream).sum())])).all()


@pytest.mark.parametrize("chunk", [3, 1024])
def test_no_grad_path_reuses_one_buffer_and_gives_the_autograd_paths_bits(chunk):
    head, hidden, targets, _ = _case(bias=True)
    with torch.no_grad():
        generic = F.cross_entropy(head(hidden).float(), targets, reduction="none")
        fused = linear_cross_entropy(hidden, head.weight, head.bias, targets, chunk)
    assert not fused.requires_grad
    torch.testing.assert_close(fused, generic, rtol=1e-6, atol=1e-6)
    with_grad = linear_cross_entropy(hidden, head.weight, head.bias, targets, chunk)
    assert with_grad.requires_grad and torch.equal(with_grad.detach(), fused)  # cache = training step at lr 0


def test_bfloat16_head_upcasts_like_the_generic_path():
    head, hidden, targets, upstream = _case(torch.bfloat16)
    generic = F.cross_entropy(head(hidden).float(), targets, reduction="none")
    fused = linear_cross_entropy(hidden, head.weight, None, targets, 4)
    torch.testing.assert_close(fused, generic, rtol=1e-6, atol=1e-6)  # same bf16 logits, same float32 math
    for a, b in zip(_grads(head, hidden, (fused * upstream).sum()), _grads(head, hidden, (generic * upstream).sum())):
        assert a.dtype == b.dtype == torch.bfloat16
        torch.testing.assert_close(a.float(), b.float(), rtol=2e-2, atol=2e-2)  # bf16 rounding of the chunk sums


class _CountMatmuls(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in (torch.ops.aten.mm, torch.ops.aten.addmm, torch.ops.aten.addmm_):
            self.count += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("chunk", [5, 1024])
def test_tokens_with_zero_gradient_cost_no_matrix_product(chunk):
    torch.manual_seed(3)
    head = nn.Linear(H, V, bias=False)
    hidden = torch.randn(60, H, requires_grad=True)
    targets, upstream = torch.randint(0, V, (60,)), torch.randn(60)
    upstream[10:40] = 0.0  # e.g. the tokens of rows BalDRO-G drops
    fused = linear_cross_entropy(hidden, head.weight, None, targets, chunk)
    with _CountMatmuls() as counter:
        got = _grads(head, hidden, (fused * upstream).sum())
    # two products per range with a gradient: tokens 0-9 and 40-59 (chunk 1024), or chunks 0-1 and 8-11 (chunk 5)
    assert counter.count == (4 if chunk == 1024 else 12)
    generic = F.cross_entropy(head(hidden).float(), targets, reduction="none")
    for a, b in zip(got, _grads(head, hidden, (generic * upstream).sum())):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert float(got[0][10:40].abs().max()) == 0.0


def test_nonzero_runs_merge_short_gaps():
    values = torch.tensor([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0])
    assert nonzero_runs(values, min_gap=3) == [(1, 6), (11, 12)]
    assert nonzero_runs(values, min_gap=10) == [(1, 12)]
    assert nonzero_runs(torch.zeros(4)) == []


def test_fusable_head_takes_only_a_plain_hook_free_linear():
    plain = nn.Linear(H, V, bias=False)
    assert fusable_head(plain) is plain

    class Sub(nn.Linear):
        pass

    assert fusable_head(Sub(H, V)) is None  # e.g. a PEFT or quantised linear: its forward may differ
    hooked = nn.Linear(H, V)
    hooked.register_forward_pre_hook(lambda *_: None)  # e.g. DeepSpeed ZeRO-3 gathering its weight
    assert fusable_head(hooked) is None
    assert fusable_head(LogitHead(nn.Module(), plain, lambda _m, z: z)) is None  # post-processed logits
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert fusable_head(plain) is None
