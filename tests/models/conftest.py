"""CDNOW data as the literature uses it, and as orders in a store."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from tests.conftest import DATA

from regulars.ingest.tabular import import_orders

CDNOW = DATA / "cdnow"


@pytest.fixture(scope="session")
def cdnow_summary() -> pd.DataFrame:
    """The published calibration summary (39 weeks from 1997-01-01, weeks)."""
    d = pd.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv")
    return d.rename(
        columns={"x": "frequency", "t_x": "recency", "zbar": "monetary_value"}
    )


def cdnow_orders_csv(path: Path) -> Path:
    """CDNOW_sample.txt as a generic orders CSV: one order per transaction."""
    rows = []
    for i, line in enumerate((CDNOW / "CDNOW_sample.txt").read_text().splitlines()):
        _master, sample, day, _cds, dollars = line.split()
        rows.append({
            "order_id": f"t{i}", "customer_id": str(int(sample)),
            "placed_at": f"{day[:4]}-{day[4:6]}-{day[6:]}", "total": dollars, "currency": "USD",
        })  # fmt: skip
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def cdnow_store(warehouse, tmp_path):
    """A store holding the 6,919 CDNOW transactions."""
    report = import_orders(warehouse, str(cdnow_orders_csv(tmp_path / "cdnow.csv")))
    assert report.rows_rejected == 0
    return warehouse
