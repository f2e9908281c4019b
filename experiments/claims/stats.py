"""Paired comparisons of two variants over seeds, and the power of the paired t-test.

Two variants trained with the same seeds (same data, crop order and initialisation draw) are
compared seed by seed: ``d_i = a_i - b_i``. Reported: the mean difference with its 95 % t
confidence interval, the standardised effect ``d_z = mean / sd``, the two-sided paired t-test
(:func:`scipy.stats.ttest_rel`) and the exact two-sided Wilcoxon signed-rank test
(:func:`scipy.stats.wilcoxon`, ``method="exact"``; with n = 6 its smallest p-value is 2/64 = 0.031,
with n = 5 it is 0.0625: it cannot reach 0.05 below 6 seeds).

Power of the two-sided paired t-test at level alpha for a true standardised effect ``d_z`` and n
pairs: the statistic follows a non-central t with n - 1 degrees of freedom and non-centrality
``d_z sqrt(n)`` (:func:`power`, :func:`scipy.stats.nct`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

ALPHA = 0.05


@dataclass(frozen=True)
class Paired:
    """The paired comparison ``a - b`` (module docstring); NaN where undefined (n < 2, zero spread)."""

    differences: tuple
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    t_statistic: float
    t_p: float
    wilcoxon_statistic: float
    wilcoxon_p: float
    wins: int

    @property
    def n(self) -> int:
        return len(self.differences)

    @property
    def effect(self) -> float:
        """Standardised effect ``d_z = mean / sd`` of the differences."""
        return self.mean / self.sd if self.sd > 0 else float("nan")


def paired(a: Sequence[float], b: Sequence[float]) -> Paired:
    """Compare ``a`` and ``b`` (equal length, paired by position)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired comparison needs equal lengths, got {a.shape} and {b.shape}")
    d = a - b
    n = d.size
    mean = float(d.mean()) if n else float("nan")
    sd = float(d.std(ddof=1)) if n > 1 else float("nan")
    nan = float("nan")
    t_stat = t_p = low = high = nan
    if n > 1 and sd > 0:
        result = stats.ttest_rel(a, b)
        t_stat, t_p = float(result.statistic), float(result.pvalue)
        half = float(stats.t.ppf(1 - ALPHA / 2, n - 1)) * sd / math.sqrt(n)
        low, high = mean - half, mean + half
    w_stat = w_p = nan
    if n > 1 and np.any(d != 0):
        result = stats.wilcoxon(a, b, alternative="two-sided", method="exact", zero_method="wilcox")
        w_stat, w_p = float(result.statistic), float(result.pvalue)
    return Paired(tuple(float(v) for v in d), mean, sd, low, high, t_stat, t_p, w_stat, w_p, int(np.sum(d > 0)))


def power(effect: float, n: int, alpha: float = ALPHA) -> float:
    """Power of the two-sided paired t-test with ``n`` pairs for a true standardised effect ``effect``."""
    if n < 2 or not math.isfinite(effect):
        return float("nan")
    df = n - 1
    critical = stats.t.ppf(1 - alpha / 2, df)
    shift = effect * math.sqrt(n)
    with np.errstate(invalid="ignore", divide="ignore"):  # Boost's nct at df = 2 warns, its clipped values hold
        return float(stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift))


def seeds_for_power(effect: float, target: float = 0.8, alpha: float = ALPHA, limit: int = 100) -> int:
    """The smallest n (>= 3) whose :func:`power` reaches ``target`` (``limit + 1`` if none up to ``limit``)."""
    for n in range(3, limit + 1):
        if power(effect, n, alpha) >= target:
            return n
    return limit + 1
