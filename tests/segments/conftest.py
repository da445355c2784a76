"""A store of four customers whose segment fields are worked out by hand.

as_of = 2025-06-30.

A  2025-01-10 Coffee Beans 1kg (net 30, google, coupon WELCOME),
   2025-03-11 Coffee Beans 1kg (30), 2025-05-10 Tea (20); DE, consents;
   ratings 4 and 2. orders 3, occasions 3, net 80, days since first 171,
   since last 51, typical interval (120 / 2) = 60; coffee bought on 2 days,
   last 111 days ago. Scores: p_alive 0.9, clv 100, active, next order 07-10.
B  2025-06-01 Tea (20); AT, no consent. Scores: p_alive 0.3, clv 10, at_risk.
C  2025-02-01 09:00 and 18:00 Coffee Beans 1kg (10, 15), 2025-06-20 cancelled;
   FR, consents. orders 2, one occasion, no typical interval; coffee on 1 day,
   149 days ago. Scores: p_alive 0.1, clv 5, lost.
D  a customer record only (DE, consents), no orders; first name with SQL in it.
E  orders only after as_of: not a customer yet. A guest order has no id.

CLV percentiles among the scored: A 100, B 50, C 0. An older run (05-31) and
a newer one (07-31) of the scores must be ignored.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from regulars.backends import Append

AS_OF = dt.date(2025, 6, 30)
D_NAME = "Robert'); DROP TABLE customers;--"
UTC = pa.timestamp("us", tz="UTC")
MONEY = pa.decimal128(18, 2)

ORDERS = [
    # order_id, customer, placed_at, status, net, channel, coupon
    ("a1", "A", "2025-01-10 10:00", "paid", "30", "google", "WELCOME"),
    ("a2", "A", "2025-03-11 10:00", "paid", "30", "email", None),
    ("a3", "A", "2025-05-10 10:00", "paid", "20", "email", None),
    ("b1", "B", "2025-06-01 10:00", "paid", "20", "instagram", None),
    ("c1", "C", "2025-02-01 09:00", "paid", "10", "organic", None),
    ("c2", "C", "2025-02-01 18:00", "paid", "15", "organic", None),
    ("c3", "C", "2025-06-20 10:00", "cancelled", "0", "organic", None),
    ("e1", "E", "2025-07-05 10:00", "paid", "50", "google", None),
    ("x1", None, "2025-06-01 10:00", "paid", "60", "google", None),
]
LINES = [
    # order_id, product, sku, category
    ("a1", "Coffee Beans 1kg", "COF-1KG", "Coffee"),
    ("a2", "Coffee Beans 1kg", "COF-1KG", "Coffee"),
    ("a3", "Tea", "TEA", "Tea"),
    ("b1", "Tea", "TEA", "Tea"),
    ("c1", "Coffee Beans 1kg", "COF-1KG", "Coffee"),
    ("c2", "Coffee Beans 1kg", "COF-1KG", "Coffee"),
    ("c3", "Tea", "TEA", "Tea"),
    ("e1", "Tea", "TEA", "Tea"),
    ("x1", "Tea", "TEA", "Tea"),
]
CUSTOMERS = [
    # id, email, first name, country, accepts marketing, created
    ("A", "a@example.com", "Anna", "DE", True, "2025-01-10 10:00"),
    ("B", "b@example.com", "Ben", "AT", False, "2025-06-01 10:00"),
    ("C", "c@example.com", "Chloe", "FR", True, "2025-02-01 09:00"),
    ("D", "d@example.com", D_NAME, "DE", True, "2025-04-01 10:00"),
    ("E", "e@example.com", "Emil", "DE", True, "2025-07-05 10:00"),
]
SCORES = [
    # as_of, customer, p_alive, clv, tier, next order
    ("2025-06-30", "A", 0.9, 100.0, "active", "2025-07-10"),
    ("2025-06-30", "B", 0.3, 10.0, "at_risk", "2025-09-01"),
    ("2025-06-30", "C", 0.1, 5.0, "lost", None),
    ("2025-05-31", "A", 0.1, 1.0, "lost", None),
    ("2025-05-31", "D", 0.9, 999.0, "active", None),
    ("2025-07-31", "B", 0.99, 999.0, "active", None),
]


def _ts(text: str | None) -> dt.datetime | None:
    return (
        None if text is None else dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    )


def fill(wh) -> None:
    """Write the store described above into warehouse `wh`."""
    orders = pa.table({
        "order_id": [r[0] for r in ORDERS], "customer_id": [r[1] for r in ORDERS],
        "placed_at": pa.array([_ts(r[2]) for r in ORDERS], UTC),
        "status": [r[3] for r in ORDERS],
        "net": pa.array([Decimal(r[4]) for r in ORDERS], MONEY),
        "refunded": pa.array([Decimal(0)] * len(ORDERS), MONEY),
        "channel": [r[5] for r in ORDERS], "coupon_code": [r[6] for r in ORDERS],
        "source": ["test"] * len(ORDERS),
    })  # fmt: skip
    lines = pa.table({
        "source": ["test"] * len(LINES), "order_id": [r[0] for r in LINES],
        "line_no": pa.array([1] * len(LINES), pa.int32()),
        "product_id": [r[2] for r in LINES], "sku": [r[2] for r in LINES],
        "product_name": [r[1] for r in LINES], "category": [r[3] for r in LINES],
        "quantity": pa.array([1] * len(LINES), pa.int64()),
    })  # fmt: skip
    customers = pa.table({
        "customer_id": [r[0] for r in CUSTOMERS], "email": [r[1] for r in CUSTOMERS],
        "first_name": [r[2] for r in CUSTOMERS], "country": [r[3] for r in CUSTOMERS],
        "accepts_marketing": [r[4] for r in CUSTOMERS],
        "created_at": pa.array([_ts(r[5]) for r in CUSTOMERS], UTC),
        "updated_at": pa.array([_ts(r[5]) for r in CUSTOMERS], UTC),
        "source": ["test"] * len(CUSTOMERS),
    })  # fmt: skip
    feedback = pa.table({
        "feedback_id": ["f1", "f2", "f3"], "customer_id": ["A", "A", "B"],
        "submitted_at": pa.array([_ts("2025-02-01 10:00"), _ts("2025-04-01 10:00"),
                                  _ts("2025-07-02 10:00")], UTC),
        "rating": pa.array([4, 2, 1], pa.int32()), "source": ["test"] * 3,
    })  # fmt: skip
    scores = pa.table({
        "run_id": pa.array([2, 2, 2, 1, 1, 3], pa.int64()),
        "as_of": pa.array([dt.date.fromisoformat(r[0]) for r in SCORES], pa.date32()),
        "customer_id": [r[1] for r in SCORES],
        "p_alive": [r[2] for r in SCORES], "clv": [r[3] for r in SCORES],
        "risk_tier": [r[4] for r in SCORES],
        "next_order_at": pa.array(
            [None if r[5] is None else dt.date.fromisoformat(r[5]) for r in SCORES],
            pa.date32(),
        ),
    })  # fmt: skip
    wh.apply([
        Append("orders", orders), Append("order_lines", lines),
        Append("customers", customers), Append("feedback", feedback),
        Append("scores", scores),
    ])  # fmt: skip


@pytest.fixture
def store(warehouse):
    """The store above, new for each test: for tests that write to it."""
    fill(warehouse)
    return warehouse


def _filled(tmp_path_factory, engine: str):
    """A new store on `engine` holding the store above."""
    from conftest import new_store

    wh = new_store(tmp_path_factory.mktemp("segments"), engine)
    fill(wh)
    return wh


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("duckdb", id="duckdb"),
        pytest.param("spark", id="spark", marks=pytest.mark.spark),
    ],
)
def read_store(request, tmp_path_factory):
    """The store above, filled once per module and engine, for tests that
    only read it (filling a Spark store costs seconds)."""
    wh = _filled(tmp_path_factory, request.param)
    yield wh
    wh.close()


@pytest.fixture(scope="module")
def duck_read_store(tmp_path_factory):
    """The store above on DuckDB, filled once per module, for tests that ask
    it one thing each (engine parity is pinned by tests on `read_store`)."""
    wh = _filled(tmp_path_factory, "duckdb")
    yield wh
    wh.close()


@pytest.fixture
def store_file(tmp_path):
    """The store above in a closed DuckDB file, for the CLI to open."""
    from regulars.backends import connect

    path = str(tmp_path / "store.duckdb")
    wh = connect(path)
    fill(wh)
    wh.close()
    return path
