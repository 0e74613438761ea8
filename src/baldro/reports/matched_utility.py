"""Matched-utility comparison of unlearning runs (issue 11; protocol in docs/evidence_protocol.md).

Per run (one ``trajectory.jsonl``): the best Forget Quality among the evaluated steps whose Model Utility keeps
``MU ≥ mu_keep · MU_target`` (default ``mu_keep`` = 0.9), the first step reaching it, and the FQ at the end. Step 0
(the target model) is a candidate, so "matched FQ" is never below doing nothing; a run none of whose steps keeps the
utility (possible when step 0 is not logged or is below the bar on an item subset) has ``reached = False`` and NaN.

Across seeds: the mean and a seeded percentile-bootstrap 95 % interval of the mean (``scipy.stats.bootstrap``;
undefined for n = 1). Method vs its base, paired by seed: the exact sign test (``scipy.stats.binomtest``, zero
differences dropped) and the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, zero differences dropped, exact
permutation distribution, which is right with tied |differences|); the headline p-value is Wilcoxon's from 6
non-zero pairs on (the first n at which an exact two-sided p < 0.05 is possible) and the sign test's below that or
when every pair ties.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from baldro.errors import DataError

MU_KEEP = 0.9
CONFIDENCE = 0.95
WILCOXON_MIN_PAIRS = 6
BAR_TOLERANCE = 1e-12  # MU equal to the bar up to float rounding (0.75 · 0.8 = 0.6000000000000001) counts
EXACT_MAX_PAIRS = 16  # up to 2**16 sign flips enumerated; beyond that scipy's default (normal approximation)


@dataclass(frozen=True)
class Matched:
    """One run's matched-utility result; ``best_fq`` is NaN and ``step`` None when ``reached`` is False."""

    best_fq: float
    step: int | None
    reached: bool
    final_fq: float
    final_mu: float
    threshold: float


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def matched_fq(trajectory: Sequence[Mapping[str, Any]], target_mu: float, mu_keep: float = MU_KEEP) -> Matched:
    """Best FQ over rows with ``model_utility ≥ mu_keep · target_mu`` (earliest step on ties), and the final FQ.

    Rows without a numeric FQ and MU are ignored; a trajectory with none raises :class:`DataError`. A target MU of 0
    (a model with no utility to keep, e.g. a smoke-sized run) puts the bar at 0: every step qualifies.
    """
    if not _finite(target_mu) or target_mu < 0:
        raise DataError(f"target model utility must be a number >= 0, got {target_mu!r}")
    if not 0 < mu_keep <= 1:
        raise DataError(f"mu_keep={mu_keep!r} must be in (0, 1]")
    rows = sorted(
        (r for r in trajectory if _finite(r.get("forget_quality")) and _finite(r.get("model_utility"))),
        key=lambda r: int(r["step"]),
    )
    if not rows:
        raise DataError("the trajectory has no row with numeric forget_quality and model_utility; set eval.retain_logs")
    threshold = mu_keep * float(target_mu)
    best: Mapping[str, Any] | None = None
    for row in rows:
        if row["model_utility"] >= threshold - BAR_TOLERANCE and (best is None or row["forget_quality"] > best["forget_quality"]):
            best = row
    last = rows[-1]
    return Matched(
        best_fq=float(best["forget_quality"]) if best else math.nan,
        step=int(best["step"]) if best else None,
        reached=best is not None,
        final_fq=float(last["forget_quality"]),
        final_mu=float(last["model_utility"]),
        threshold=threshold,
    )


@dataclass(frozen=True)
class Interval:
    """Mean of the finite values with a bootstrap interval; ``low``/``high`` NaN and ``note`` set when undefined."""

    n: int
    n_missing: int
    mean: float
    low: float
    high: float
    note: str = ""


def bootstrap_mean(
    values: Sequence[float], confidence: float = CONFIDENCE, n_resamples: int = 9999, seed: int = 0
) -> Interval:
    """Mean and seeded percentile-bootstrap interval of the mean; NaN values (runs that never kept the utility)
    are left out and counted in ``n_missing``."""
    arr = np.asarray([v for v in values if _finite(v)], dtype=np.float64)
    missing = len(values) - arr.size
    if arr.size == 0:
        return Interval(0, missing, math.nan, math.nan, math.nan, "no run reached the utility bar")
    mean = float(arr.mean())
    if arr.size == 1:
        return Interval(1, missing, mean, math.nan, math.nan, "n = 1: interval undefined")
    if np.all(arr == arr[0]):
        return Interval(arr.size, missing, mean, mean, mean, "all values equal")
    res = stats.bootstrap(
        (arr,), np.mean, n_resamples=n_resamples, confidence_level=confidence, method="percentile",
        rng=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return Interval(arr.size, missing, mean, float(ci.low), float(ci.high))


@dataclass(frozen=True)
class Paired:
    """A method vs its base over the seeds both have (finite values only)."""

    seeds: list[Any]
    n_positive: int
    n_negative: int
    n_ties: int
    mean_difference: float
    median_difference: float
    sign_p: float
    wilcoxon_p: float
    test: str
    p_value: float
    note: str = ""


def paired_test(method: Mapping[Any, float], base: Mapping[Any, float]) -> Paired:
    """Method − base per shared seed: exact sign test and exact Wilcoxon signed-rank (zeros dropped), see module."""
    seeds = sorted(s for s in method if s in base and _finite(method[s]) and _finite(base[s]))
    diffs = np.asarray([method[s] - base[s] for s in seeds], dtype=np.float64)
    pos, neg = int((diffs > 0).sum()), int((diffs < 0).sum())
    ties = len(seeds) - pos - neg
    nonzero = diffs[diffs != 0]
    sign_p = float(stats.binomtest(pos, pos + neg, 0.5).pvalue) if pos + neg else 1.0
    if nonzero.size == 1:
        wilcoxon_p = 1.0  # two equally likely signs: the exact two-sided p is 1 (scipy needs two observations)
    elif nonzero.size:
        method_arg: Any = stats.PermutationMethod(n_resamples=2**nonzero.size) if nonzero.size <= EXACT_MAX_PAIRS else "auto"
        wilcoxon_p = float(stats.wilcoxon(nonzero, method=method_arg).pvalue)
    else:
        wilcoxon_p = math.nan
    notes = []
    if not seeds:
        notes.append("no shared seed")
    elif nonzero.size == 0:
        notes.append("every pair ties: Wilcoxon undefined, sign test p = 1")
    if nonzero.size >= WILCOXON_MIN_PAIRS:
        test, p = "wilcoxon", wilcoxon_p
    else:
        test, p = "sign", sign_p
        if nonzero.size:
            notes.append(f"{nonzero.size} non-tied pairs < {WILCOXON_MIN_PAIRS}: exact sign test")
    return Paired(
        seeds=seeds,
        n_positive=pos,
        n_negative=neg,
        n_ties=ties,
        mean_difference=float(diffs.mean()) if diffs.size else math.nan,
        median_difference=float(np.median(diffs)) if diffs.size else math.nan,
        sign_p=sign_p,
        wilcoxon_p=wilcoxon_p,
        test=test,
        p_value=p,
        note="; ".join(notes),
    )


@dataclass
class MethodResult:
    """The headline row of one method: per-seed matched and final FQ, their intervals, the test against its base."""

    method: str
    per_seed: dict[Any, Matched]
    matched: Interval
    final: Interval
    base: str | None = None
    vs_base: Paired | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def compare(
    runs: Mapping[str, Mapping[Any, Sequence[Mapping[str, Any]]]],
    target_mu: float,
    bases: Mapping[str, str] | None = None,
    mu_keep: float = MU_KEEP,
    seed: int = 0,
) -> dict[str, MethodResult]:
    """``runs[method][seed]`` = a trajectory → one :class:`MethodResult` per method; ``bases[method]`` names the
    method it is tested against (paired by seed on the matched FQ)."""
    out: dict[str, MethodResult] = {}
    for method, by_seed in runs.items():
        per_seed = {s: matched_fq(rows, target_mu, mu_keep) for s, rows in by_seed.items()}
        out[method] = MethodResult(
            method=method,
            per_seed=per_seed,
            matched=bootstrap_mean([m.best_fq for m in per_seed.values()], seed=seed),
            final=bootstrap_mean([m.final_fq for m in per_seed.values()], seed=seed),
        )
    for method, base in (bases or {}).items():
        if method not in out:
            continue
        if base not in out:
            raise DataError(f"method {method!r} is compared with {base!r}, which has no runs")
        out[method].base = base
        out[method].vs_base = paired_test(
            {s: m.best_fq for s, m in out[method].per_seed.items()},
            {s: m.best_fq for s, m in out[base].per_seed.items()},
        )
    return out
