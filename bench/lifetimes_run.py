"""The lifetimes side of ``models_bench.py``; runs in the .venv-bench environment.

Reads transactions (customer_id, day, net) from a CSV file, then times
lifetimes' summary, fits and predictions and prints one JSON line.
Usage: ``.venv-bench/bin/python bench/lifetimes_run.py FILE END_DATE HORIZON_DAYS``.
"""

from __future__ import annotations

import json
import sys
import time

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter
from lifetimes.utils import summary_data_from_transaction_data


def main() -> None:
    path, end, horizon = sys.argv[1], sys.argv[2], float(sys.argv[3])
    tx = pd.read_csv(path, parse_dates=["day"], dtype={"customer_id": str})
    times = {}
    t0 = time.perf_counter()
    s = summary_data_from_transaction_data(
        tx,
        "customer_id",
        "day",
        monetary_value_col="net",
        observation_period_end=end,
        freq="D",
    )
    times["summary"] = time.perf_counter() - t0
    out = {"customers": len(s), "params": {}}
    for key, fitter in (("bg_nbd", BetaGeoFitter()), ("pareto_nbd", ParetoNBDFitter())):
        t0 = time.perf_counter()
        fitter.fit(s.frequency, s.recency, s["T"])
        times[f"fit_{key}"] = time.perf_counter() - t0
        out["params"][key] = {k: float(v) for k, v in fitter.params_.items()}
        t0 = time.perf_counter()
        alive = fitter.conditional_probability_alive(s.frequency, s.recency, s["T"])
        expected = fitter.conditional_expected_number_of_purchases_up_to_time(
            horizon, s.frequency, s.recency, s["T"]
        )
        times[f"predict_{key}"] = time.perf_counter() - t0
        out.setdefault("totals", {})[key] = {
            "p_alive": float(alive.sum()), "expected_orders": float(expected.sum()),
        }  # fmt: skip
    repeat = s[(s.frequency > 0) & (s.monetary_value > 0)]
    t0 = time.perf_counter()
    gg = GammaGammaFitter().fit(repeat.frequency, repeat.monetary_value)
    value = gg.conditional_expected_average_profit(
        repeat.frequency, repeat.monetary_value
    )
    times["gamma_gamma"] = time.perf_counter() - t0
    out["params"]["gamma_gamma"] = {k: float(v) for k, v in gg.params_.items()}
    out["totals"]["gamma_gamma"] = {"expected_value": float(value.sum())}
    out["times"] = times
    print(json.dumps(out))


if __name__ == "__main__":
    main()
