"""Simulate a direct-to-consumer coffee shop and write it as Shopify exports.

The simulation is a heterogeneous "buy till you die" process (the BG/NBD
story of Fader, Hardie & Lee 2005), with effects planted on top so that
later analyses have something true to find:

- customers arrive with seasonality (November/December peaks), through
  channels of different quality (`catalogue.CHANNELS`);
- each customer orders as a Poisson process with a gamma-distributed rate
  (faster for customers who start on a consumable) and, after every repeat
  order, drops out with a beta-distributed probability p;
- the first product, the first-order coupon and the channel multiply p
  (`catalogue.CATALOGUE`, `COUPONS`, `CHANNELS`); a bad rating (1-2 stars)
  after an order adds a 50% chance of leaving right there;
- consumables are re-bought on their orders, durables once;
- refunds, cancellations, guest checkouts with messy emails, orders with
  no email, and a small share of malformed rows.

Everything the simulation knows is saved beside the files (``truth/``) so
tests can check that analyses recover it.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from regulars.demo.catalogue import CATALOGUE, CHANNELS, COUPONS

__all__ = [
    "SHOPIFY_ORDER_HEADER",
    "DemoConfig",
    "DemoFiles",
    "simulate",
    "write_demo_files",
]

# Shopify's exports start with a byte-order mark.
_BOM = "\ufeff".encode()

SHOPIFY_ORDER_HEADER = [
    "Name",
    "Email",
    "Financial Status",
    "Paid at",
    "Fulfillment Status",
    "Fulfilled at",
    "Accepts Marketing",
    "Currency",
    "Subtotal",
    "Shipping",
    "Taxes",
    "Total",
    "Discount Code",
    "Discount Amount",
    "Shipping Method",
    "Created at",
    "Lineitem quantity",
    "Lineitem name",
    "Lineitem price",
    "Lineitem compare at price",
    "Lineitem sku",
    "Lineitem requires shipping",
    "Lineitem taxable",
    "Lineitem fulfillment status",
    "Billing Name",
    "Billing Street",
    "Billing Address1",
    "Billing Address2",
    "Billing Company",
    "Billing City",
    "Billing Zip",
    "Billing Province",
    "Billing Country",
    "Billing Phone",
    "Shipping Name",
    "Shipping Street",
    "Shipping Address1",
    "Shipping Address2",
    "Shipping Company",
    "Shipping City",
    "Shipping Zip",
    "Shipping Province",
    "Shipping Country",
    "Shipping Phone",
    "Notes",
    "Note Attributes",
    "Cancelled at",
    "Payment Method",
    "Payment Reference",
    "Refunded Amount",
    "Vendor",
    "Outstanding Balance",
    "Employee",
    "Location",
    "Device ID",
    "Id",
    "Tags",
    "Risk Level",
    "Source",
    "Lineitem discount",
    "Tax 1 Name",
    "Tax 1 Value",
    "Tax 2 Name",
    "Tax 2 Value",
    "Tax 3 Name",
    "Tax 3 Value",
    "Tax 4 Name",
    "Tax 4 Value",
    "Tax 5 Name",
    "Tax 5 Value",
    "Phone",
    "Receipt Number",
    "Duties",
    "Billing Province Name",
    "Shipping Province Name",
    "Payment ID",
    "Payment Terms Name",
    "Next Payment Due At",
    "Payment References",
]
CUSTOMER_HEADER = [
    "First Name",
    "Last Name",
    "Email",
    "Accepts Email Marketing",
    "Company",
    "Address1",
    "Address2",
    "City",
    "Province",
    "Province Code",
    "Country",
    "Country Code",
    "Zip",
    "Phone",
    "Accepts SMS Marketing",
    "Total Spent",
    "Total Orders",
    "Tags",
    "Note",
    "Tax Exempt",
]

_FIRST = ["Anna", "Jonas", "Lea", "Lukas", "Mia", "Paul", "Emma", "Ben", "Sofia", "Noah",
          "Jürgen", "Zoë", "Minji", "Seo-yeon", "Olivia", "Liam", "Chloé", "Mateo"]  # fmt: skip
_LAST = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
         "Kim", "Lee", "Park", "Smith", "Jones", "García", "Dubois", "O'Neill"]  # fmt: skip
_COUNTRIES = ["DE", "DE", "DE", "DE", "AT", "CH", "NL", "FR", "KR", "US"]
_STREETS = [
    "Hauptstraße 5, Hinterhaus",
    "Lindenallee 12",
    "Am Markt 3",
    "Gangnam-daero 396",
]


@dataclass(frozen=True)
class DemoConfig:
    """Parameters of the simulated store; the same config gives the same files.

    Attributes
    ----------
    r, alpha
        Gamma heterogeneity of purchase rates: shape r; mean inter-order days
        `mean_days_consumable` or `mean_days_durable` by first product.
    a, b
        Beta heterogeneity of the dropout probability p.
    """

    n_customers: int = 20_000
    seed: int = 7
    end: _dt.date = _dt.date(2026, 11, 21)
    years: float = 3.0
    r: float = 0.6
    mean_days_consumable: float = 60.0
    mean_days_durable: float = 150.0
    a: float = 1.2
    b: float = 4.0
    bad_rating_dropout: float = 0.5
    rating_share: float = 0.15
    malformed_share: float = 0.002
    currency: str = "EUR"
    timezone: str = "Europe/Berlin"


@dataclass(frozen=True)
class DemoFiles:
    """Paths of the files written by `write_demo_files`."""

    orders: str
    customers: str
    products: str
    feedback: str
    truth_dir: str
    n_order_rows: int
    #: Every orders export written, `orders` first (see `part_orders`).
    order_parts: tuple[str, ...] = ()


def _customer_ids(emails: list[str]) -> list[str]:
    # Same rule as regulars.ingest.parse.customer_id_from, in plain Python.
    return [
        "c_" + hashlib.sha256(f"email:{e}".encode()).hexdigest()[:16] for e in emails
    ]


def _timestamps(start: _dt.datetime, days: np.ndarray) -> pa.Array:
    """UTC timestamps (whole seconds) `days` after `start`, without Python objects."""
    base = np.datetime64(start.replace(tzinfo=None), "s")
    seconds = (np.asarray(days) * 86400).astype("int64").astype("timedelta64[s]")
    return pa.array(base + seconds).cast(pa.timestamp("s", tz="UTC"))


def simulate(config: DemoConfig) -> dict[str, pa.Table]:
    """Run the simulation; return ``customers``, ``orders`` and ``lines`` truth tables."""
    rng = np.random.default_rng(config.seed)
    n = config.n_customers
    end_day = float(config.years * 365.25)
    start = _dt.datetime.combine(config.end, _dt.time()) + _dt.timedelta(days=1) \
        - _dt.timedelta(days=end_day)  # fmt: skip

    # Arrivals: daily weights with November/December peaks and slow growth.
    days = np.arange(int(end_day))
    month = np.array([(start + _dt.timedelta(days=int(d))).month for d in days])
    weight = np.where(month == 11, 1.7, np.where(month == 12, 2.0, 1.0)) * (
        1 + days / end_day
    )
    arrival = rng.choice(days, size=n, p=weight / weight.sum()) + rng.random(n)

    names = list(CHANNELS)
    channel = rng.choice(len(names), size=n, p=[CHANNELS[c][0] for c in names])
    first_w = np.array([p.first_weight for p in CATALOGUE])
    first_product = rng.choice(len(CATALOGUE), size=n, p=first_w / first_w.sum())
    codes = list(COUPONS)
    coupon = rng.choice(len(codes), size=n, p=[COUPONS[c][0] for c in codes])

    consumable_first = np.array(
        [CATALOGUE[i].cycle_days is not None for i in first_product]
    )
    mean_days = np.where(
        consumable_first, config.mean_days_consumable, config.mean_days_durable
    )
    rate = rng.gamma(config.r, 1.0 / (config.r * mean_days))  # orders per day
    rate *= np.array([COUPONS[codes[c]][3] for c in coupon])
    rate *= np.array([CATALOGUE[i].rate_factor for i in first_product])
    p = rng.beta(config.a, config.b, size=n)
    p *= np.array([CATALOGUE[i].dropout_factor for i in first_product])
    p *= np.array([CHANNELS[names[c]][1] for c in channel])
    p *= np.array([COUPONS[codes[c]][2] for c in coupon])
    p = np.clip(p, 0.0, 0.97)

    # Staple consumable re-bought on repeat orders.
    consumables = [i for i, prod in enumerate(CATALOGUE) if prod.cycle_days]
    staple = np.where(consumable_first, first_product, rng.choice(consumables, size=n))

    # Buy till you die, vectorised over the customers still alive.
    cust, when, bad_rating, rating = [], [], [], []
    t = arrival.copy()
    active = np.arange(n)
    died = np.full(n, np.nan)
    k = 0
    while active.size:
        rated = rng.random(active.size) < config.rating_share
        stars = np.where(rated, rng.choice([1, 2, 3, 4, 5], size=active.size,
                                           p=[0.06, 0.06, 0.13, 0.30, 0.45]), 0)  # fmt: skip
        cust.append(active)
        when.append(t[active])
        rating.append(stars)
        bad = rated & (stars <= 2)
        bad_rating.append(bad)
        leave = np.zeros(active.size, dtype=bool)
        if k > 0:  # BG/NBD: dropout may follow each repeat purchase
            leave = rng.random(active.size) < p[active]
        leave |= bad & (rng.random(active.size) < config.bad_rating_dropout)
        died[active[leave]] = t[active[leave]]
        active = active[~leave]
        t[active] += rng.exponential(1.0 / rate[active])
        active = active[t[active] < end_day]
        k += 1
    cust_a = np.concatenate(cust)
    when_a = np.concatenate(when)
    order_idx = np.concatenate([np.full(c.size, i) for i, c in enumerate(cust)])
    rating_a = np.concatenate(rating)
    order = np.lexsort((cust_a, when_a))
    cust_a, when_a, order_idx, rating_a = (
        x[order] for x in (cust_a, when_a, order_idx, rating_a)
    )
    n_orders = np.bincount(cust_a, minlength=n)

    first_names = rng.choice(_FIRST, size=n)
    last_names = rng.choice(_LAST, size=n)
    emails = [f"{f.lower()}.{ln.lower()}.{i}@example.com".replace(" ", "").replace("'", "")
              for i, (f, ln) in enumerate(zip(first_names, last_names, strict=True))]  # fmt: skip
    skus = np.array([prod.sku for prod in CATALOGUE])
    customers = pa.table({
        "customer_id": _customer_ids(emails),
        "email": emails,
        "first_name": first_names, "last_name": last_names,
        "country": rng.choice(_COUNTRIES, size=n),
        "accepts_marketing": rng.random(n) < 0.6,
        "arrival_day": arrival,
        "arrived_at": _timestamps(start, arrival),
        "channel": np.array(names)[channel],
        "first_product": skus[first_product],
        "coupon": np.array(codes)[coupon],
        "rate_per_day": rate,
        "p_dropout": p,
        "died_day": died,
        "alive_at_end": np.isnan(died),
        "n_orders": n_orders,
        "staple": skus[staple],
    })  # fmt: skip
    orders = pa.table({
        "customer": cust_a, "day": when_a, "index": order_idx, "rating": rating_a,
        "placed_at": _timestamps(start, when_a),
    })  # fmt: skip
    return {
        "customers": customers,
        "orders": orders,
        "start": start,
        "first": first_product,
        "staple": staple,
        "coupon": coupon,
        "channel": channel,
    }  # type: ignore[dict-item]


def _money(x: np.ndarray) -> np.ndarray:
    """Amounts as text with two decimals, vectorised."""
    cents = np.round(np.asarray(x) * 100).astype(np.int64)
    sign = np.where(cents < 0, "-", "")
    cents = np.abs(cents)
    whole = (cents // 100).astype(str)
    frac = np.char.zfill((cents % 100).astype(str), 2)
    return np.char.add(np.char.add(np.char.add(sign, whole), "."), frac).astype(object)


def write_demo_files(
    config: DemoConfig,
    out_dir: str,
    *,
    chunk_orders: int = 250_000,
    part_orders: int = 1_000_000,
) -> DemoFiles:
    """Simulate the store and write Shopify exports, catalogue, feedback and truth.

    Files written in `out_dir`: ``orders_export.csv`` and
    ``customers_export.csv`` (Shopify layouts), ``products.csv``,
    ``feedback.csv``, and ``truth/`` with the simulation's ground truth.
    Orders are written `chunk_orders` at a time, so memory stays bounded for
    stores of millions of customers. Past `part_orders` orders (rounded up to
    whole chunks) the orders export continues in ``orders_export_2.csv``,
    ``orders_export_3.csv``, ..., in date order, as a merchant exports a long
    history in parts; each part is imported on its own.
    """
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    truth_dir = os.path.join(out_dir, "truth")
    os.makedirs(truth_dir, exist_ok=True)
    sim = simulate(config)
    cust_t: pa.Table = sim["customers"]
    ords: pa.Table = sim["orders"]
    n_ord = ords.num_rows
    lookups = _CustomerLookups(cust_t, sim)

    feedback_path = os.path.join(out_dir, "feedback.csv")
    n_lines = n_bad = 0
    per_part = max(1, -(-part_orders // chunk_orders))  # whole chunks per part
    parts = _OrderParts(out_dir)
    with contextlib.ExitStack() as stack:
        stack.callback(parts.close)
        feedback_out = stack.enter_context(open(feedback_path, "wb"))
        writers: dict[str, object] = {}
        for chunk_no, a in enumerate(range(0, n_ord, chunk_orders)):
            b = min(a + chunk_orders, n_ord)
            rng = np.random.default_rng([config.seed + 1, chunk_no])
            table, feedback, truth, n_bad_chunk = _order_chunk(
                config, ords.slice(a, b - a), lookups, rng, first_name=1001 + a
            )
            if chunk_no % per_part == 0:
                parts.start(table.schema)
            if "feedback" not in writers:
                writers["feedback"] = pacsv.CSVWriter(feedback_out, feedback.schema)
                writers["truth"] = pq.ParquetWriter(
                    os.path.join(truth_dir, "orders.parquet"), truth.schema
                )
            parts.write(table)
            writers["feedback"].write_table(feedback)  # type: ignore[attr-defined]
            writers["truth"].write_table(truth)  # type: ignore[attr-defined]
            n_lines += table.num_rows
            n_bad += n_bad_chunk
        for writer in writers.values():
            writer.close()  # type: ignore[attr-defined]
    if not parts.paths:  # a store without orders: an export with nothing in it
        parts.paths.append(os.path.join(out_dir, "orders_export.csv"))
        with open(parts.paths[0], "wb") as empty:
            empty.write(_BOM)

    customers_path = os.path.join(out_dir, "customers_export.csv")
    _write_customers(cust_t, customers_path)
    products_path = os.path.join(out_dir, "products.csv")
    with open(products_path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["product_id", "sku", "product_name", "category"])
        for prod in CATALOGUE:
            writer.writerow([prod.sku, prod.sku, prod.name, prod.category])

    pq.write_table(cust_t, os.path.join(truth_dir, "customers.parquet"))
    params = asdict(config)
    params["end"] = config.end.isoformat()
    params["start"] = sim["start"].isoformat()
    params["planted"] = {
        "first_product": {p.sku: {"dropout_factor": p.dropout_factor, "rate_factor": p.rate_factor}
                          for p in CATALOGUE},
        "channel_dropout_factor": {c: v[1] for c, v in CHANNELS.items()},
        "coupon": {c: {"discount": v[1], "dropout_factor": v[2], "rate_factor": v[3]}
                   for c, v in COUPONS.items()},
        "bad_rating_extra_dropout": config.bad_rating_dropout,
        "replenishment_cycle_days": {p.sku: p.cycle_days for p in CATALOGUE if p.cycle_days},
    }  # fmt: skip
    params["expected_rejected_orders"] = n_bad
    with open(os.path.join(truth_dir, "params.json"), "w", encoding="utf-8") as handle:
        json.dump(params, handle, indent=2, ensure_ascii=False)
    return DemoFiles(
        parts.paths[0], customers_path, products_path, feedback_path, truth_dir,
        n_lines, tuple(parts.paths),
    )  # fmt: skip


class _OrderParts:
    """The orders export as Shopify splits a long history: ``orders_export.csv``,
    then ``orders_export_2.csv``, ... Each part's file is closed when the next
    one starts."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self.paths: list[str] = []
        self._file: Any = None
        self._writer: Any = None

    def start(self, schema: pa.Schema) -> None:
        """Close the current part and open the next, header included."""
        import pyarrow.csv as pacsv

        self.close()
        n = len(self.paths) + 1
        name = "orders_export.csv" if n == 1 else f"orders_export_{n}.csv"
        self.paths.append(os.path.join(self.out_dir, name))
        self._file = open(self.paths[-1], "wb")  # noqa: SIM115 -- closed in close()
        self._file.write(_BOM)
        self._writer = pacsv.CSVWriter(self._file, schema)

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._file.close()
            self._writer = self._file = None


class _CustomerLookups:
    """Per-customer arrays that order rows are taken from by customer index."""

    def __init__(self, cust_t: pa.Table, sim: dict[str, object]) -> None:
        self.email = np.array(cust_t.column("email").to_pylist(), dtype=object)
        self.customer_id = np.array(
            cust_t.column("customer_id").to_pylist(), dtype=object
        )
        first = (
            cust_t.column("first_name").to_numpy(zero_copy_only=False).astype(object)
        )
        last = cust_t.column("last_name").to_numpy(zero_copy_only=False).astype(object)
        self.bill_name = first + " " + last
        self.country = (
            cust_t.column("country").to_numpy(zero_copy_only=False).astype(object)
        )
        self.accepts = np.where(
            cust_t.column("accepts_marketing").to_numpy(zero_copy_only=False),
            "yes",
            "no",
        )
        self.channel = (
            cust_t.column("channel").to_numpy(zero_copy_only=False).astype(object)
        )
        self.first = np.asarray(sim["first"])
        self.staple = np.asarray(sim["staple"])
        self.coupon = np.asarray(sim["coupon"])


def _text(values: np.ndarray) -> pa.Array:
    """Object/str array to Arrow text with empty strings as NULL (Shopify's blanks)."""
    arr = pa.array(values, pa.string())
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


def _order_chunk(
    config: DemoConfig,
    ords: pa.Table,
    lk: _CustomerLookups,
    rng: np.random.Generator,
    *,
    first_name: int,
) -> tuple[pa.Table, pa.Table, pa.Table, int]:
    """Shopify rows, feedback rows and truth rows for a slice of the orders."""
    n_ord = ords.num_rows
    cust = ords.column("customer").to_numpy()
    idx = ords.column("index").to_numpy()
    codes = list(COUPONS)

    # Lines: order 0 holds the first product; repeats the staple (80%) or any product.
    n_cat = len(CATALOGUE)
    main = np.where(idx == 0, lk.first[cust],
                    np.where(rng.random(n_ord) < 0.8, lk.staple[cust], rng.integers(0, n_cat, n_ord)))  # fmt: skip
    extra = np.where(rng.random(n_ord) < 0.3, rng.integers(0, n_cat, n_ord), -1)
    extra = np.where(extra == main, -1, extra)
    line_order = np.concatenate([np.arange(n_ord), np.flatnonzero(extra >= 0)])
    line_prod = np.concatenate([main, extra[extra >= 0]])
    sort = np.argsort(line_order, kind="stable")
    line_order, line_prod = line_order[sort], line_prod[sort]
    qty = np.where(rng.random(line_order.size) < 0.2, 2, 1)
    price = np.array([p.price for p in CATALOGUE])[line_prod]
    subtotal_gross = np.bincount(line_order, weights=qty * price, minlength=n_ord)

    rate = np.array([COUPONS[c][1] for c in codes])[lk.coupon[cust]]
    code = np.array(codes, dtype=object)[lk.coupon[cust]]
    loyal = (idx > 0) & (rng.random(n_ord) < 0.05)
    rate = np.where(idx == 0, rate, np.where(loyal, 0.05, 0.0))
    code = np.where(idx == 0, code, np.where(loyal, "LOYAL5", ""))
    discount = np.round(subtotal_gross * rate, 2)
    subtotal = np.round(subtotal_gross - discount, 2)
    shipping = np.where(subtotal >= 40, 0.0, 4.90)
    tax = np.round(subtotal * 0.07, 2)
    total = np.round(subtotal + shipping + tax, 2)

    u = rng.random(n_ord)
    status = np.select([u < 0.015, u < 0.045, u < 0.075, u < 0.085],
                       ["cancelled", "refunded", "partially_refunded", "pending"], "paid")  # fmt: skip
    refunded = np.select([status == "refunded", status == "partially_refunded"],
                         [total, np.round(total * rng.uniform(0.2, 0.5, n_ord), 2)], 0.0)  # fmt: skip
    fin = np.where(status == "cancelled", "voided", status)

    emails = lk.email[cust]
    messy = rng.random(n_ord)
    upper = np.char.upper(emails[messy < 0.08].astype(str)).astype(object)
    emails = emails.copy()
    emails[messy < 0.08] = "  " + upper + " "
    no_email = messy > 0.99
    no_phone = messy > 0.997
    emails[no_email] = ""
    phone = np.char.add("+49 30 ", (1_000_000 + cust).astype(str)).astype(object)
    phone[no_phone] = ""
    channel = lk.channel[cust]
    days = ords.column("day").to_numpy()
    notes = ("utm_source: " + channel + "\nutm_campaign: " + channel + "-"
             + (days // 91).astype(int).astype(str).astype(object))  # fmt: skip

    placed = (
        ords.column("placed_at").combine_chunks()
        if isinstance(ords.column("placed_at"), pa.ChunkedArray)
        else ords.column("placed_at")
    )
    local = placed.cast(pa.timestamp("s", tz=config.timezone))
    created = pc.strftime(local, format="%Y-%m-%d %H:%M:%S %z").to_numpy(
        zero_copy_only=False
    )
    cancelled_local = pc.strftime(
        pc.add(local, pa.scalar(86400, pa.duration("s"))), format="%Y-%m-%d %H:%M:%S %z"
    ).to_numpy(zero_copy_only=False)
    cancelled = np.where(status == "cancelled", cancelled_local, "")
    name = np.char.add("#", (first_name + np.arange(n_ord)).astype(str)).astype(object)

    # Malformed rows, the kinds real exports have; recorded in the truth.
    bad = rng.random(n_ord) < config.malformed_share
    bad_kind = np.where(bad, rng.integers(0, 4, n_ord), -1)
    created = np.where(bad_kind == 0, "31/02/2024", created)
    total_txt = _money(total)
    total_txt = np.where(
        bad_kind == 1,
        np.char.replace(total_txt.astype(str), ".", ",").astype(object),
        total_txt,
    )

    head = np.ones(line_order.size, dtype=bool)
    head[1:] = line_order[1:] != line_order[:-1]
    o = line_order

    def order_col(values: np.ndarray) -> pa.Array:
        col = np.where(head, np.asarray(values, dtype=object)[o], "")
        return _text(col)

    qty_txt = np.where((bad_kind[o] == 2) & head, "-1", qty.astype(str))
    name_col = np.where((bad_kind[o] == 3), "", name[o])
    skus = np.array([p.sku for p in CATALOGUE], dtype=object)
    product_names = np.array([p.name for p in CATALOGUE], dtype=object)
    zips = np.char.add(
        "'", np.char.zfill(rng.integers(1000, 99999, n_ord).astype(str), 5)
    ).astype(object)
    n_rows = line_order.size
    cols = {h: pa.nulls(n_rows, pa.string()) for h in SHOPIFY_ORDER_HEADER}
    cols.update({
        "Name": _text(name_col),
        "Email": order_col(emails),
        "Financial Status": order_col(fin),
        "Accepts Marketing": order_col(lk.accepts[cust]),
        "Currency": order_col(np.full(n_ord, config.currency, dtype=object)),
        "Subtotal": order_col(_money(subtotal)),
        "Shipping": order_col(_money(shipping)),
        "Taxes": order_col(_money(tax)),
        "Total": order_col(total_txt),
        "Discount Code": order_col(code),
        "Discount Amount": order_col(_money(discount)),
        "Created at": order_col(created),
        "Lineitem quantity": _text(qty_txt),
        "Lineitem name": _text(product_names[line_prod]),
        "Lineitem price": _text(_money(price)),
        "Lineitem sku": _text(skus[line_prod]),
        "Billing Name": order_col(lk.bill_name[cust]),
        "Billing Street": order_col(np.array(_STREETS, dtype=object)[rng.integers(0, len(_STREETS), n_ord)]),
        "Billing Zip": order_col(zips),
        "Billing Country": order_col(lk.country[cust]),
        "Phone": order_col(phone),
        "Note Attributes": order_col(notes),
        "Cancelled at": order_col(cancelled),
        "Refunded Amount": order_col(_money(refunded)),
        "Id": order_col((5_000_000_000 + first_name + np.arange(n_ord)).astype(str)),
        "Source": order_col(np.full(n_ord, "web", dtype=object)),
    })  # fmt: skip
    table = pa.table(cols)

    rating = ords.column("rating").to_numpy()
    rated = np.flatnonzero((rating > 0) & ~bad & ~no_email)
    when = pc.add(placed.take(pa.array(rated)), pa.scalar(9 * 86400, pa.duration("s")))
    feedback = pa.table({
        "feedback_id": _text(np.char.add("fb-", (first_name - 1001 + rated).astype(str)).astype(object)),
        "email": _text(np.char.lower(np.char.strip(emails[rated].astype(str))).astype(object)),
        "order_id": _text(name[rated]),
        "submitted_at": pc.strftime(when, format="%Y-%m-%dT%H:%M:%SZ"),
        "rating": pa.array(rating[rated].astype("int64")),
        "comment": _text(np.where(rating[rated] <= 2, "Zu langsam geliefert", "Lecker!").astype(object)),
    })  # fmt: skip
    truth = pa.table({
        "order_id": pa.array(name, pa.string()),
        "customer_id": pa.array(lk.customer_id[cust], pa.string()),
        "placed_at": placed, "order_index": idx, "status": status,
        "malformed": bad, "no_email": no_email, "no_phone": no_phone, "rating": rating,
        "subtotal": subtotal, "refunded": refunded,
    })  # fmt: skip
    return table, feedback, truth, int(bad.sum())


def _write_csv(table: pa.Table, path: str, *, bom: bool) -> None:
    import pyarrow.csv as pacsv

    with open(path, "wb") as handle:
        if bom:
            handle.write(_BOM)
        pacsv.write_csv(table, handle, pacsv.WriteOptions(quoting_style="needed"))


def _write_customers(cust_t: pa.Table, path: str) -> None:
    n = cust_t.num_rows
    accepts = [
        "yes" if a else "no" for a in cust_t.column("accepts_marketing").to_pylist()
    ]
    cols = {h: pa.nulls(n, pa.string()) for h in CUSTOMER_HEADER}
    cols.update({
        "First Name": cust_t.column("first_name").cast(pa.string()),
        "Last Name": cust_t.column("last_name").cast(pa.string()),
        "Email": cust_t.column("email"),
        "Accepts Email Marketing": pa.array(accepts, pa.string()),
        "Country Code": cust_t.column("country").cast(pa.string()),
        "Phone": pa.array([f"+49 30 {1000000 + i}" for i in range(n)], pa.string()),
    })  # fmt: skip
    _write_csv(pa.table(cols), path, bom=True)
