"""Regulars: an open-source retention engine for online stores.

Import a store's history without losing a row, measure retention, predict
who comes back, and act on it. The public API::

    from regulars import connect, import_shopify_orders
    wh = connect("regulars.duckdb")
    report = import_shopify_orders(wh, "orders_export.csv")
    assert report.rows_read == report.rows_loaded + report.rows_rejected
"""

from __future__ import annotations

from regulars.backends import Warehouse, connect
from regulars.errors import (
    ConfigError,
    FileFormatError,
    InputError,
    RegularsError,
    StoreError,
)
from regulars.ingest.load import import_shopify_customers, import_shopify_orders
from regulars.ingest.report import ImportReport, RejectedRow
from regulars.ingest.tabular import (
    import_customers,
    import_feedback,
    import_orders,
    import_products,
    load_mapping,
)

__all__ = [
    "ConfigError",
    "FileFormatError",
    "ImportReport",
    "InputError",
    "RegularsError",
    "RejectedRow",
    "StoreError",
    "Warehouse",
    "connect",
    "import_customers",
    "import_feedback",
    "import_orders",
    "import_products",
    "import_shopify_customers",
    "import_shopify_orders",
    "load_mapping",
]
__version__ = "0.1.0"
