"""Interval estimates shared by insights and flow reports.

- `welch`: difference of two means from sums and sums of squares, Welch's
  t-test and its 95% interval.
- `wilson`: the Wilson score interval of one proportion.
- `newcombe`: the difference of two proportions with Newcombe's hybrid score
  interval (method 10 of Newcombe 1998), built from the two Wilson intervals;
  unlike the Wald interval it stays inside [-1, 1] and keeps its coverage
  when a rate is near 0 or the groups are small, as holdouts are.
- `holm`: p-values adjusted for reading several tests together
  (Holm-Bonferroni), as the flows report reads its flows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["Z95", "holm", "newcombe", "normal_p", "two_proportion_p", "welch", "wilson"]

#: The standard normal's 97.5% quantile: half-width of a 95% interval in SEs.
Z95 = 1.959963984540054


def normal_p(z: float) -> float:
    """Two-sided p-value of a standard normal statistic `z`."""
    from scipy import special

    # Upper tail of the standard normal: 1 - ndtr(z) = ndtr(-z); scipy.special
    # gives the values of scipy.stats.norm without its seconds-long import.
    return float(2 * special.ndtr(-abs(z)))


def welch(
    s1: float, ss1: float, n1: int, s2: float, ss2: float, n2: int
) -> tuple[float, float, float, float, float]:
    """Means of two groups from their sums `s` and sums of squares `ss`: returns
    (mean 1, mean 2, p-value, 95% low, 95% high) of mean 1 - mean 2."""
    from scipy import special

    m1, m2 = s1 / n1, s2 / n2
    v1 = max((ss1 - n1 * m1 * m1) / (n1 - 1), 0.0) if n1 > 1 else 0.0
    v2 = max((ss2 - n2 * m2 * m2) / (n2 - 1), 0.0) if n2 > 1 else 0.0
    se = math.sqrt(v1 / n1 + v2 / n2)
    if se == 0 or n1 < 2 or n2 < 2:
        return m1, m2, 1.0, m1 - m2, m1 - m2
    dof = (v1 / n1 + v2 / n2) ** 2 / (
        (v1 / n1) ** 2 / (n1 - 1) + (v2 / n2) ** 2 / (n2 - 1)
    )
    t = (m1 - m2) / se
    # Student's t by its distribution functions in scipy.special: the same
    # values as scipy.stats.t.sf/ppf, without importing scipy.stats (seconds).
    p = 2 * float(special.stdtr(dof, -abs(t)))
    half = float(special.stdtrit(dof, 0.975)) * se
    return m1, m2, p, m1 - m2 - half, m1 - m2 + half


def wilson(x: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of the proportion x / n."""
    if n == 0:
        return 0.0, 1.0
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float, float]:
    """x1/n1 - x2/n2 with its 95% Newcombe hybrid score interval: (difference, low, high)."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1)
    l2, u2 = wilson(x2, n2)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, low, high


def two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test."""
    pooled = (x1 + x2) / (n1 + n2)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se0 == 0:
        return 1.0
    return normal_p((x1 / n1 - x2 / n2) / se0)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order.

    With m tests sorted by p, the k-th smallest is multiplied by m - k + 1,
    capped at 1 and raised to the adjusted value before it. Reading every
    adjusted p against 0.05, the chance that any test without an effect
    shows one stays under 5% (Holm 1979, Scand. J. Statist. 6:65), whatever
    the tests' dependence; it rejects all Bonferroni does, and more.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * p_values[i]))
        adjusted[i] = running
    return adjusted
