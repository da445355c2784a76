"""`regulars flows report`: what each flow earned, measured against its holdout.

The unit is a flow's first-step decision about one trigger occurrence of one
customer: ``treatment`` (a message was written to the outbox) or ``holdout``
(recorded, never sent). Both groups are compared as assigned (intention to
treat): a treatment message that failed or is still pending stays in the
treatment group, so a delivery problem shows up as less uplift, not as a
biased one.

- **window**: from the decision to `conversion_days` later; for a flow with
  later steps, plus the steps' `after_days`, so both groups are watched
  over the whole span the flow can reach a customer.
- **matured**: units whose window has closed by `now`; only they are
  compared. The others are counted as ``in_window``.
- **conversion**: at least one counted order (not cancelled or voided) of
  the customer placed in the window. **Orders** and **revenue** (net: after
  refunds) are the sums over the window.
- **uplift**: conversion rate of treatment minus holdout, with Newcombe's
  95% hybrid score interval and the pooled z-test p-value.
- **incremental orders / revenue**: (mean per treated unit - mean per held
  out unit) x matured treated units, with Welch's 95% interval.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa
from sqlalchemy import func, select

from regulars.metrics.base import NOT_COUNTED
from regulars.state.models import Send
from regulars.stats import newcombe, two_proportion_p, welch

if TYPE_CHECKING:
    from regulars.backends import Warehouse
    from regulars.campaigns.flows import Flow, FlowsFile
    from regulars.state.store import StateStore

__all__ = ["MIN_GROUP", "FlowUplift", "flow_uplift"]

#: Matured units each group needs before an uplift is estimated.
MIN_GROUP = 20


@dataclass
class FlowUplift:
    """One flow's holdout comparison (see the module docstring for definitions)."""

    flow: str
    type: str
    window_days: int
    min_group: int
    eligible: int
    treatment: int
    holdout: int
    sent: int
    pending: int
    failed: int
    in_window: int
    matured_treatment: int
    matured_holdout: int
    converted_treatment: int
    converted_holdout: int
    rate_treatment: float | None
    rate_holdout: float | None
    uplift: float | None
    uplift_low: float | None
    uplift_high: float | None
    p_value: float | None
    orders_per_treated: float | None
    orders_per_held_out: float | None
    incremental_orders: float | None
    incremental_orders_low: float | None
    incremental_orders_high: float | None
    revenue_per_treated: float | None
    revenue_per_held_out: float | None
    incremental_revenue: float | None
    incremental_revenue_low: float | None
    incremental_revenue_high: float | None

    @property
    def measured(self) -> bool:
        return self.uplift is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return asdict(self)

    def sentence(self, currency: str = "") -> str:
        """The finding in words, with its interval and group sizes."""
        if not self.measured:
            return (
                f"{self.flow}: not measured yet: {self.matured_treatment} treated and "
                f"{self.matured_holdout} held-out customers have a closed "
                f"{self.window_days}-day window; each group needs {self.min_group}."
            )
        assert self.uplift is not None and self.uplift_low is not None
        assert self.uplift_high is not None and self.incremental_revenue is not None
        money = f"{currency} " if currency else ""
        return (
            f"{self.flow}: {self.rate_treatment:.1%} of {self.matured_treatment:,} treated vs "
            f"{self.rate_holdout:.1%} of {self.matured_holdout:,} held out ordered within "
            f"{self.window_days} days: uplift {self.uplift * 100:+.1f} points (95% CI "
            f"{self.uplift_low * 100:+.1f} to {self.uplift_high * 100:+.1f}); "
            f"{self.incremental_orders:+,.0f} orders and {money}{self.incremental_revenue:+,.0f} "
            f"revenue incremental."
        )


def _window_days(flow: Flow, conversion_days: int) -> int:
    return conversion_days + sum(step.after_days for step in flow.steps)


def _units(state: StateStore, flow: str) -> list[Send]:
    with state.session() as s:
        rows = list(
            s.scalars(
                select(Send).where(
                    Send.flow == flow, Send.step == 1,
                    Send.group.in_(("treatment", "holdout")),
                )
            )
        )  # fmt: skip
        s.expunge_all()
    return rows


def _statuses(state: StateStore, flow: str) -> dict[str, int]:
    with state.session() as s:
        return dict(
            s.execute(
                select(Send.status, func.count())
                .where(Send.flow == flow)
                .group_by(Send.status)
            ).all()
        )


def _outcomes(wh: Warehouse, units: pa.Table) -> dict[int, tuple[int, float]]:
    """Orders and net revenue of each unit's customer within its window."""
    u = ibis.memtable(units)
    o = wh.resolved("orders")
    o = o.filter(o.customer_id.notnull() & ~o.status.isin(NOT_COUNTED))
    o = o.select(
        o_customer=o.customer_id,
        at_s=o.placed_at.epoch_seconds().cast("int64"),
        net=o.net.cast("float64"),
    )
    j = u.join(
        o, [u.customer_id == o.o_customer, o.at_s > u.start_s, o.at_s <= u.end_s]
    )
    agg = j.group_by("send_id").aggregate(orders=j.count(), revenue=j.net.sum())
    return {
        r["send_id"]: (r["orders"], r["revenue"] or 0.0)
        for r in wh.to_arrow(agg).to_pylist()
    }


def _sums(values: list[float]) -> tuple[float, float, int]:
    return sum(values), sum(v * v for v in values), len(values)


def flow_uplift(
    wh: Warehouse, state: StateStore, flows: FlowsFile, *, now: _dt.datetime,
    min_group: int = MIN_GROUP,
) -> list[FlowUplift]:  # fmt: skip
    """Every flow of the file (and any flow still in the outbox), compared with its
    holdout once each group has `min_group` matured units."""
    days = flows.settings.conversion_days
    by_name = {f.name: f for f in flows.flows}
    with state.session() as s:
        in_outbox = sorted(set(s.scalars(select(Send.flow).distinct())))
    names = [f.name for f in flows.flows] + [n for n in in_outbox if n not in by_name]
    now_s = int(now.timestamp())
    results = []
    for name in names:
        flow = by_name.get(name)
        window = _window_days(flow, days) if flow else days
        units = _units(state, name)
        statuses = _statuses(state, name)
        rows = [
            {
                "send_id": u.id, "customer_id": u.customer_id, "group": u.group,
                "start_s": int(u.decided_at.timestamp()),
                "end_s": int(u.decided_at.timestamp()) + window * 86400,
            }
            for u in units
        ]  # fmt: skip
        matured = [r for r in rows if r["end_s"] <= now_s]
        outcomes = (
            _outcomes(wh, pa.Table.from_pylist(matured, schema=_UNITS))
            if matured
            else {}
        )
        groups: dict[str, list[tuple[int, float]]] = {"treatment": [], "holdout": []}
        for r in matured:
            groups[r["group"]].append(outcomes.get(r["send_id"], (0, 0.0)))
        results.append(
            _compare(
                name, flow.type if flow else "?", window, rows, statuses, groups,
                matured_n=len(matured), min_group=min_group,
            )
        )  # fmt: skip
    return results


_UNITS = pa.schema(
    [("send_id", pa.int64()), ("customer_id", pa.string()), ("group", pa.string()),
     ("start_s", pa.int64()), ("end_s", pa.int64())]
)  # fmt: skip


def _compare(
    name: str, type_: str, window: int, rows: list[dict[str, Any]],
    statuses: dict[str, int], groups: dict[str, list[tuple[int, float]]], *,
    matured_n: int, min_group: int,
) -> FlowUplift:  # fmt: skip
    t, h = groups["treatment"], groups["holdout"]
    n_t, n_h = len(t), len(h)
    x_t = sum(1 for orders, _ in t if orders > 0)
    x_h = sum(1 for orders, _ in h if orders > 0)
    base = {
        "flow": name, "type": type_, "window_days": window, "min_group": min_group,
        "eligible": len(rows),
        "treatment": sum(r["group"] == "treatment" for r in rows),
        "holdout": sum(r["group"] == "holdout" for r in rows),
        "sent": statuses.get("sent", 0), "pending": statuses.get("pending", 0),
        "failed": statuses.get("failed", 0), "in_window": len(rows) - matured_n,
        "matured_treatment": n_t, "matured_holdout": n_h,
        "converted_treatment": x_t, "converted_holdout": x_h,
        "rate_treatment": x_t / n_t if n_t else None,
        "rate_holdout": x_h / n_h if n_h else None,
    }  # fmt: skip
    empty = dict.fromkeys(
        ("uplift", "uplift_low", "uplift_high", "p_value", "orders_per_treated",
         "orders_per_held_out", "incremental_orders", "incremental_orders_low",
         "incremental_orders_high", "revenue_per_treated", "revenue_per_held_out",
         "incremental_revenue", "incremental_revenue_low", "incremental_revenue_high"),
    )  # fmt: skip
    if n_t < max(min_group, 2) or n_h < max(min_group, 2):
        return FlowUplift(**base, **empty)
    d, lo, hi = newcombe(x_t, n_t, x_h, n_h)
    o_t, o_h = _sums([o for o, _ in t]), _sums([o for o, _ in h])
    r_t, r_h = _sums([r for _, r in t]), _sums([r for _, r in h])
    mo_t, mo_h, _, olo, ohi = welch(*o_t, *o_h)
    mr_t, mr_h, _, rlo, rhi = welch(*r_t, *r_h)
    return FlowUplift(
        **base, uplift=d, uplift_low=lo, uplift_high=hi,
        p_value=two_proportion_p(x_t, n_t, x_h, n_h),
        orders_per_treated=mo_t, orders_per_held_out=mo_h,
        incremental_orders=(mo_t - mo_h) * n_t,
        incremental_orders_low=olo * n_t, incremental_orders_high=ohi * n_t,
        revenue_per_treated=mr_t, revenue_per_held_out=mr_h,
        incremental_revenue=(mr_t - mr_h) * n_t,
        incremental_revenue_low=rlo * n_t, incremental_revenue_high=rhi * n_t,
    )  # fmt: skip
