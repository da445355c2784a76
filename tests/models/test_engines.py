"""predict and backtest on the CDNOW store give the same results on both engines."""

from __future__ import annotations

import datetime as dt

import pytest

from regulars.models.backtest import backtest
from regulars.models.predict import predict

CALIBRATION_END = dt.date(1997, 9, 30)
HOLDOUT_END = dt.date(1998, 6, 30)
# Worked out once on DuckDB; Spark must agree.
ACTUAL_HOLDOUT = 1882
PREDICTED_BG = 1653.409  # sum of BG/NBD conditional expectations over 39 weeks
PREDICTED_SCORES = 1576.728  # MBG/NBD (the primary model here), 273 days


def test_backtest_and_predict_on_cdnow(cdnow_store):
    wh = cdnow_store
    result = backtest(
        wh, calibration_end=CALIBRATION_END, holdout_end=HOLDOUT_END, unit="weeks"
    ).to_dict()
    assert result["customers"] == 2357
    # Repeat purchase occasions of the 2,357 customers in weeks 40-78.
    assert result["holdout"]["actual_orders"] == ACTUAL_HOLDOUT
    assert {k: f"{v:.3g}" for k, v in result["params"]["bg_nbd"].items()} == {
        "r": "0.243", "alpha": "4.41", "a": "0.793", "b": "2.43",
    }  # fmt: skip
    assert result["holdout"]["predicted_orders"]["bg_nbd"] == pytest.approx(
        PREDICTED_BG, rel=1e-4
    )
    # The trap the docs warn about: BG/NBD's P(alive) ranks worse than chance here.
    assert result["auc"]["bg_nbd.p_alive"] < 0.5 < result["auc"]["mbg_nbd.p_alive"]
    scored = predict(wh, as_of=CALIBRATION_END, horizon_days=273)
    assert wh.count("scores") == 2357
    assert scored.to_dict()["expected_orders"] == pytest.approx(
        PREDICTED_SCORES, rel=1e-4
    )
    runs = (
        wh.to_arrow(wh.table("model_runs").order_by("run_id"))
        .column("kind")
        .to_pylist()
    )
    assert runs == ["backtest", "predict"]
