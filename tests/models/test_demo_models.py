"""Predictions on the demo store, whose generator knows who is still alive."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from regulars.backends import connect
from regulars.cli.main import app
from regulars.demo import DemoConfig, write_demo_files
from regulars.ingest.load import import_shopify_orders
from regulars.models.backtest import auc, backtest
from regulars.models.predict import TIERS, fit_count_models, predict

END = dt.date(2026, 6, 30)
CALIBRATION_END = END - dt.timedelta(days=182)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo-models")
    files = write_demo_files(DemoConfig(n_customers=8000, seed=5, end=END), str(folder))
    path = str(folder / "store.duckdb")
    wh = connect(path)
    import_shopify_orders(wh, files.orders)
    truth = pq.read_table(f"{files.truth_dir}/customers.parquet").to_pandas()
    yield wh, path, truth
    wh.close()


def test_p_alive_separates_alive_from_dead_customers(demo):
    wh, _, truth = demo
    result = predict(wh, as_of=END, write=False)
    scores = result.scores.to_pandas().merge(truth, on="customer_id")
    # Every identified demo customer with an order is scored; the few whose
    # emails the generator mangled carry other ids.
    assert len(scores) > 0.97 * result.scores.num_rows
    alive = scores.alive_at_end.to_numpy()
    # The generator drops customers out BG/NBD-style (only after a repeat
    # purchase), so BG/NBD's own P(alive) separates best; the primary model's,
    # which the tiers use, still separates well.
    assert auc(scores.p_alive.to_numpy(), alive) > 0.75
    summary = scores.rename(columns={"recency_days": "recency", "age_days": "T"})
    fitted, _ = fit_count_models(summary)
    assert auc(fitted["bg_nbd"].probability_alive(summary), alive) > 0.85
    # Customers the generator keeps alive are mostly in the better tiers.
    tiers = (
        scores.groupby("alive_at_end").risk_tier.value_counts(normalize=True).unstack()
    )
    good = ["active", "cooling"]
    assert tiers.loc[True, good].sum() > 0.6 > tiers.loc[False, good].sum()


def test_scores_are_written_and_replaced_per_as_of(demo):
    wh, _, _ = demo
    first = predict(wh, as_of=END)
    n = wh.count("scores")
    assert n == first.scores.num_rows == first.to_dict()["customers"]
    second = predict(wh, as_of=END, horizon_days=30)
    assert wh.count("scores") == n  # same as_of: replaced, not added
    assert second.run_id == first.run_id + 1
    runs = wh.to_arrow(wh.table("model_runs")).to_pylist()
    assert [r["kind"] for r in runs][-2:] == ["predict", "predict"]
    details = json.loads(runs[-1]["details"])
    assert details["horizon_days"] == 30 and details["primary_model"] in (
        "pareto_nbd",
        "mbg_nbd",
    )
    stored = wh.to_arrow(wh.table("scores")).to_pandas()
    assert set(stored.horizon_days) == {30}
    assert set(stored.risk_tier) <= {t for t, _ in TIERS}
    assert stored.p_order.le(stored.p_alive + 1e-12).all()
    assert (stored.next_order_at > END).all()
    one = stored[stored.frequency == 0].iloc[0]
    assert one.risk_reason.startswith(
        f"one order, {one.days_since_last_order} days ago"
    )
    many = stored[stored.frequency >= 2].iloc[0]
    assert (
        f"orders every {round(many.recency_days / many.frequency)} days"
        in many.risk_reason
    )
    assert stored.rfm_segment.notna().all()


def test_backtest_tracks_the_holdout(demo):
    wh, _, _ = demo
    result = backtest(
        wh, calibration_end=CALIBRATION_END, holdout_end=END, write=False
    ).to_dict()
    h = result["holdout"]
    assert h["actual_orders"] > 1000
    for key in ("bg_nbd", "mbg_nbd"):
        assert h["predicted_orders"][key] == pytest.approx(h["actual_orders"], rel=0.1)
    weekly = h["weekly"]
    assert len(weekly) == 26 and weekly[-1]["actual"] == h["actual_orders"]
    assert all(a["actual"] <= b["actual"] for a, b in itertools.pairwise(weekly))
    assert weekly[-1]["bg_nbd"] == pytest.approx(
        h["predicted_orders"]["bg_nbd"], rel=1e-6
    )
    # The known trap: BG/NBD P(alive) ranks churn worse than the others.
    a = result["auc"]
    assert a["bg_nbd.p_alive"] < a["mbg_nbd.p_alive"]
    assert a["bg_nbd.p_order"] > a["recency"] > 0.6
    assert result["tiers"]["score"] in ("mbg_nbd.p_alive", "pareto_nbd.p_alive")
    assert result["tiers"]["auc"] > 0.7


def test_cli_predict_and_backtest(demo):
    _, path, _ = demo
    runner = CliRunner()
    res = runner.invoke(
        app, ["--store", path, "--as-of", str(END), "predict", "--json"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out["models"]) == {"bg_nbd", "mbg_nbd", "pareto_nbd"}
    assert sum(out["tiers"].values()) == out["customers"]
    res = runner.invoke(app, ["--store", path, "backtest", "--calibration-end", str(CALIBRATION_END),
                              "--holdout-end", str(END), "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out["params"]["bg_nbd"]) == {"r", "alpha", "a", "b"}
    assert isinstance(out["holdout"]["actual_orders"], int)
    assert set(out["holdout"]["predicted_orders"]) == {
        "bg_nbd",
        "mbg_nbd",
        "pareto_nbd",
    }
    assert "recency" in out["auc"] and "pareto_nbd.p_alive" in out["auc"]
    res = runner.invoke(app, ["--store", path, "backtest", "--calibration-end", str(END),
                              "--holdout-end", str(CALIBRATION_END)])  # fmt: skip
    assert res.exit_code == 1
    assert "must be after the calibration end" in res.output
    res = runner.invoke(app, ["--store", path, "--as-of", str(END), "predict"])
    assert res.exit_code == 0 and "Risk tiers" in res.output


def test_auc_counts_ties_as_half():
    assert auc(np.array([1, 2, 3, 4.0]), np.array([False, False, True, True])) == 1.0
    assert auc(np.array([1, 1, 1, 1.0]), np.array([False, True, False, True])) == 0.5
    assert auc(np.array([3, 1.0]), np.array([False, True])) == 0.0
    assert auc(np.array([1.0]), np.array([True])) is None


def test_at_risk_segment_holds_mostly_customers_the_generator_lets_die(demo):
    from regulars.segments.catalog import members_of

    wh, _, truth = demo
    predict(wh, as_of=END)
    dead = set(truth.customer_id[~truth.alive_at_end])
    shares = {}
    for name in ("at_risk", "lost", "repeat_customers"):
        members = wh.to_arrow(members_of(wh, f'in_segment("{name}")', as_of=END))
        ids = members.column("customer_id").to_pylist()
        shares[name] = (len(ids), sum(i in dead for i in ids) / len(ids))
    print(f"demo segments (members, share the generator lets die): {shares}")
    n_at_risk, dead_at_risk = shares["at_risk"]
    assert n_at_risk > 100 and dead_at_risk > 0.5
    # Lost customers are dead more often still, and more than customers at large.
    assert shares["lost"][1] > dead_at_risk > shares["repeat_customers"][1]
