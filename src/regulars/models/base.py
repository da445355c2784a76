"""What every customer-base model shares: input frames, grouping, the fit.

A model is fitted by maximum likelihood on a per-customer summary. Customers
with identical summaries contribute identical terms, so the likelihood is
evaluated once per distinct summary with the number of customers as weight:
a million customers cost little more than their distinct summaries.

Parameters are optimised on the log scale (they must be positive), with
scipy's BFGS on the mean log-likelihood; standard errors come from the
Hessian of the log-likelihood at the optimum (finite differences), mapped
back to the natural scale by the delta method.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
from scipy import optimize

from regulars.errors import FitError, InputError

__all__ = ["Grouped", "Model", "columns_of", "group_rows"]

#: Distinct summaries above which a fit first runs on a sample of customers,
#: of this many customers, to start the full fit close to the optimum.
WARM_START_ROWS = 20_000
WARM_START_CUSTOMERS = 20_000
#: Gradient norm (mean log-likelihood per customer, log-parameters) at which
#: the optimiser stops: parameters are then settled far beyond 1e-4 relative.
GTOL = 1e-7


def columns_of(
    summary: Any, names: Sequence[str], *, optional: Sequence[str] = ()
) -> dict:
    """The named columns of `summary` as float arrays.

    `summary` may be a pandas DataFrame, a pyarrow Table or a mapping of
    arrays. Missing required columns raise `InputError` naming them.
    """
    if hasattr(summary, "column_names"):  # pyarrow.Table
        available = list(summary.column_names)

        def get(name: str) -> Any:
            return summary.column(name).to_numpy(zero_copy_only=False)
    else:
        available = list(summary.keys()) if hasattr(summary, "keys") else []

        def get(name: str) -> Any:
            return np.asarray(summary[name])

    missing = [n for n in names if n not in available]
    if missing:
        raise InputError(
            f"the summary has no column {', '.join(missing)}; it needs "
            f"{', '.join(names)}. Found: {', '.join(map(str, available)) or 'none'}.",
            hint="Build it with regulars.models.customer_summary, or name the "
            "columns as the CLV literature does (frequency, recency, T).",
        )
    out = {}
    for name in [*names, *[o for o in optional if o in available]]:
        values = np.asarray(get(name), dtype=float)
        if np.isnan(values).any():
            raise InputError(f"column {name} of the summary has missing values.")
        out[name] = values
    return out


class Grouped:
    """Distinct rows of some columns, with how many times (or weight) each occurs.

    Attributes
    ----------
    values
        One array per column, one entry per distinct row.
    weight
        Total weight of each distinct row.
    inverse
        For each input row, the index of its distinct row.
    """

    def __init__(
        self, values: dict[str, np.ndarray], weight: np.ndarray, inverse: np.ndarray
    ):
        self.values = values
        self.weight = weight
        self.inverse = inverse

    def expand(self, per_group: np.ndarray) -> np.ndarray:
        """Per-input-row values from values computed per distinct row."""
        return per_group[self.inverse]


def group_rows(
    columns: dict[str, np.ndarray], weight: np.ndarray | None = None
) -> Grouped:
    """Group identical rows of `columns` (equal-length float arrays)."""
    names = list(columns)
    n = len(columns[names[0]])
    if n == 0:
        return Grouped(
            {k: v[:0] for k, v in columns.items()}, np.zeros(0), np.zeros(0, int)
        )
    order = np.lexsort([columns[k] for k in reversed(names)])
    # A sorted row starts a new group unless it equals its predecessor in every column.
    same = np.ones(n - 1, dtype=bool)
    for k in names:
        sorted_k = columns[k][order]
        same &= sorted_k[1:] == sorted_k[:-1]
    new_group = np.concatenate([[True], ~same])
    group_of_sorted = np.cumsum(new_group) - 1
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = group_of_sorted
    first = order[new_group]
    values = {k: columns[k][first] for k in names}
    w = np.ones(n) if weight is None else np.asarray(weight, dtype=float)
    weights = np.bincount(inverse, weights=w, minlength=len(first))
    return Grouped(values, weights, inverse)


class Model(ABC):
    """Base of the models: fit by weighted maximum likelihood, report the fit.

    Subclasses set `param_names`, `required` and implement `_log_likelihood`
    (per distinct row, natural-scale parameters) and `_check`.

    Attributes (after `fit`)
    ------------------------
    params_
        Fitted parameters by the paper's symbols.
    standard_errors_
        Standard error of each parameter (NaN where the Hessian is singular).
    log_likelihood_, aic_, bic_
        Log-likelihood at the optimum, and the information criteria.
    n_customers_
        Number of customers (total weight) the model was fitted on.
    """

    name: ClassVar[str] = "model"
    param_names: ClassVar[tuple[str, ...]] = ()
    required: ClassVar[tuple[str, ...]] = ()
    #: True when the model defines `_log_likelihood_and_gradient(params, data)`,
    #: the per-row log-likelihood and its exact derivatives (parameters x rows).
    analytic_gradient: ClassVar[bool] = False

    def __init__(self) -> None:
        self.params_: dict[str, float] = {}
        self.standard_errors_: dict[str, float] = {}
        self.log_likelihood_: float = float("nan")
        self.aic_: float = float("nan")
        self.bic_: float = float("nan")
        self.n_customers_: float = 0.0
        self.iterations_: int = 0

    # -- to implement -------------------------------------------------
    @abstractmethod
    def _log_likelihood(
        self, params: np.ndarray, data: dict[str, np.ndarray]
    ) -> np.ndarray:
        """Per-row log-likelihood at natural-scale `params`."""

    @abstractmethod
    def _check(self, data: dict[str, np.ndarray], weight: np.ndarray) -> None:
        """Raise `FitError` when `data` cannot support the model."""

    def _prepare(self, cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: cols[k] for k in self.required}

    # -- shared -------------------------------------------------------
    def _grouped(self, summary: Any) -> tuple[Grouped, dict[str, np.ndarray]]:
        cols = columns_of(summary, self.required, optional=("weight",))
        data = self._prepare(cols)
        return group_rows(data, cols.get("weight")), data

    @property
    def fitted(self) -> bool:
        """True once `fit` has succeeded."""
        return bool(self.params_)

    def _require_fit(self) -> np.ndarray:
        if not self.fitted:
            raise FitError(
                f"the {self.name} model is not fitted yet.",
                hint="Call fit(summary) first.",
            )
        return np.array([self.params_[k] for k in self.param_names])

    def _optimise(
        self,
        data: dict[str, np.ndarray],
        weight: np.ndarray,
        starts: list[np.ndarray],
        hess_inv: np.ndarray | None = None,
    ) -> optimize.OptimizeResult | None:
        """Minimise the mean negative log-likelihood over log-parameters.

        Tries `starts` in turn until one converges (gradient near 0); returns
        the best result, or None if none gave finite parameters.
        """
        total = float(weight.sum())
        k = len(self.param_names)

        def objective(log_params: np.ndarray) -> float:
            params = np.exp(log_params)
            value = -float(np.dot(weight, self._log_likelihood(params, data))) / total
            return value if np.isfinite(value) else 1e300

        def with_gradient(log_params: np.ndarray) -> tuple[float, np.ndarray]:
            params = np.exp(log_params)
            ll, grad = self._log_likelihood_and_gradient(params, data)
            value = -float(np.dot(weight, ll)) / total
            if not np.isfinite(value):
                return 1e300, np.zeros(k)
            return value, -(grad @ weight) / total * params

        analytic = self.analytic_gradient
        # Finite-difference gradients are noisy below about 1e-6.
        gtol = GTOL if analytic else max(GTOL, 1e-6)
        best = None
        for i, start in enumerate(starts):
            options: dict[str, Any] = {"gtol": gtol, "maxiter": 2000}
            if i == 0 and hess_inv is not None:
                options["hess_inv0"] = hess_inv
            with np.errstate(all="ignore"):
                result = optimize.minimize(
                    with_gradient if analytic else objective, start, jac=analytic or None,
                    method="BFGS", options=options,
                )  # fmt: skip
            if np.all(np.isfinite(result.x)) and (
                best is None or result.fun < best.fun
            ):
                best = result
            if (
                best is not None
                and best.fun < 1e299
                and np.max(np.abs(best.jac)) < 1e-5
            ):
                break
        return best

    def fit(self, summary: Any) -> Model:
        """Fit the model to `summary` by maximum likelihood; return self.

        Raises
        ------
        FitError
            If the data cannot support the model or the optimiser does not
            converge to finite parameters; the message says what to do.
        """
        grouped, _ = self._grouped(summary)
        data, weight = grouped.values, grouped.weight
        self._check(data, weight)
        total = float(weight.sum())
        starts = [np.log(s) for s in self._starts()]
        hess_inv = None
        if len(weight) > WARM_START_ROWS:
            # Start from the fit to a random sample of customers: the full data
            # then only polishes an optimum that is already close.
            sample = np.random.default_rng(0).multinomial(
                WARM_START_CUSTOMERS, weight / total
            )
            keep = sample > 0
            warm = self._optimise(
                {k: v[keep] for k, v in data.items()},
                sample[keep].astype(float),
                starts,
            )
            if warm is not None:
                starts = [warm.x, *starts]
                # The sample's curvature (per customer) is a good first guess of the
                # full data's, so BFGS need not learn it again from scratch.
                guess = (warm.hess_inv + warm.hess_inv.T) / 2
                if np.all(np.isfinite(guess)) and np.linalg.eigvalsh(guess).min() > 0:
                    hess_inv = guess
        best = self._optimise(data, weight, starts, hess_inv)
        if best is None or best.fun >= 1e299 or np.max(np.abs(best.jac)) > 1e-4:
            raise FitError(
                f"the {self.name} fit did not converge.",
                hint="Check the summary (time unit, calibration end); a longer history "
                "or more customers usually helps. Try another model.",
            )
        params = np.exp(best.x)
        if np.any(params > 1e7) or np.any(params < 1e-7):
            shown = ", ".join(
                f"{k}={v:.3g}" for k, v in zip(self.param_names, params, strict=True)
            )
            raise FitError(
                f"the {self.name} fit ran to a boundary ({shown}): the data cannot pin the "
                "model down.",
                hint="This happens when hardly any customer returns or nobody seems to "
                "leave; use a longer calibration period or another model.",
            )
        self.params_ = dict(zip(self.param_names, map(float, params), strict=True))
        self.iterations_ = int(best.nit)
        ll = -best.fun * total
        k = len(self.param_names)
        self.log_likelihood_ = float(ll)
        self.aic_ = float(2 * k - 2 * ll)
        self.bic_ = float(k * np.log(total) - 2 * ll)
        self.n_customers_ = total
        self.standard_errors_ = self._standard_errors(best.x, data, weight)
        return self

    def _starts(self) -> list[np.ndarray]:
        k = len(self.param_names)
        return [np.ones(k), np.full(k, 0.5), np.full(k, 2.0)]

    def _standard_errors(
        self, log_params: np.ndarray, data: dict[str, np.ndarray], weight: np.ndarray
    ) -> dict[str, float]:
        if self.analytic_gradient:
            # Central differences of the exact gradient (log scale): 2k
            # evaluations instead of the 2k^2 + 1 of differencing the likelihood.
            def total_gradient(phi: np.ndarray) -> np.ndarray:
                params = np.exp(phi)
                _, grad = self._log_likelihood_and_gradient(params, data)
                return (grad @ weight) * params

            step = 1e-5
            columns = [
                (total_gradient(log_params + e) - total_gradient(log_params - e))
                / (2 * step)
                for e in np.eye(len(log_params)) * step
            ]
            hessian = np.array(columns)
            hessian = (hessian + hessian.T) / 2
        else:

            def total_ll(phi: np.ndarray) -> float:
                return float(np.dot(weight, self._log_likelihood(np.exp(phi), data)))

            hessian = _hessian(total_ll, log_params)
        theta = np.exp(log_params)
        try:
            cov_log = np.linalg.inv(-hessian)
        except np.linalg.LinAlgError:
            return dict.fromkeys(self.param_names, float("nan"))
        variances = np.diag(cov_log) * theta**2
        se = np.where(variances > 0, np.sqrt(np.abs(variances)), np.nan)
        return dict(zip(self.param_names, map(float, se), strict=True))

    def summary(self) -> dict[str, Any]:
        """Parameters, standard errors and fit statistics as plain values."""
        self._require_fit()
        return {
            "model": self.name,
            "params": dict(self.params_),
            "standard_errors": dict(self.standard_errors_),
            "log_likelihood": self.log_likelihood_,
            "aic": self.aic_,
            "bic": self.bic_,
            "n_customers": self.n_customers_,
        }

    def __repr__(self) -> str:
        if not self.fitted:
            return f"{type(self).__name__}()"
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        return f"{type(self).__name__}({shown})"


def _hessian(
    f: Callable[[np.ndarray], float], x: np.ndarray, step: float = 1e-4
) -> np.ndarray:
    """Central finite-difference Hessian of `f` at `x`."""
    k = len(x)
    h = np.zeros((k, k))
    eye = np.eye(k) * step
    f0 = f(x)
    for i in range(k):
        for j in range(i, k):
            if i == j:
                value = (f(x + eye[i]) - 2 * f0 + f(x - eye[i])) / step**2
            else:
                value = (
                    f(x + eye[i] + eye[j]) - f(x + eye[i] - eye[j])
                    - f(x - eye[i] + eye[j]) + f(x - eye[i] - eye[j])
                ) / (4 * step**2)  # fmt: skip
            h[i, j] = h[j, i] = value
    return h
