"""Device plumbing shared by the benchmarks: one code path for CPU and CUDA.

* :func:`resolve_device` — ``auto`` → CUDA when available; asking for CUDA without one is one clear line, exit 2.
* :func:`sync` — ``torch.cuda.synchronize`` on CUDA before reading a clock (kernels are asynchronous), no-op on CPU.
* :class:`PeakMemory` — peak memory of a block: ``torch.cuda.max_memory_allocated`` after
  ``reset_peak_memory_stats`` on CUDA; on CPU the process RSS (``/proc/self/statm``) sampled every millisecond.
* :class:`FlopCounter` — model FLOPs of the forward passes run inside a block, counted with hooks: every token
  position the decoder runs on (padding included, one per row per generated token) costs 2·N_decoder FLOPs and every
  row the LM head projects costs 2·N_head, where N_decoder are the decoder's parameters less the input embedding (a
  lookup) and N_head the LM head's. Attention-score FLOPs (which grow with the context) are not counted, as in the
  6·N·D convention of Kaplan et al. (2020) and PaLM's MFU (Chowdhery et al., 2022, appendix B).
* :func:`matmul_params` — N of the 6·N·tokens (training) and 2·N·tokens (forward) estimates.
* :func:`peak_tflops` — dense bf16 tensor-core peak from a small table of data-centre GPUs (vendor data sheets),
  or ``--peak-tflops``; None on CPU unless given. MFU = achieved model FLOP/s ÷ peak FLOP/s.
"""

from __future__ import annotations

import resource
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import torch
from torch import nn

# Dense (no sparsity) bf16 peak TFLOP/s, first matching substring of torch.cuda.get_device_name wins.
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10G", 70.0),
    ("A10", 125.0),
)


def resolve_device(name: str) -> torch.device:
    """``auto`` → ``cuda`` when available, else ``cpu``; SystemExit(2) with one line if CUDA is asked but absent."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        _fail(f"--device {name}: not a device name; use auto, cpu, cuda or cuda:N")
    if device.type not in ("cpu", "cuda"):
        _fail(f"--device {name}: only cpu and cuda[:N] are supported")
    if device.type == "cuda" and not torch.cuda.is_available():
        _fail(f"--device {name}: no CUDA device is visible to torch {torch.__version__}; use --device cpu")
    return device


def _fail(message: str) -> NoReturn:
    print(message, file=sys.stderr)
    raise SystemExit(2)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rss_gib() -> float:
    """Resident set size of this process in GiB."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**30


class PeakMemory:
    """``with PeakMemory(device) as pm: ...`` then ``pm.gib``: CUDA max allocated, or the sampled CPU RSS peak."""

    def __init__(self, device: torch.device, interval_s: float = 0.001) -> None:
        self.device, self.interval_s = device, interval_s
        self.kind = "cuda_max_memory_allocated" if device.type == "cuda" else "cpu_rss"
        self.gib = 0.0
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._done.is_set():
            self.gib = max(self.gib, rss_gib())
            time.sleep(self.interval_s)

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            sync(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.gib = rss_gib()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            sync(self.device)
            self.gib = torch.cuda.max_memory_allocated(self.device) / 2**30
        else:
            self._done.set()
            assert self._thread is not None
            self._thread.join()
            self.gib = max(self.gib, rss_gib())


def _input_embedding(model: nn.Module) -> nn.Module | None:
    get = getattr(model, "get_input_embeddings", None)
    return get() if callable(get) else None


def _output_embedding(model: nn.Module) -> nn.Module | None:
    get = getattr(model, "get_output_embeddings", None)
    return get() if callable(get) else None


def _numel(params: Any) -> int:
    return sum(p.numel() for p in params)


def matmul_params(model: nn.Module) -> int:
    """Parameters that take part in a matrix product per token: all, less an input embedding not tied to the head."""
    emb, head = _input_embedding(model), _output_embedding(model)
    total = _numel({id(p): p for p in model.parameters()}.values())
    if emb is not None and (head is None or emb.weight is not head.weight):
        total -= emb.weight.numel()
    return total


class FlopCounter:
    """Forward model FLOPs run inside ``with FlopCounter(model) as fc: ...`` (see the module docstring)."""

    def __init__(self, model: nn.Module) -> None:
        get_decoder = getattr(model, "get_decoder", None)
        self.decoder = get_decoder() if callable(get_decoder) else model
        self.head = _output_embedding(model)
        emb = _input_embedding(model)
        self.n_decoder = _numel(self.decoder.parameters()) - (emb.weight.numel() if emb is not None else 0)
        self.n_head = _numel(self.head.parameters()) if self.head is not None else 0
        self.tokens = 0  # decoder token positions
        self.head_rows = 0  # LM-head rows
        self._handles: list[Any] = []

    @property
    def flops(self) -> int:
        return 2 * (self.n_decoder * self.tokens + self.n_head * self.head_rows)

    def _count_decoder(self, _module: nn.Module, args: tuple, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            ids = kwargs["inputs_embeds"][..., 0]
        self.tokens += ids.numel()

    def _count_head(self, _module: nn.Module, args: tuple) -> None:
        self.head_rows += args[0].numel() // args[0].shape[-1]

    def __enter__(self) -> FlopCounter:
        self._handles.append(self.decoder.register_forward_pre_hook(self._count_decoder, with_kwargs=True))
        if self.head is not None:
            self._handles.append(self.head.register_forward_pre_hook(self._count_head))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


def peak_tflops(device: torch.device, override: float | None = None) -> float | None:
    """``override`` if given; on CUDA the table value for the device name (None if not listed); None on CPU."""
    if override is not None:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS if k in name), None)


def mfu(flops: float, seconds: float, peak: float | None) -> float | None:
    """Model FLOPs utilisation: (flops / seconds) / (peak TFLOP/s · 1e12); None without a peak."""
    return None if peak is None or seconds <= 0 else flops / seconds / (peak * 1e12)


@contextmanager
def timed(device: torch.device) -> Iterator[dict[str, float]]:
    """``with timed(device) as t: ...`` then ``t["s"]`` (wall) and ``t["cpu_s"]``, synchronised on CUDA."""
    out: dict[str, float] = {}
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    yield out
    sync(device)
    out["s"], out["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
