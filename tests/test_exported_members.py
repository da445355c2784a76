"""The public API is what `regulars.__all__` says, and all of it exists."""

import regulars

EXPECTED = {
    "ConfigError", "FileFormatError", "ImportReport", "InputError", "RegularsError",
    "RejectedRow", "StoreError", "Warehouse", "connect", "import_customers",
    "import_feedback", "import_orders", "import_products", "import_shopify_customers",
    "import_shopify_orders", "load_mapping",
}  # fmt: skip


def test_all_is_exported():
    assert set(regulars.__all__) == EXPECTED
    for name in regulars.__all__:
        assert getattr(regulars, name) is not None
