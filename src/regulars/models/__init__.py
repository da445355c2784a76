"""Customer-base models: who is still a customer, how much they will buy.

Scikit-learn style: ``model.fit(summary)``, then predictions on the same
kind of frame. A summary has the CLV literature's columns ``frequency``,
``recency`` and ``T`` (and ``monetary_value`` for Gamma-Gamma), optionally
``weight``; `customer_summary` builds it in the warehouse.
"""

from __future__ import annotations

from regulars.models.base import Model
from regulars.models.count import BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel
from regulars.models.spend import GammaGammaModel
from regulars.models.summary import (
    UNITS,
    customer_summary,
    holdout_occasions,
    holdout_orders,
)

__all__ = [
    "UNITS",
    "BetaGeoModel",
    "GammaGammaModel",
    "Model",
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "customer_summary",
    "holdout_occasions",
    "holdout_orders",
]
