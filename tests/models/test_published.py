"""The models reproduce the published CDNOW fits (weeks, 39-week calibration).

Published figures: `docs/predictions.md` and `tests/data/cdnow/` (Fader, Hardie & Lee 2005;
Fader & Hardie 2013). Agreement is to 3 significant figures.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from regulars.errors import FitError, InputError
from regulars.models import (
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
)


def sig3(value: float) -> str:
    return f"{value:.3g}"


@pytest.mark.parametrize(
    ("model", "published", "log_likelihood"),
    [
        (BetaGeoModel, {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, -9582.4),
        (
            ParetoNBDModel,
            {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669},
            -9595.0,
        ),
    ],
)
def test_count_models_match_published(cdnow_summary, model, published, log_likelihood):
    fitted = model().fit(cdnow_summary)
    assert {k: sig3(v) for k, v in fitted.params_.items()} == {
        k: sig3(v) for k, v in published.items()
    }
    assert fitted.log_likelihood_ == pytest.approx(log_likelihood, abs=0.05)
    assert fitted.n_customers_ == 2357
    k = len(published)
    assert fitted.aic_ == pytest.approx(2 * k - 2 * fitted.log_likelihood_)
    assert fitted.bic_ == pytest.approx(k * np.log(2357) - 2 * fitted.log_likelihood_)
    assert all(
        0 < se < fitted.params_[name] for name, se in fitted.standard_errors_.items()
    )


def test_bgnbd_standard_errors_match_published(cdnow_summary):
    # Fader, Hardie & Lee (2005), Table 1 (and lifetimes' summary of the same fit).
    se = BetaGeoModel().fit(cdnow_summary).standard_errors_
    assert se == pytest.approx(
        {"r": 0.0126, "alpha": 0.378, "a": 0.186, "b": 0.705}, rel=0.02
    )


def test_gamma_gamma_matches_published(cdnow_summary):
    fitted = GammaGammaModel().fit(cdnow_summary)
    assert {k: sig3(v) for k, v in fitted.params_.items()} == {
        "p": "6.25",
        "q": "3.74",
        "v": "15.4",
    }
    assert fitted.n_customers_ == 946  # customers with a repeat purchase
    assert fitted.log_likelihood_ == pytest.approx(-4055.9, abs=0.05)
    # Expected spend of a customer: (p (v + x zbar)) / (p x + q - 1).
    p, q, v = (fitted.params_[k] for k in "pqv")
    one = pd.DataFrame({"frequency": [2, 0], "monetary_value": [22.35, 0.0]})
    assert fitted.expected_order_value(one) == pytest.approx(
        [p * (v + 2 * 22.35) / (2 * p + q - 1), p * v / (q - 1)]
    )


def test_bgnbd_conditional_expectation_published_example(cdnow_summary):
    # README: x = 2, t_x = 30.43, T = 38.86 -> 1.226 purchases in the next 39 weeks.
    fitted = BetaGeoModel().fit(cdnow_summary)
    one = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
    assert fitted.expected_orders(one, t=39)[0] == pytest.approx(1.226, abs=5e-4)


def test_bgnbd_one_time_buyer_is_always_alive_but_mbg_is_not(cdnow_summary):
    bg = BetaGeoModel().fit(cdnow_summary)
    mbg = ModifiedBetaGeoModel().fit(cdnow_summary)
    old = pd.DataFrame({"frequency": [0, 0], "recency": [0.0, 0.0], "T": [1.0, 38.0]})
    assert bg.probability_alive(old).tolist() == [1.0, 1.0]  # the known flaw
    assert mbg.probability_alive(old)[1] < mbg.probability_alive(old)[0] < 1
    # The probability of an order does fall with time since the last purchase.
    p = bg.probability_of_order(old, t=10)
    assert p[1] < p[0]


def test_grouped_fit_equals_fit_on_every_customer(cdnow_summary):
    rows = cdnow_summary[["frequency", "recency", "T"]]
    counted = rows.value_counts().rename("weight").reset_index()
    assert len(counted) < len(rows)
    a = BetaGeoModel().fit(rows).params_
    b = BetaGeoModel().fit(counted).params_
    assert b == pytest.approx(a, rel=1e-6)


def test_pareto_probability_of_order_matches_simulation(cdnow_summary):
    """Pareto/NBD P(order in t | history) against a simulation of its posterior."""
    model = ParetoNBDModel().fit(cdnow_summary)
    r, alpha, s, beta = (model.params_[k] for k in ("r", "alpha", "s", "beta"))
    x, T, t = 2, 38.86, 39.0
    rng = np.random.default_rng(7)
    n = 400_000
    lam = rng.gamma(r + x, 1 / (alpha + T), n)
    mu = rng.gamma(s, 1 / (beta + T), n)
    simulated = np.mean(
        rng.exponential(1 / lam) < np.minimum(rng.exponential(1 / mu), t)
    )
    one = pd.DataFrame({"frequency": [x], "recency": [30.43], "T": [T]})
    alive = model.probability_alive(one)[0]
    assert model.probability_of_order(one, t)[0] / alive == pytest.approx(
        simulated, abs=3e-3
    )


def test_too_few_repeat_customers_is_a_clear_error():
    few = pd.DataFrame({"frequency": [0] * 50 + [1] * 3, "recency": [0.0] * 50 + [5.0] * 3,
                        "T": [20.0] * 53})  # fmt: skip
    with pytest.raises(FitError, match="only 3 customers made a repeat purchase"):
        BetaGeoModel().fit(few)


def test_inconsistent_summary_is_rejected():
    bad = pd.DataFrame({"frequency": [1], "recency": [30.0], "T": [10.0]})
    with pytest.raises(InputError, match="recency must not exceed T"):
        BetaGeoModel().fit(bad)
    with pytest.raises(InputError, match="no column T"):
        ParetoNBDModel().fit(pd.DataFrame({"frequency": [1], "recency": [3.0]}))


def test_predicting_before_fitting_is_a_clear_error():
    with pytest.raises(FitError, match="not fitted"):
        BetaGeoModel().probability_alive(
            pd.DataFrame({"frequency": [0], "recency": [0], "T": [1]})
        )


@pytest.mark.parametrize("model", [BetaGeoModel, ModifiedBetaGeoModel, GammaGammaModel])
def test_analytic_gradients_match_finite_differences(cdnow_summary, model):
    m = model()
    data = m._prepare({k: cdnow_summary[k].to_numpy(float) for k in m.required})
    params = np.array([0.7, 3.0, 1.3, 2.2][: len(m.param_names)])
    _, grad = m._log_likelihood_and_gradient(params, data)
    for i in range(len(params)):
        step = np.zeros_like(params)
        step[i] = 1e-6 * params[i]
        numeric = (
            m._log_likelihood(params + step, data)
            - m._log_likelihood(params - step, data)
        ).sum()
        assert grad[i].sum() == pytest.approx(numeric / (2 * step[i]), rel=1e-5)
