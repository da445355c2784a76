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

import csv
import datetime as _dt
import hashlib
import json
import os
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from regulars.demo.catalogue import CATALOGUE, CHANNELS, COUPONS

__all__ = ["SHOPIFY_ORDER_HEADER", "DemoConfig", "DemoFiles", "simulate", "write_demo_files"]

SHOPIFY_ORDER_HEADER = (
    "Name,Email,Financial Status,Paid at,Fulfillment Status,Fulfilled at,Accepts Marketing,"
    "Currency,Subtotal,Shipping,Taxes,Total,Discount Code,Discount Amount,Shipping Method,"
    "Created at,Lineitem quantity,Lineitem name,Lineitem price,Lineitem compare at price,"
    "Lineitem sku,Lineitem requires shipping,Lineitem taxable,Lineitem fulfillment status,"
    "Billing Name,Billing Street,Billing Address1,Billing Address2,Billing Company,"
    "Billing City,Billing Zip,Billing Province,Billing Country,Billing Phone,Shipping Name,"
    "Shipping Street,Shipping Address1,Shipping Address2,Shipping Company,Shipping City,"
    "Shipping Zip,Shipping Province,Shipping Country,Shipping Phone,Notes,Note Attributes,"
    "Cancelled at,Payment Method,Payment Reference,Refunded Amount,Vendor,Outstanding Balance,"
    "Employee,Location,Device ID,Id,Tags,Risk Level,Source,Lineitem discount,Tax 1 Name,"
    "Tax 1 Value,Tax 2 Name,Tax 2 Value,Tax 3 Name,Tax 3 Value,Tax 4 Name,Tax 4 Value,"
    "Tax 5 Name,Tax 5 Value,Phone,Receipt Number,Duties,Billing Province Name,"
    "Shipping Province Name,Payment ID,Payment Terms Name,Next Payment Due At,Payment References"
).split(",")
CUSTOMER_HEADER = (
    "First Name,Last Name,Email,Accepts Email Marketing,Company,Address1,Address2,City,"
    "Province,Province Code,Country,Country Code,Zip,Phone,Accepts SMS Marketing,"
    "Total Spent,Total Orders,Tags,Note,Tax Exempt"
).split(",")

_FIRST = ["Anna", "Jonas", "Lea", "Lukas", "Mia", "Paul", "Emma", "Ben", "Sofia", "Noah",
          "Jürgen", "Zoë", "Minji", "Seo-yeon", "Olivia", "Liam", "Chloé", "Mateo"]  # fmt: skip
_LAST = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
         "Kim", "Lee", "Park", "Smith", "Jones", "García", "Dubois", "O'Neill"]  # fmt: skip
_COUNTRIES = ["DE", "DE", "DE", "DE", "AT", "CH", "NL", "FR", "KR", "US"]
_STREETS = ["Hauptstraße 5, Hinterhaus", "Lindenallee 12", "Am Markt 3", "Gangnam-daero 396"]


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


def _customer_ids(emails: list[str]) -> list[str]:
    # Same rule as regulars.ingest.parse.customer_id_from, in plain Python.
    return ["c_" + hashlib.sha256(f"email:{e}".encode()).hexdigest()[:16] for e in emails]


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
    weight = np.where(month == 11, 1.7, np.where(month == 12, 2.0, 1.0)) * (1 + days / end_day)
    arrival = rng.choice(days, size=n, p=weight / weight.sum()) + rng.random(n)

    names = list(CHANNELS)
    channel = rng.choice(len(names), size=n, p=[CHANNELS[c][0] for c in names])
    first_w = np.array([p.first_weight for p in CATALOGUE])
    first_product = rng.choice(len(CATALOGUE), size=n, p=first_w / first_w.sum())
    codes = list(COUPONS)
    coupon = rng.choice(len(codes), size=n, p=[COUPONS[c][0] for c in codes])

    consumable_first = np.array([CATALOGUE[i].cycle_days is not None for i in first_product])
    mean_days = np.where(consumable_first, config.mean_days_consumable, config.mean_days_durable)
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
    cust_a, when_a, order_idx, rating_a = (x[order] for x in (cust_a, when_a, order_idx, rating_a))
    n_orders = np.bincount(cust_a, minlength=n)

    first_names = rng.choice(_FIRST, size=n)
    last_names = rng.choice(_LAST, size=n)
    emails = [f"{f.lower()}.{ln.lower()}.{i}@example.com".replace(" ", "").replace("'", "")
              for i, (f, ln) in enumerate(zip(first_names, last_names, strict=True))]  # fmt: skip
    customers = pa.table({
        "customer_id": _customer_ids(emails),
        "email": emails,
        "first_name": first_names, "last_name": last_names,
        "country": rng.choice(_COUNTRIES, size=n),
        "accepts_marketing": rng.random(n) < 0.6,
        "arrival_day": arrival,
        "arrived_at": [start + _dt.timedelta(days=float(d)) for d in arrival],
        "channel": [names[c] for c in channel],
        "first_product": [CATALOGUE[i].sku for i in first_product],
        "coupon": [codes[c] for c in coupon],
        "rate_per_day": rate,
        "p_dropout": p,
        "died_day": died,
        "alive_at_end": np.isnan(died),
        "n_orders": n_orders,
        "staple": [CATALOGUE[i].sku for i in staple],
    })  # fmt: skip
    orders = pa.table({
        "customer": cust_a, "day": when_a, "index": order_idx, "rating": rating_a,
        "placed_at": [start + _dt.timedelta(days=float(d)) for d in when_a],
    })  # fmt: skip
    return {"customers": customers, "orders": orders, "start": start, "first": first_product,
            "staple": staple, "coupon": coupon, "channel": channel}  # type: ignore[dict-item]


def _money(x: np.ndarray) -> list[str]:
    return [f"{v:.2f}" for v in x]


def write_demo_files(config: DemoConfig, out_dir: str) -> DemoFiles:
    """Simulate the store and write Shopify exports, catalogue, feedback and truth.

    Files written in `out_dir`: ``orders_export.csv`` and
    ``customers_export.csv`` (Shopify layouts), ``products.csv``,
    ``feedback.csv``, and ``truth/`` with the simulation's ground truth.
    """
    os.makedirs(os.path.join(out_dir, "truth"), exist_ok=True)
    sim = simulate(config)
    rng = np.random.default_rng(config.seed + 1)
    cust_t: pa.Table = sim["customers"]
    ords: pa.Table = sim["orders"]
    n_ord = ords.num_rows
    cust = ords.column("customer").to_numpy()
    idx = ords.column("index").to_numpy()
    first = np.asarray(sim["first"])
    staple = np.asarray(sim["staple"])
    coupon_i = np.asarray(sim["coupon"])
    codes = list(COUPONS)

    # Lines: order 0 holds the first product; repeats the staple (80%) or any product.
    n_cat = len(CATALOGUE)
    main = np.where(idx == 0, first[cust],
                    np.where(rng.random(n_ord) < 0.8, staple[cust], rng.integers(0, n_cat, n_ord)))  # fmt: skip
    extra = np.where(rng.random(n_ord) < 0.3, rng.integers(0, n_cat, n_ord), -1)
    extra = np.where(extra == main, -1, extra)
    line_order = np.concatenate([np.arange(n_ord), np.flatnonzero(extra >= 0)])
    line_prod = np.concatenate([main, extra[extra >= 0]])
    sort = np.argsort(line_order, kind="stable")
    line_order, line_prod = line_order[sort], line_prod[sort]
    qty = np.where(rng.random(line_order.size) < 0.2, 2, 1)
    price = np.array([p.price for p in CATALOGUE])[line_prod]
    subtotal_gross = np.bincount(line_order, weights=qty * price, minlength=n_ord)

    rate = np.array([COUPONS[c][1] for c in codes])[coupon_i[cust]]
    code = np.array(codes, dtype=object)[coupon_i[cust]]
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

    emails = np.array(cust_t.column("email").to_pylist(), dtype=object)[cust]
    messy = rng.random(n_ord)
    emails = np.where(messy < 0.08, [f"  {e.upper()} " for e in emails], emails)
    phone = np.array([f"+49 30 {1000000 + c}" for c in cust], dtype=object)
    no_email = messy > 0.99
    emails = np.where(no_email, "", emails)
    no_phone = messy > 0.997
    phone = np.where(no_phone, "", phone)
    names = [f"{f} {ln}" for f, ln in zip(cust_t.column("first_name").to_pylist(),
                                         cust_t.column("last_name").to_pylist(), strict=True)]  # fmt: skip
    bill_name = np.array(names, dtype=object)[cust]
    country = np.array(cust_t.column("country").to_pylist(), dtype=object)[cust]
    accepts = np.where(np.array(cust_t.column("accepts_marketing").to_pylist())[cust], "yes", "no")
    channel = np.array(cust_t.column("channel").to_pylist(), dtype=object)[cust]
    notes = np.array([f"utm_source: {c}\nutm_campaign: {c}-{int(d // 91)}" for c, d in
                      zip(channel, ords.column("day").to_numpy(), strict=True)], dtype=object)  # fmt: skip

    placed = pa.array(ords.column("placed_at").to_pylist(), pa.timestamp("s", tz="UTC"))
    local = placed.cast(pa.timestamp("s", tz=config.timezone))
    created = pc.strftime(local, format="%Y-%m-%d %H:%M:%S %z").to_numpy(zero_copy_only=False)
    cancelled_local = pc.strftime(
        pc.add(local, pa.scalar(86400, pa.duration("s"))), format="%Y-%m-%d %H:%M:%S %z"
    ).to_numpy(zero_copy_only=False)
    cancelled = np.where(status == "cancelled", cancelled_local, "")
    name = np.array([f"#{1001 + i}" for i in range(n_ord)], dtype=object)

    # Malformed rows, the kinds real exports have; recorded in the truth.
    bad = rng.random(n_ord) < config.malformed_share
    bad_kind = np.where(bad, rng.integers(0, 4, n_ord), -1)
    created = np.where(bad_kind == 0, "31/02/2024", created)
    total_txt = np.where(bad_kind == 1, [f"{t:.2f}".replace(".", ",") for t in total], _money(total))

    head = np.ones(line_order.size, dtype=bool)
    head[1:] = line_order[1:] != line_order[:-1]
    o = line_order

    def order_col(values: np.ndarray) -> pa.Array:
        col = np.where(head, np.asarray(values, dtype=object)[o], None)
        return pa.array(col, pa.string())

    qty_txt = np.where((bad_kind[o] == 2) & head, "-1", qty.astype(str))
    name_col = np.where((bad_kind[o] == 3), "", name[o])
    cols = {h: pa.nulls(line_order.size, pa.string()) for h in SHOPIFY_ORDER_HEADER}
    cols.update({
        "Name": pa.array(name_col, pa.string()),
        "Email": order_col(emails),
        "Financial Status": order_col(fin),
        "Accepts Marketing": order_col(accepts),
        "Currency": order_col(np.full(n_ord, config.currency, dtype=object)),
        "Subtotal": order_col(_money(subtotal)),
        "Shipping": order_col(_money(shipping)),
        "Taxes": order_col(_money(tax)),
        "Total": order_col(total_txt),
        "Discount Code": order_col(code),
        "Discount Amount": order_col(_money(discount)),
        "Created at": order_col(created),
        "Lineitem quantity": pa.array(qty_txt, pa.string()),
        "Lineitem name": pa.array([CATALOGUE[i].name for i in line_prod], pa.string()),
        "Lineitem price": pa.array(_money(price), pa.string()),
        "Lineitem sku": pa.array([CATALOGUE[i].sku for i in line_prod], pa.string()),
        "Billing Name": order_col(bill_name),
        "Billing Street": order_col(rng.choice(_STREETS, n_ord)),
        "Billing Zip": order_col(np.array([f"'{z:05d}" for z in rng.integers(1000, 99999, n_ord)])),
        "Billing Country": order_col(country),
        "Phone": order_col(phone),
        "Note Attributes": order_col(notes),
        "Cancelled at": order_col(cancelled),
        "Refunded Amount": order_col(_money(refunded)),
        "Id": order_col(np.array([str(5_000_000_000 + i) for i in range(n_ord)], dtype=object)),
        "Source": order_col(np.full(n_ord, "web", dtype=object)),
    })  # fmt: skip
    # Empty text means "no value", as in Shopify's files.
    table = pa.table({h: pc.if_else(pc.equal(c, ""), None, c) if c.null_count < len(c) else c
                      for h, c in cols.items()})  # fmt: skip
    orders_path = os.path.join(out_dir, "orders_export.csv")
    _write_csv(table, orders_path, bom=True)

    customers_path = os.path.join(out_dir, "customers_export.csv")
    _write_customers(cust_t, customers_path)
    products_path = os.path.join(out_dir, "products.csv")
    with open(products_path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["product_id", "sku", "product_name", "category"])
        for prod in CATALOGUE:
            writer.writerow([prod.sku, prod.sku, prod.name, prod.category])

    feedback_path = os.path.join(out_dir, "feedback.csv")
    rating = ords.column("rating").to_numpy()
    rated = np.flatnonzero((rating > 0) & ~bad & ~no_email)
    with open(feedback_path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["feedback_id", "email", "order_id", "submitted_at", "rating", "comment"])
        for i in rated:
            when = ords.column("placed_at")[int(i)].as_py() + _dt.timedelta(days=9)
            writer.writerow([f"fb-{i}", emails[i].strip().lower(), name[i],
                             when.strftime("%Y-%m-%dT%H:%M:%SZ"), int(rating[i]),
                             "Zu langsam geliefert" if rating[i] <= 2 else "Lecker!"])  # fmt: skip

    truth_dir = os.path.join(out_dir, "truth")
    import pyarrow.parquet as pq

    pq.write_table(cust_t, os.path.join(truth_dir, "customers.parquet"))
    truth_orders = pa.table({
        "order_id": name, "customer_id": np.array(cust_t.column("customer_id").to_pylist(),
                                                  dtype=object)[cust],
        "placed_at": placed, "order_index": idx, "status": status,
        "malformed": bad, "no_email": no_email, "no_phone": no_phone, "rating": rating,
        "subtotal": subtotal, "refunded": refunded,
    })  # fmt: skip
    pq.write_table(truth_orders, os.path.join(truth_dir, "orders.parquet"))
    params = asdict(config)
    params["end"] = config.end.isoformat()
    params["start"] = sim["start"].isoformat()
    params["planted"] = {
        "first_product_dropout_factor": {p.sku: p.dropout_factor for p in CATALOGUE},
        "channel_dropout_factor": {c: v[1] for c, v in CHANNELS.items()},
        "coupon": {c: {"discount": v[1], "dropout_factor": v[2], "rate_factor": v[3]}
                   for c, v in COUPONS.items()},
        "bad_rating_extra_dropout": config.bad_rating_dropout,
        "replenishment_cycle_days": {p.sku: p.cycle_days for p in CATALOGUE if p.cycle_days},
    }  # fmt: skip
    params["expected_rejected_orders"] = int(bad.sum())
    with open(os.path.join(truth_dir, "params.json"), "w", encoding="utf-8") as handle:
        json.dump(params, handle, indent=2, ensure_ascii=False)
    return DemoFiles(orders_path, customers_path, products_path, feedback_path, truth_dir,
                     int(line_order.size))  # fmt: skip


def _write_csv(table: pa.Table, path: str, *, bom: bool) -> None:
    import pyarrow.csv as pacsv

    with open(path, "wb") as handle:
        if bom:
            handle.write("\ufeff".encode())
        pacsv.write_csv(table, handle, pacsv.WriteOptions(quoting_style="needed"))


def _write_customers(cust_t: pa.Table, path: str) -> None:
    n = cust_t.num_rows
    accepts = ["yes" if a else "no" for a in cust_t.column("accepts_marketing").to_pylist()]
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
