"""Regulars' models against the `lifetimes` package, on CDNOW and a demo store.

For each data set both tools start from the same transactions and do the
same work: the per-customer summary (daily resolution), BG/NBD, Pareto/NBD
and Gamma-Gamma fits, and for each count model P(alive) and expected orders
over a horizon for every customer. Printed: parameters side by side with
their relative difference, and the time of each tool and the ratio.
Targets: same parameters to 1e-3 relative; at 1,000,000 customers at least
20x faster than lifetimes. Prints figures; asserts nothing.

lifetimes runs in its own environment (it needs older numpy and pandas):
``make bench-env`` creates ``.venv-bench``. Run:
``.venv/bin/python bench/models_bench.py --customers 1000000``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
CDNOW = ROOT / "tests" / "data" / "cdnow" / "CDNOW_sample.txt"
HORIZON_DAYS = 90


def cdnow_orders() -> tuple[pa.Table, dt.date]:
    ids, days, net = [], [], []
    for i, line in enumerate(CDNOW.read_text().splitlines()):
        _m, sample, day, _n, dollars = line.split()
        ids.append(str(int(sample)))
        days.append(dt.datetime.strptime(day, "%Y%m%d").replace(tzinfo=dt.UTC))
        net.append(float(dollars))
        del i
    return _orders(ids, days, net), dt.date(1997, 9, 30)


def demo_orders(customers: int, folder: str) -> tuple[pa.Table, dt.date]:
    from regulars.demo import DemoConfig, write_demo_files

    end = dt.date(2026, 6, 30)
    files = write_demo_files(DemoConfig(n_customers=customers, seed=3, end=end), folder)
    truth = pq.read_table(f"{files.truth_dir}/orders.parquet").to_pandas()
    truth = truth[~truth.malformed & ~truth.status.isin(["cancelled", "voided"])]
    net = (truth.subtotal - truth.refunded).clip(lower=0).round(2)
    os.remove(files.orders)
    return _orders(
        truth.customer_id.tolist(), truth.placed_at.tolist(), net.tolist()
    ), end


def _orders(ids: list, placed: list, net: list) -> pa.Table:
    n = len(ids)
    return pa.table({
        "order_id": [f"o{i}" for i in range(n)],
        "customer_id": pa.array(ids, pa.string()),
        "placed_at": pa.array(placed, pa.timestamp("us", tz="UTC")),
        "status": ["paid"] * n,
        "net": pa.array(net, pa.float64()).cast(pa.decimal128(18, 2)),
        "source": ["bench"] * n,
    })  # fmt: skip


def run_regulars(orders: pa.Table, end: dt.date, folder: str) -> dict:
    from regulars.backends import Append, connect
    from regulars.models import (
        BetaGeoModel,
        GammaGammaModel,
        ParetoNBDModel,
        customer_summary,
    )

    wh = connect(os.path.join(folder, "bench.duckdb"))
    wh.apply([Append("orders", orders)])
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    s = wh.to_arrow(
        customer_summary(wh.table("orders"), calibration_end=end, unit="days")
    )
    times["summary"] = time.perf_counter() - t0
    out: dict = {"customers": s.num_rows, "params": {}, "totals": {}}
    for key, model in (("bg_nbd", BetaGeoModel()), ("pareto_nbd", ParetoNBDModel())):
        t0 = time.perf_counter()
        model.fit(s)
        times[f"fit_{key}"] = time.perf_counter() - t0
        out["params"][key] = model.params_
        t0 = time.perf_counter()
        f = model.forecast(s, [HORIZON_DAYS])
        times[f"predict_{key}"] = time.perf_counter() - t0
        out["totals"][key] = {"p_alive": float(f["p_alive"].sum()),
                              "expected_orders": float(f["expected"][0].sum())}  # fmt: skip
    x = s.column("frequency").to_numpy()
    m = s.column("monetary_value").to_numpy()
    keep = (x > 0) & (m > 0)
    t0 = time.perf_counter()
    repeat = {"frequency": x[keep], "monetary_value": m[keep]}
    gg = GammaGammaModel().fit(repeat)
    value = gg.expected_order_value(repeat)
    times["gamma_gamma"] = time.perf_counter() - t0
    out["params"]["gamma_gamma"] = gg.params_
    out["totals"]["gamma_gamma"] = {"expected_value": float(value.sum())}
    out["times"] = times
    # The transactions lifetimes reads: counted orders, one row each.
    o = wh.table("orders")
    upto = o.filter(
        o.placed_at < dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC)
    )
    tx = wh.to_arrow(upto.select("customer_id", "placed_at", net=upto.net.fill_null(0)))
    wh.close()
    table = pa.table({
        "customer_id": tx.column("customer_id"),
        "day": tx.column("placed_at").cast(pa.timestamp("us")).cast(pa.date32()),
        "net": tx.column("net").cast(pa.float64()),
    })  # fmt: skip
    pacsv.write_csv(table, os.path.join(folder, "transactions.csv"))
    return out


def run_lifetimes(python: str, folder: str, end: dt.date) -> dict | None:
    if not os.path.exists(python):
        print(f"lifetimes: {python} not found; run `make bench-env` first.")
        return None
    script = str(ROOT / "bench" / "lifetimes_run.py")
    done = subprocess.run(
        [python, script, os.path.join(folder, "transactions.csv"), end.isoformat(), str(HORIZON_DAYS)],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        print(f"lifetimes failed: {done.stderr.strip().splitlines()[-1]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(name: str, ours: dict, theirs: dict | None) -> None:
    total = sum(ours["times"].values())
    print(f"\n== {name}: {ours['customers']:,} customers ==")
    worst = 0.0
    for model, params in ours["params"].items():
        for k, v in params.items():
            if theirs is None:
                print(f"{model:11s} {k:6s} regulars {v:12.6g}")
                continue
            other = theirs["params"][model][k]
            rel = abs(v - other) / abs(other)
            worst = max(worst, rel)
            print(
                f"{model:11s} {k:6s} regulars {v:12.6g}  lifetimes {other:12.6g}  rel diff {rel:.1e}"
            )
    print(
        "regulars times: "
        + ", ".join(f"{k} {v:.2f}s" for k, v in ours["times"].items())
    )
    if theirs is None:
        print(f"regulars total {total:.2f} s")
        return
    print(
        "lifetimes times: "
        + ", ".join(f"{k} {v:.2f}s" for k, v in theirs["times"].items())
    )
    their_total = sum(theirs["times"].values())
    for model, totals in ours["totals"].items():
        for k, v in totals.items():
            other = theirs["totals"][model][k]
            print(f"sum of {model} {k}: regulars {v:,.2f}  lifetimes {other:,.2f}")
    print(
        f"largest parameter difference {worst:.1e} (target 1e-3: {'met' if worst <= 1e-3 else 'NOT met'})"
    )
    ratio = their_total / total
    print(
        f"total: regulars {total:.2f} s, lifetimes {their_total:.2f} s -> {ratio:.1f}x faster"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--customers", type=int, default=1_000_000, help="demo store size"
    )
    parser.add_argument(
        "--bench-python", default=str(ROOT / ".venv-bench" / "bin" / "python")
    )
    parser.add_argument("--skip-lifetimes", action="store_true")
    args = parser.parse_args()
    for name, build in (("CDNOW", lambda f: cdnow_orders()),
                        ("demo store", lambda f: demo_orders(args.customers, f))):  # fmt: skip
        folder = tempfile.mkdtemp(prefix="regulars-models-")
        try:
            t0 = time.perf_counter()
            orders, end = build(folder)
            print(
                f"\n{name}: {orders.num_rows:,} orders to {end} (prepared in {time.perf_counter() - t0:.0f} s)"
            )
            ours = run_regulars(orders, end, folder)
            theirs = (
                None
                if args.skip_lifetimes
                else run_lifetimes(args.bench_python, folder, end)
            )
            compare(name, ours, theirs)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    np.seterr(all="warn")


if __name__ == "__main__":
    main()
