"""Canonical warehouse tables: names and Ibis schemas, one line per column.

Money is an exact decimal in the store's reporting currency; time is a UTC
timestamp. Every data row keeps the `source` it came from and the
`import_id` that brought it. `SCHEMA_VERSION` is stored in the `meta` table
so that a later release can migrate an older store.
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt
from ibis.expr.schema import Schema

__all__ = [
    "MONEY",
    "MONEY_LIMIT",
    "NOT_COUNTED",
    "SCHEMA_VERSION",
    "TABLES",
    "TIMESTAMP",
    "table_schema",
]

#: Bumped whenever a table or column changes; see `backends.base.Warehouse.migrate`.
SCHEMA_VERSION = 4

MONEY = dt.Decimal(18, 2)
#: Amounts a store keeps are below this, in any currency. MONEY holds ten
#: times as much: an order's amounts, its lines added up and its conversion at
#: a rate are checked against this limit, then stored without overflowing.
MONEY_LIMIT = 10**15
RATE = dt.Decimal(18, 6)
TIMESTAMP = dt.Timestamp(timezone="UTC")
#: Statuses of orders that never count as orders and bring no revenue:
#: cancelled, and payments voided or expired (Shopify's "expired": the
#: authorised payment was never taken).
NOT_COUNTED = ("cancelled", "voided", "expired")

TABLES: dict[str, Schema] = {
    # Key/value settings of the store: schema_version, reporting_currency.
    "meta": ibis.schema({"key": "string", "value": "string"}),
    "customers": ibis.schema(
        {
            "customer_id": "string",  # stable id derived from the email (or phone)
            "email": "string",  # trimmed, lower-cased
            "phone": "string",
            "first_name": "string",
            "last_name": "string",
            "country": "string",
            "created_at": TIMESTAMP,  # first order, or account creation when known
            "accepts_marketing": "boolean",
            "address": "string",  # street and number (first address line)
            "postcode": "string",  # upper-cased
            "city": "string",
            "source": "string",  # shopify-orders, shopify-customers, csv, ...
            "updated_at": TIMESTAMP,  # time of the newest fact this row reflects
            "content_hash": "string",
            "import_id": "int64",
        }
    ),
    "orders": ibis.schema(
        {
            "order_id": "string",  # unique within its source
            "customer_id": "string",  # NULL for a guest with no email or phone
            "email": "string",  # as given on the order, trimmed and lower-cased
            "phone": "string",
            "placed_at": TIMESTAMP,
            "currency": "string",  # currency the order was placed in
            "fx_rate": RATE,  # reporting currency per unit of `currency`
            "gross": MONEY,  # sum of line price x quantity, before discounts
            "discount": MONEY,
            "shipping": MONEY,
            "tax": MONEY,
            "total": MONEY,  # what the customer paid: subtotal + shipping + tax
            "refunded": MONEY,
            "net": MONEY,  # revenue: subtotal - refunded, 0 if NOT_COUNTED
            "status": "string",  # paid, pending, refunded, cancelled, voided, expired, ...
            "cancelled_at": TIMESTAMP,
            "coupon_code": "string",
            "channel": "string",
            "campaign": "string",
            "country": "string",
            "source": "string",
            "content_hash": "string",
            "import_id": "int64",
        }
    ),
    "order_lines": ibis.schema(
        {
            "source": "string",
            "order_id": "string",
            "line_no": "int32",  # 1, 2, ... in file order
            "product_id": "string",
            "sku": "string",
            "product_name": "string",
            "category": "string",
            "quantity": "int64",
            "unit_price": MONEY,
            "discount": MONEY,  # discount on the whole line
        }
    ),
    "products": ibis.schema(
        {
            "product_id": "string",
            "sku": "string",
            "product_name": "string",
            "category": "string",
            "source": "string",
            "content_hash": "string",
            "import_id": "int64",
        }
    ),
    "events": ibis.schema(
        {
            "event_id": "string",
            "customer_id": "string",
            "anonymous_id": "string",
            "occurred_at": TIMESTAMP,
            "type": "string",
            "properties": "string",  # JSON text
            "source": "string",
            "import_id": "int64",
        }
    ),
    "feedback": ibis.schema(
        {
            "feedback_id": "string",
            "customer_id": "string",
            "order_id": "string",
            "product_id": "string",
            "submitted_at": TIMESTAMP,
            "rating": "int32",  # 1-5
            "nps": "int32",  # 0-10
            "comment": "string",
            "source": "string",
            "content_hash": "string",
            "import_id": "int64",
        }
    ),
    # Every identifier seen on a record, as resolution keys it, and the
    # resolved customer it belongs to (rewritten by `regulars.identity`).
    "identities": ibis.schema(
        {
            "source": "string",  # email, phone
            "source_key": "string",  # the link key: email per the rules, phone in E.164
            "customer_id": "string",  # resolved customer id
        }
    ),
    # Records (the customer_id an importer gave a row) that identity
    # resolution joined to another record's customer; absent = itself.
    "identity_map": ibis.schema(
        {
            "record_id": "string",
            "customer_id": "string",
            "linked_by": "string",  # the rules that link it: email, phone, ...
        }
    ),
    # Rules users add to undo wrong merges (`regulars identity ignore|separate`).
    "identity_rules": ibis.schema(
        {
            "rule_id": "int64",
            "kind": "string",  # ignore: an identifier links nobody; separate: a record stays alone
            "value": "string",  # email:KEY, phone:+E164, or a record id
            "note": "string",
            "created_at": TIMESTAMP,
        }
    ),
    # Probabilistic matches (name + address + postcode) above the user's threshold.
    "identity_matches": ibis.schema(
        {"record_a": "string", "record_b": "string", "probability": "float64"}
    ),
    # `regulars forget`: that a person's data was erased, and when; no personal data.
    "erasures": ibis.schema(
        {
            "erasure_id": "int64",
            "erased_at": TIMESTAMP,
            "customer_id": "string",  # the anonymous id their kept aggregates now carry
            "records": "int64",  # rows erased or anonymised
            # SHA-256 of each link key the person had (space-separated), so that
            # re-importing an old export does not bring their details back.
            "identifier_hashes": "string",
        }
    ),
    "imports": ibis.schema(
        {
            "import_id": "int64",
            "kind": "string",  # shopify-orders, orders, customers, feedback, ...
            "file": "string",
            "file_sha256": "string",
            "source": "string",
            "started_at": TIMESTAMP,
            "rows_read": "int64",
            "rows_loaded": "int64",  # accepted rows, new or already in the store
            "rows_new": "int64",  # accepted rows that added something
            "rows_rejected": "int64",
        }
    ),
    "rejects": ibis.schema(
        {
            "import_id": "int64",
            "file": "string",
            "row": "int64",  # 1 is the header; the first data row is 2
            "column": "string",
            "value": "string",
            "reason": "string",
        }
    ),
    # One row per customer and prediction run (`regulars predict`).
    "scores": ibis.schema(
        {
            "run_id": "int64",  # model_runs.run_id
            "as_of": "date",  # the history the scores are based on ends on this day
            "model_version": "string",  # e.g. pareto_nbd@0.1.0
            "customer_id": "string",
            "frequency": "int64",  # repeat purchase occasions up to as_of
            "recency_days": "float64",  # first to last occasion
            "age_days": "float64",  # first occasion to as_of (T)
            "days_since_last_order": "int64",
            "typical_interval_days": "float64",  # recency / frequency; NULL for one order
            "monetary_value": "float64",  # mean net of repeat occasions
            "total_net": "float64",  # net revenue to date
            "p_alive": "float64",
            "horizon_days": "int64",
            "p_order": "float64",  # P(at least one order within horizon_days)
            "expected_orders": "float64",  # purchase occasions within horizon_days
            "next_order_at": "date",  # median time to the next order if still active
            "expected_order_value": "float64",
            "clv": "float64",  # discounted net revenue over clv_months
            "clv_months": "int64",
            "risk_tier": "string",  # active, cooling, at_risk, lost
            "risk_reason": "string",
            "rfm_recency": "int32",  # 1-5
            "rfm_frequency": "int32",
            "rfm_monetary": "int32",
            "rfm_segment": "string",
        }
    ),
    # One row per `regulars predict` or `regulars backtest` run.
    "model_runs": ibis.schema(
        {
            "run_id": "int64",
            "kind": "string",  # predict, backtest
            "as_of": "date",  # predict: as_of; backtest: calibration end
            "created_at": TIMESTAMP,
            "details": "string",  # JSON: settings, parameters, fit statistics, results
        }
    ),
    # Saved segments (`regulars segments save`): a condition in the segment language.
    "segments": ibis.schema(
        {
            "name": "string",
            "description": "string",
            "condition": "string",
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        }
    ),
    # One row per `regulars segments refresh` of a segment.
    "segment_runs": ibis.schema(
        {
            "run_id": "int64",
            "segment": "string",
            "condition": "string",  # as evaluated
            "as_of": "date",
            "run_at": TIMESTAMP,
            "members": "int64",
            "entered": "int64",  # members not in the segment's previous run
            "left": "int64",  # previous run's members no longer in it
        }
    ),
    # Members of each segment run.
    "segment_members": ibis.schema(
        {"run_id": "int64", "segment": "string", "customer_id": "string"}
    ),
}


def table_schema(name: str) -> Schema:
    """Return the Ibis schema of canonical table `name`."""
    return TABLES[name]
