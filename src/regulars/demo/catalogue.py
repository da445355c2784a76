"""The demo shop's catalogue and the planted effects of its simulation."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CATALOGUE", "CHANNELS", "COUPONS", "Product"]


@dataclass(frozen=True)
class Product:
    """A product: consumables have a replenishment cycle, durables none."""

    sku: str
    name: str
    category: str
    price: float
    cycle_days: int | None  # natural replenishment cycle; None = bought once
    first_weight: float  # how often it is a first purchase
    dropout_factor: float = 1.0  # planted: multiplies p of customers starting here
    rate_factor: float = 1.0  # planted: multiplies the purchase rate of those customers


CATALOGUE: tuple[Product, ...] = (
    # Planted: buyers who start with the 1 kg beans are loyal (p halved, faster).
    Product("COF-1KG", "Coffee Beans 1kg", "coffee", 24.00, 30, 0.18, 0.5, 1.3),
    Product("ESP-POD50", "Espresso Pods (50)", "coffee", 14.50, 30, 0.12),
    Product("TEA-GRN100", "Grüner Tee 100g", "tea", 9.00, 60, 0.10),
    Product("TEA-BRL", "보리차 Barley Tea", "tea", 7.50, 60, 0.05),
    Product("CARE-DESC", "Descaler, 2-pack", "care", 8.00, 90, 0.05),
    Product("CARE-FILT", "Filter Papers (200)", "care", 5.00, 90, 0.05),
    Product("EQ-GRIND", "Burr Grinder", "equipment", 119.00, None, 0.08),
    Product("EQ-PRESS", "French Press", "equipment", 35.00, None, 0.10),
    Product("EQ-KETTLE", "Gooseneck Kettle", "equipment", 59.00, None, 0.07),
    Product("TW-MUG2", "Mug Set, 2 pcs", "tableware", 25.00, None, 0.08),
    # Planted: the sample box breeds one-time buyers (slow to return, p x2.4).
    Product("SMP-BOX", "Sample Box", "sampler", 12.00, None, 0.12, 2.4, 0.3),
)

#: channel -> (share of new customers, multiplier on the dropout probability p)
CHANNELS: dict[str, tuple[float, float]] = {
    "organic": (0.30, 0.8),
    "google": (0.25, 1.0),
    "instagram": (0.20, 1.4),
    "newsletter": (0.10, 0.7),
    "affiliate": (0.15, 1.3),
}

#: first-order coupon -> (share, discount rate, multiplier on p, multiplier on rate)
COUPONS: dict[str, tuple[float, float, float, float]] = {
    "": (0.60, 0.0, 1.0, 1.0),
    "WELCOME10": (0.25, 0.10, 1.0, 1.0),
    # Planted: a deep first-order discount brings customers who return less.
    "WELCOME30": (0.15, 0.30, 1.7, 0.75),
}
