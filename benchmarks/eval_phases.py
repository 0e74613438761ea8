"""Per-phase CPU time and forward FLOPs of an evaluation: where ``eval_bench.py``'s two evaluators spend their time.

:class:`PhaseClock` wraps named functions (``patch``) so that every call charges the CPU time (``time.process_time``)
and the forward FLOPs (from a :class:`bench_device.FlopCounter`) spent inside it to a phase. Charging is exclusive:
a phase entered inside another (e.g. tokenising inside scoring) takes its own share out of the outer one, so the
phases add up to the measured total; what no wrapped function covers is ``other``.

Phases (``eval_bench.py --phases``):

* ours: ``tokenise`` (``TofuScorer.encode`` / ``encode_variants``, ``encode_prompt``), ``score`` (``score_prefixed``, ``score_sequences``),
  ``decode`` (``generate_greedy``, detokenising its output included), ``rouge`` (``RougeScorer.score``);
* anchor: ``tokenise`` (``_tokenise``), ``score`` (its probability, extraction-strength and Min-K% handlers, the
  forward pass included), ``decode`` (``model.generate``), ``rouge`` (``RougeScorer.score``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

_MISSING = object()


class PhaseClock:
    """Exclusive CPU seconds and forward FLOPs per phase; ``flops`` is a callable returning the FLOPs counted so far."""

    def __init__(self, flops: Callable[[], int] = lambda: 0) -> None:
        self._flops = flops
        self.cpu_s: dict[str, float] = {}
        self.tflop: dict[str, float] = {}
        self._stack: list[str] = ["other"]
        self._mark = (time.process_time(), flops())
        self._patched: list[tuple[Any, str, Any]] = []

    def _charge(self) -> None:
        now = (time.process_time(), self._flops())
        top = self._stack[-1]
        self.cpu_s[top] = self.cpu_s.get(top, 0.0) + now[0] - self._mark[0]
        self.tflop[top] = self.tflop.get(top, 0.0) + (now[1] - self._mark[1]) / 1e12
        self._mark = now

    def wrap(self, phase: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            self._charge()
            self._stack.append(phase)
            try:
                return fn(*args, **kwargs)
            finally:
                self._charge()
                self._stack.pop()

        return timed_call

    def patch(self, owner: Any, name: str, phase: str) -> None:
        """Replace ``owner.name`` by its timed version until :meth:`restore`."""
        own = vars(owner).get(name, _MISSING)  # what the owner itself holds (a bound method lives on the class)
        self._patched.append((owner, name, own))
        setattr(owner, name, self.wrap(phase, getattr(owner, name)))

    def restore(self) -> None:
        for owner, name, own in reversed(self._patched):
            if own is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, own)
        self._patched.clear()

    def __enter__(self) -> PhaseClock:
        self._stack, self.cpu_s, self.tflop = ["other"], {}, {}
        self._mark = (time.process_time(), self._flops())
        return self

    def __exit__(self, *exc: object) -> None:
        self._charge()

    def report(self) -> dict[str, dict[str, float]]:
        return {p: {"cpu_s": round(self.cpu_s[p], 3), "tflop": round(self.tflop.get(p, 0.0), 6)}
                for p in sorted(self.cpu_s, key=lambda p: -self.cpu_s[p])}


def patch_ours(clock: PhaseClock) -> None:
    """Time baldro's evaluator by phase (see the module docstring)."""
    from rouge_score import rouge_scorer

    from baldro.evaluation import tofu_scorer

    clock.patch(tofu_scorer.TofuScorer, "encode", "tokenise")
    clock.patch(tofu_scorer.TofuScorer, "encode_variants", "tokenise")
    clock.patch(tofu_scorer, "encode_prompt", "tokenise")
    clock.patch(tofu_scorer, "score_prefixed", "score")
    clock.patch(tofu_scorer, "score_sequences", "score")
    clock.patch(tofu_scorer, "generate_greedy", "decode")
    clock.patch(rouge_scorer.RougeScorer, "score", "rouge")


def patch_anchor(clock: PhaseClock, anchor: Any) -> None:
    """Time the anchor (an ``ou_anchor.OpenUnlearningTofu``) by phase (see the module docstring)."""
    from rouge_score import rouge_scorer

    clock.patch(anchor, "_tokenise", "tokenise")
    for name in ("_probability", "_extraction_strength", "_min_k"):
        clock.patch(anchor, name, "score")
    clock.patch(anchor.model, "generate", "decode")
    clock.patch(rouge_scorer.RougeScorer, "score", "rouge")
