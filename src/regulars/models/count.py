"""Purchase-count models: BG/NBD, modified BG/NBD and Pareto/NBD.

Each takes a per-customer summary in one time unit (days or weeks):
`frequency` (x, repeat purchase occasions), `recency` (t_x, time from the
first to the last occasion) and `T` (time from the first occasion to the
end of calibration). Formulas and symbols follow the papers:

- BG/NBD: Fader, Hardie & Lee (2005), "Counting your customers the easy way";
- modified BG/NBD: Batislam, Denizel & Filiztekin (2007);
- Pareto/NBD: Schmittlein, Morrison & Colombo (1987), in the form of Fader
  & Hardie, "A note on deriving the Pareto/NBD model and related expressions".

Every likelihood is computed in log space; the Gaussian hypergeometric
terms are evaluated where they are bounded (Pfaff's transformation for the
conditional expectations, and the log of a difference for Pareto/NBD).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from scipy.special import betaln, digamma, gammaln, hyp2f1

from regulars.errors import FitError, InputError
from regulars.models.base import Model

__all__ = ["BetaGeoModel", "ModifiedBetaGeoModel", "ParetoNBDModel"]

#: Fewer customers with a repeat purchase than this cannot pin a model down.
MIN_REPEATERS = 10

# Gauss-Legendre nodes on [0, 1] for the Pareto/NBD holdout integral.
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(64)
_NODES = (_NODES + 1) / 2
_WEIGHTS = _WEIGHTS / 2


class _CountModel(Model):
    required: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")

    def __init__(self) -> None:
        super().__init__()
        self._distinct = _Distinct()

    def _check(self, data: dict[str, np.ndarray], weight: np.ndarray) -> None:
        x, tx, T = data["frequency"], data["recency"], data["T"]
        _validate(x, tx, T)
        repeaters = float(weight[x > 0].sum())
        if repeaters < MIN_REPEATERS:
            raise FitError(
                f"only {repeaters:g} customer{'' if repeaters == 1 else 's'} made a "
                f"repeat purchase; the {self.name} "
                f"model needs at least {MIN_REPEATERS}.",
                hint="Fit on a longer history (a later --as-of for predict, a later "
                "--calibration-end for backtest), so that returning customers can "
                "be seen.",
            )

    def _data(self, summary: Any) -> tuple[np.ndarray, Any]:
        grouped, _ = self._grouped(summary)
        d = grouped.values
        _validate(d["frequency"], d["recency"], d["T"])
        return self._require_fit(), grouped

    def probability_alive(self, summary: Any) -> np.ndarray:
        """P(the customer is still active at the end of calibration), per row."""
        params, grouped = self._data(summary)
        d = grouped.values
        return grouped.expand(
            np.exp(self._log_p_alive(params, d["frequency"], d["recency"], d["T"]))
        )

    def expected_orders(self, summary: Any, t: float) -> np.ndarray:
        """Expected repeat purchase occasions in the next `t` time units, per row."""
        params, grouped = self._data(summary)
        d = grouped.values
        return grouped.expand(
            self._expected(params, d["frequency"], d["recency"], d["T"], float(t))
        )

    def probability_of_order(self, summary: Any, t: float) -> np.ndarray:
        """P(at least one purchase in the next `t` time units), per row.

        Unlike `probability_alive`, this also weighs how fast the customer
        buys, so a one-time buyer from long ago scores low under every model.
        """
        params, grouped = self._data(summary)
        d = grouped.values
        x, tx, T = d["frequency"], d["recency"], d["T"]
        alive = np.exp(self._log_p_alive(params, x, tx, T))
        return grouped.expand(alive * self._p_order_if_alive(params, x, T, float(t)))

    def expected_orders_total(
        self, summary: Any, horizons: Sequence[float]
    ) -> np.ndarray:
        """Expected repeat occasions of all rows together, for each horizon."""
        params, grouped = self._data(summary)
        d = grouped.values
        x, tx, T = d["frequency"], d["recency"], d["T"]
        return np.array([
            float(grouped.weight @ self._expected(params, x, tx, T, float(t))) for t in horizons
        ])  # fmt: skip

    def forecast(self, summary: Any, horizons: Sequence[float]) -> dict[str, Any]:
        """Everything the scores need, computed once per distinct summary.

        Returns
        -------
        dict
            ``p_alive`` (per row); ``expected`` and ``p_order``, each a list
            with one per-row array per horizon; ``median_wait``, the median
            time to the next purchase if the customer is still active (their
            rate's posterior is Gamma(r + x, alpha + T) under all three models).
        """
        params, grouped = self._data(summary)
        d = grouped.values
        x, tx, T = d["frequency"], d["recency"], d["T"]
        alive = np.exp(self._log_p_alive(params, x, tx, T))
        r, alpha = params[0], params[1]
        return {
            "p_alive": grouped.expand(alive),
            "expected": [
                grouped.expand(self._expected(params, x, tx, T, float(t)))
                for t in horizons
            ],
            "p_order": [
                grouped.expand(alive * self._p_order_if_alive(params, x, T, float(t)))
                for t in horizons
            ],
            "median_wait": grouped.expand((alpha + T) * np.expm1(np.log(2) / (r + x))),
        }

    def _p_order_if_alive(
        self, params: np.ndarray, x: np.ndarray, T: np.ndarray, t: float
    ) -> np.ndarray:
        # BG/NBD and MBG/NBD: a customer alive at T buys at rate lambda with
        # posterior Gamma(r + x, alpha + T) and can only drop out after buying.
        r, alpha = params[0], params[1]
        return -np.expm1((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))

    @abstractmethod
    def _log_p_alive(
        self, params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """Log of P(alive) per row."""

    @abstractmethod
    def _expected(
        self, params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray, t: float
    ) -> np.ndarray:
        """Expected repeat occasions in the next `t`, per row."""

    def _log_likelihood(
        self, params: np.ndarray, data: dict[str, np.ndarray]
    ) -> np.ndarray:
        return self._ll(params, data["frequency"], data["recency"], data["T"])

    @abstractmethod
    def _ll(
        self, params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """Per-row log-likelihood."""


def _validate(x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> None:
    problems = []
    if np.any(x < 0) or np.any(x != np.floor(x)):
        problems.append("frequency must be a whole number of 0 or more")
    if np.any(tx < 0) or np.any(T < 0):
        problems.append("recency and T must be 0 or more")
    if np.any(tx > T * (1 + 1e-12)):
        problems.append("recency must not exceed T")
    if np.any((x > 0) & (tx <= 0)):
        problems.append("a customer with repeat purchases must have recency > 0")
    if np.any((x == 0) & (tx != 0)):
        problems.append("a customer without repeat purchases must have recency 0")
    if problems:
        raise InputError(
            "the summary is not consistent: " + "; ".join(problems) + ".",
            hint="frequency counts repeat purchase occasions (the first is not "
            "counted), recency is the time from the first to the last occasion and "
            "T the time from the first occasion to the end of calibration.",
        )


def _bg_family(
    params: np.ndarray,
    x: np.ndarray,
    tx: np.ndarray,
    T: np.ndarray,
    shift: int,
    distinct: _Distinct,
    *,
    gradient: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Log-likelihood (and gradient) of BG/NBD (`shift` 0) and MBG/NBD (`shift` 1).

    L = prefix + log(exp(first) + exp(second)), with
    first = ln B(a, b + x + shift) - (r + x) ln(alpha + T) and
    second = ln B(a + 1, b + x + shift - 1) - (r + x) ln(alpha + t_x), the
    second present when x + shift > 0. Special functions of x are computed
    once per distinct x.
    """
    r, alpha, a, b = params
    (ux,), ix = distinct.get(x)
    ubx = b + ux + shift
    u_second = (ux + shift) > 0
    ubx1 = np.maximum(ubx - 1, 1e-300)
    has_second = u_second[ix]
    log_at, log_atx = np.log(alpha + T), np.log(alpha + tx)
    prefix = (gammaln(r + ux) - betaln(a, b))[ix] - gammaln(r) + r * np.log(alpha)
    first = betaln(a, ubx)[ix] - (r + x) * log_at
    with np.errstate(divide="ignore", invalid="ignore"):
        second = np.where(
            has_second, betaln(a + 1, ubx1)[ix] - (r + x) * log_atx, -np.inf
        )
        mix = np.logaddexp(first, second)
        if not gradient:
            return prefix + mix, None
        w_first = np.exp(first - mix)
        w_second = np.where(has_second, np.exp(second - mix), 0.0)
        psi_all = digamma(a + b + ux + shift)
        d_r = (digamma(r + ux)[ix] - digamma(r) + np.log(alpha)
               - w_first * log_at - w_second * log_atx)  # fmt: skip
        d_alpha = r / alpha - (r + x) * (
            w_first / (alpha + T) + w_second / (alpha + tx)
        )
        d_a = (
            digamma(a + b) - digamma(a) + w_first * (digamma(a) - psi_all)[ix]
            + w_second * (digamma(a + 1) - psi_all)[ix]
        )  # fmt: skip
        second_b = np.where(u_second, digamma(ubx1) - psi_all, 0.0)[ix]
        d_b = (digamma(a + b) - digamma(b) + w_first * (digamma(ubx) - psi_all)[ix]
               + w_second * second_b)  # fmt: skip
    return prefix + mix, np.vstack([d_r, d_alpha, d_a, d_b])


class _Distinct:
    """Distinct rows of some arrays, remembered for the arrays last asked about.

    Entries keep the arrays themselves, so an entry can never stand for
    other data that happens to reuse their memory.
    """

    def __init__(self) -> None:
        self._entries: list[tuple[tuple[np.ndarray, ...], Any]] = []

    def get(self, *arrays: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        """(distinct values per array, inverse index) of the rows of `arrays`."""
        for key, value in self._entries:
            if len(key) == len(arrays) and all(
                k is a for k, a in zip(key, arrays, strict=True)
            ):
                return value
        if len(arrays) == 1:
            values, inverse = np.unique(arrays[0], return_inverse=True)
            columns: tuple[np.ndarray, ...] = (values,)
        else:
            rows, inverse = np.unique(
                np.column_stack(arrays), axis=0, return_inverse=True
            )
            columns = tuple(rows[:, i].copy() for i in range(len(arrays)))
        value = (columns, inverse.ravel())
        self._entries = [*self._entries[-5:], (arrays, value)]
        return value


class _BetaGeoFamily(_CountModel):
    """BG/NBD and MBG/NBD share their likelihood up to `shift` (see `_bg_family`)."""

    param_names = ("r", "alpha", "a", "b")
    analytic_gradient = True
    shift: ClassVar[int] = 0

    def _ll(self, params, x, tx, T):
        return _bg_family(params, x, tx, T, self.shift, self._distinct, gradient=False)[
            0
        ]

    def _log_likelihood_and_gradient(self, params, data):
        x, tx, T = data["frequency"], data["recency"], data["T"]
        return _bg_family(params, x, tx, T, self.shift, self._distinct)


class BetaGeoModel(_BetaGeoFamily):
    """BG/NBD: Poisson purchases while active; after each purchase the
    customer drops out with probability p. Parameters r, alpha (purchase
    rates ~ Gamma(r, alpha)) and a, b (p ~ Beta(a, b)).

    Its P(alive) is 1 for every customer without a repeat purchase, however
    long ago they bought; rank churn with `probability_of_order` instead.
    """

    name = "BG/NBD"
    shift = 0

    def _log_p_alive(self, params, x, tx, T):
        r, alpha, a, b = params
        with np.errstate(divide="ignore"):
            odds = (
                np.log(a)
                - np.log(np.maximum(b + x - 1, 1e-300))
                + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
            )
        return np.where(x > 0, -np.logaddexp(0, odds), 0.0)

    def _expected(self, params, x, tx, T, t):
        r, alpha, a, b = params
        a1 = a - 1 if abs(a - 1) > 1e-9 else 1e-9
        # Pfaff: ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))
        #      = 2F1(r+x, a-1; a+b+x-1; -t/(alpha+T)), which stays bounded.
        hyper = hyp2f1(r + x, a1, a + b + x - 1, -t / (alpha + T))
        return (
            (a + b + x - 1)
            / a1
            * (1 - hyper)
            * np.exp(self._log_p_alive(params, x, tx, T))
        )


class ModifiedBetaGeoModel(_BetaGeoFamily):
    """MBG/NBD: as BG/NBD, but a customer may also drop out right after the
    first purchase, so a one-time buyer from long ago is likely gone."""

    name = "MBG/NBD"
    shift = 1

    def _log_p_alive(self, params, x, tx, T):
        r, alpha, a, b = params
        odds = (
            np.log(a)
            - np.log(b + x)
            + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
        )
        return -np.logaddexp(0, odds)

    def _expected(self, params, x, tx, T, t):
        r, alpha, a, b = params
        a1 = a - 1 if abs(a - 1) > 1e-9 else 1e-9
        hyper = hyp2f1(r + x, a1, a + b + x, -t / (alpha + T))
        return (
            (a + b + x) / a1 * (1 - hyper) * np.exp(self._log_p_alive(params, x, tx, T))
        )


class ParetoNBDModel(_CountModel):
    """Pareto/NBD: Poisson purchases at rate lambda ~ Gamma(r, alpha) for an
    exponential lifetime with rate mu ~ Gamma(s, beta)."""

    name = "Pareto/NBD"
    param_names = ("r", "alpha", "s", "beta")

    def _log_a0(self, params, x, tx, T):
        r, alpha, s, beta = params
        if alpha >= beta:
            base, other = alpha, beta
        else:
            base, other = beta, alpha

        def log_f(y: np.ndarray) -> np.ndarray:
            # Evaluated once per distinct (x, y): far fewer than customers.
            (ux, uy), inverse = self._distinct.get(x, y)
            big = r + s + ux
            second = s + 1 if alpha >= beta else r + ux
            z = (base - other) / (base + uy)
            values = np.log(hyp2f1(big, second, big + 1, z)) - big * np.log(base + uy)
            return values[inverse]

        at_tx, at_T = log_f(tx), log_f(T)
        with np.errstate(divide="ignore", invalid="ignore"):
            diff = at_tx + np.log(-np.expm1(np.minimum(at_T - at_tx, 0.0)))
        return np.where(tx < T, diff, -np.inf)

    def _ll(self, params, x, tx, T):
        r, alpha, s, beta = params
        prefix = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        gone = np.log(s / (r + s + x)) + self._log_a0(params, x, tx, T)
        return prefix + np.logaddexp(alive, gone)

    def _log_p_alive(self, params, x, tx, T):
        r, alpha, s, beta = params
        odds = (
            np.log(s / (r + s + x)) + (r + x) * np.log(alpha + T) + s * np.log(beta + T)
            + self._log_a0(params, x, tx, T)
        )  # fmt: skip
        return -np.logaddexp(0, odds)

    def _expected(self, params, x, tx, T, t):
        r, alpha, s, beta = params
        growth = np.log1p(t / (beta + T))
        if abs(s - 1) > 1e-9:
            horizon = -np.expm1(-(s - 1) * growth) / (s - 1)
        else:
            horizon = growth
        rate = (r + x) * (beta + T) / (alpha + T)
        return rate * horizon * np.exp(self._log_p_alive(params, x, tx, T))

    def _p_order_if_alive(self, params, x, T, t):
        # Alive at T: lambda ~ Gamma(r+x, alpha+T) and mu ~ Gamma(s, beta+T),
        # independent. P(a purchase before dropping out within t)
        # = integral over u in [0, t] of E[lambda e^(-lambda u)] E[e^(-mu u)].
        r, alpha, s, beta = params
        # It depends on x and T only: evaluate once per distinct pair.
        (ux, uT), inverse = self._distinct.get(x, T)
        shape, rate_l, rate_m = (
            (r + ux)[:, None],
            (alpha + uT)[:, None],
            (beta + uT)[:, None],
        )
        u = t * _NODES[None, :]
        log_f = (
            np.log(shape) - np.log(rate_l) - (shape + 1) * np.log1p(u / rate_l)
            - s * np.log1p(u / rate_m)
        )  # fmt: skip
        return (t * (np.exp(log_f) @ _WEIGHTS))[inverse]
