"""Gamma-Gamma model of the value of a customer's orders.

Fader & Hardie (2013), "The Gamma-Gamma model of monetary value": each
order's value is Gamma(p, nu) around a customer's mean, with
nu ~ Gamma(q, v) across customers. Fitted on customers with at least one
repeat purchase, from `frequency` (x) and `monetary_value` (the mean value
of their repeat purchase occasions). It assumes spend does not depend on
how often a customer buys; `frequency_value_correlation_` reports how far
the data departs from that.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy.special import digamma, gammaln

from regulars.errors import FitError, InputError
from regulars.models.base import Model, columns_of
from regulars.models.count import MIN_REPEATERS

__all__ = ["GammaGammaModel"]


class GammaGammaModel(Model):
    """Gamma-Gamma spend model; parameters p, q, v."""

    name = "Gamma-Gamma"
    param_names = ("p", "q", "v")
    required: ClassVar[tuple[str, ...]] = ("frequency", "monetary_value")
    analytic_gradient = True

    def __init__(self) -> None:
        super().__init__()
        self.frequency_value_correlation_: float = float("nan")

    def _prepare(self, cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        keep = cols["frequency"] > 0
        if np.any(cols["monetary_value"][keep] <= 0):
            raise InputError(
                "monetary_value must be more than 0 for customers with repeat purchases.",
                hint="Leave out customers whose repeat orders were free or fully "
                "refunded, or fit on gross values.",
            )
        out = {k: cols[k][keep] for k in self.required}
        if "weight" in cols:
            cols["weight"] = cols["weight"][keep]
        return out

    def _check(self, data: dict[str, np.ndarray], weight: np.ndarray) -> None:
        n = float(weight.sum())
        if n < MIN_REPEATERS:
            raise FitError(
                f"only {n:g} customers made a repeat purchase; the Gamma-Gamma model "
                f"needs at least {MIN_REPEATERS}.",
                hint="Use a longer history so that repeat order values can be seen.",
            )
        if np.unique(data["monetary_value"]).size < 2:
            raise FitError(
                "every repeat order has the same value, so there is no spread to model.",
                hint="Use the store's average order value as the value of an order instead.",
            )

    def fit(self, summary: Any) -> GammaGammaModel:
        super().fit(summary)
        cols = columns_of(summary, self.required)
        keep = cols["frequency"] > 0
        if keep.sum() > 2:
            self.frequency_value_correlation_ = float(
                np.corrcoef(cols["frequency"][keep], cols["monetary_value"][keep])[0, 1]
            )
        return self

    def _log_likelihood(
        self, params: np.ndarray, data: dict[str, np.ndarray]
    ) -> np.ndarray:
        p, q, v = params
        x, m = data["frequency"], data["monetary_value"]
        px = p * x
        return (
            gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v)
            + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * np.log(x * m + v)
        )  # fmt: skip

    def _log_likelihood_and_gradient(
        self, params: np.ndarray, data: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        p, q, v = params
        x, m = data["frequency"], data["monetary_value"]
        px = p * x
        log_xmv = np.log(x * m + v)
        psi = digamma(px + q)
        d_p = x * (psi - digamma(px) + np.log(m) + np.log(x) - log_xmv)
        d_q = psi - digamma(q) + np.log(v) - log_xmv
        d_v = q / v - (px + q) / (x * m + v)
        return self._log_likelihood(params, data), np.vstack([d_p, d_q, d_v])

    def expected_order_value(self, summary: Any) -> np.ndarray:
        """Expected value of each customer's future orders, per row.

        Customers without repeat purchases get the population mean p v / (q - 1).
        """
        p, q, v = self._require_fit()
        if q <= 1:
            raise FitError(
                f"the fitted q = {q:.3g} is at most 1, so the mean order value is not "
                "defined under this model.",
                hint="Use the store's average order value instead.",
            )
        cols = columns_of(summary, self.required)
        x = cols["frequency"]
        m = np.where(x > 0, cols["monetary_value"], 0.0)
        return p * (v + x * m) / (p * x + q - 1)
