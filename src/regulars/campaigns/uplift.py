"""`regulars flows report`: what each flow earned, measured against its holdout.

Holdouts are drawn per customer (a hash of flow and customer), so the
customer is the unit compared: a customer belongs to a flow's
``treatment`` group (its messages are written to the outbox) or its
``holdout`` (recorded, never sent), the same on every run. Groups are
compared as assigned (intention to treat): a treatment message that failed
or is still pending stays in the treatment group, so a delivery problem
shows up as less uplift, not as a biased one.

- **decision**: a flow's first-step decision about one trigger occurrence
  of one customer; a customer may have several (one per order, say).
- **window**: from a decision to `conversion_days` later; for a flow with
  later steps, plus the steps' `after_days`, so both groups are watched
  over the whole span the flow can reach a customer.
- **matured**: decisions whose window has closed by `now`. A customer is
  compared when at least one decision has matured, over the union of the
  windows of those decisions; open decisions are counted as ``in_window``.
- **conversion**: at least one counted order (not cancelled, voided or
  expired) of the customer placed in that union. **Orders** and **revenue** (net: after
  refunds) count each order once, however many windows it falls in.
- **uplift**: conversion rate of treatment minus holdout, with Newcombe's
  95% hybrid score interval and the pooled z-test p-value.
- **adjusted p-value**: the flows measured in one report are read together,
  so their p-values are adjusted for it (Holm, `regulars.stats.holm`):
  with five flows and no effect anywhere, at least one of them shows
  p < 0.05 by chance in about one report in five (1 - 0.95^5 = 23%); an
  adjusted p < 0.05 in at most one in twenty.
- **incremental orders / revenue**: (mean per treated customer - mean per
  held-out customer) x compared treated customers, with Welch's 95%
  interval; **per message**: divided by the messages those customers were
  sent (all steps), the figure to set against a per-email response rate.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa
from sqlalchemy import select

from regulars.metrics.base import NOT_COUNTED
from regulars.state.models import Send
from regulars.stats import holm, newcombe, two_proportion_p, welch

if TYPE_CHECKING:
    from regulars.backends import Warehouse
    from regulars.campaigns.flows import Flow, FlowsFile
    from regulars.state.store import StateStore

__all__ = ["MIN_GROUP", "FlowUplift", "flow_uplift", "p_figure", "window_days"]

#: Matured units each group needs before an uplift is estimated.
MIN_GROUP = 20


@dataclass
class FlowUplift:
    """One flow's holdout comparison (see the module docstring for definitions)."""

    flow: str
    type: str
    window_days: int
    min_group: int
    decisions: int
    treatment: int  # customers
    holdout: int  # customers
    sent: int  # messages, all steps
    pending: int
    failed: int
    in_window: int  # decisions whose window is still open
    compared_treatment: int  # customers with a matured decision
    compared_holdout: int
    messages_compared: int  # messages sent to the compared treated customers
    converted_treatment: int
    converted_holdout: int
    rate_treatment: float | None
    rate_holdout: float | None
    uplift: float | None = None
    uplift_low: float | None = None
    uplift_high: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None  # for the flows measured in the same report
    flows_compared: int = 0  # flows measured in the same report
    orders_per_treated: float | None = None
    orders_per_held_out: float | None = None
    incremental_orders: float | None = None
    incremental_orders_low: float | None = None
    incremental_orders_high: float | None = None
    incremental_orders_per_message: float | None = None
    revenue_per_treated: float | None = None
    revenue_per_held_out: float | None = None
    incremental_revenue: float | None = None
    incremental_revenue_low: float | None = None
    incremental_revenue_high: float | None = None

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
                f"{self.flow}: not measured yet: {self.compared_treatment} treated and "
                f"{self.compared_holdout} held-out customers have a closed "
                f"{self.window_days}-day window; each group needs {self.min_group}."
            )
        assert self.uplift is not None and self.uplift_low is not None
        assert self.uplift_high is not None and self.incremental_revenue is not None
        money = f"{currency} " if currency else ""
        return (
            f"{self.flow}: {self.rate_treatment:.1%} of {self.compared_treatment:,} treated vs "
            f"{self.rate_holdout:.1%} of {self.compared_holdout:,} held-out customers ordered "
            f"within {self.window_days} days of a trigger: uplift {self.uplift * 100:+.1f} "
            f"points (95% CI {self.uplift_low * 100:+.1f} to {self.uplift_high * 100:+.1f}); "
            f"{self.incremental_orders:+,.0f} orders ({self.incremental_orders_per_message:+.3f} "
            f"per message) and {money}{self.incremental_revenue:+,.0f} revenue incremental."
            + self._p_sentence()
        )

    def _p_sentence(self) -> str:
        """The p-value, and with several flows measured, adjusted for them."""
        p, adjusted = self.p_value, self.p_adjusted
        if p is None or adjusted is None:
            return ""
        if self.flows_compared <= 1:
            return f" {_p_text(p)}."
        if adjusted < 0.05:
            verdict = "the effect holds."
        elif p < 0.05:
            verdict = "it could be chance."
        else:
            verdict = "no effect shown."
        return (
            f" Adjusted for the {self.flows_compared} flows measured together, "
            f"{_p_text(adjusted)} (Holm; {_p_text(p)} alone): {verdict}"
        )


def p_figure(p: float) -> str:
    """A p-value to three decimals, ``<0.001`` below them."""
    return "<0.001" if p < 0.0005 else f"{p:.3f}"


def _p_text(p: float) -> str:
    figure = p_figure(p)
    return f"p < {figure[1:]}" if figure.startswith("<") else f"p = {figure}"


def window_days(flow: Flow, conversion_days: int) -> int:
    """Days a decision of `flow` is watched for orders: the conversion window,
    plus the later steps' `after_days`."""
    return conversion_days + sum(step.after_days for step in flow.steps)


def _sends(state: StateStore, flow: str) -> list[Send]:
    with state.session() as s:
        rows = list(s.scalars(select(Send).where(Send.flow == flow).order_by(Send.id)))
        s.expunge_all()
    return rows


_WINDOWS = pa.schema(
    [("customer_id", pa.string()), ("start_s", pa.int64()), ("end_s", pa.int64())]
)


def _outcomes(wh: Warehouse, windows: pa.Table) -> dict[str, tuple[int, float]]:
    """Per customer: orders and net revenue placed in any of their windows,
    each order once."""
    w = ibis.memtable(windows)
    o = wh.resolved("orders")
    o = o.filter(o.customer_id.notnull() & ~o.status.isin(NOT_COUNTED))
    o = o.select(
        o_customer=o.customer_id, o_source=o.source, o_id=o.order_id,
        at_s=o.placed_at.epoch_seconds().cast("int64"), net=o.net.cast("float64"),
    )  # fmt: skip
    j = w.join(
        o, [w.customer_id == o.o_customer, o.at_s > w.start_s, o.at_s <= w.end_s]
    )
    once = j.select("customer_id", "o_source", "o_id", "net").distinct()
    agg = once.group_by("customer_id").aggregate(
        orders=once.count(), revenue=once.net.sum()
    )
    return {
        r["customer_id"]: (r["orders"], r["revenue"] or 0.0)
        for r in wh.to_arrow(agg).to_pylist()
    }


def _sums(values: list[float]) -> tuple[float, float, int]:
    return sum(values), sum(v * v for v in values), len(values)


def flow_uplift(
    wh: Warehouse, state: StateStore, flows: FlowsFile, *, now: _dt.datetime,
    min_group: int = MIN_GROUP,
) -> list[FlowUplift]:  # fmt: skip
    """Every flow of the file (and any flow still in the outbox), compared with its
    holdout once each group has `min_group` customers with a matured decision."""
    days = flows.settings.conversion_days
    by_name = {f.name: f for f in flows.flows}
    with state.session() as s:
        in_outbox = sorted(set(s.scalars(select(Send.flow).distinct())))
    names = [f.name for f in flows.flows] + [n for n in in_outbox if n not in by_name]
    now_s = int(now.timestamp())
    results = []
    for name in names:
        flow = by_name.get(name)
        window = window_days(flow, days) if flow else days
        sends = _sends(state, name)
        firsts = [x for x in sends if x.step == 1]
        group: dict[str, str] = {}
        for x in firsts:  # a customer's group is that of their first decision
            group.setdefault(x.customer_id, x.group)
        windows = []
        matured_keys: set[tuple[str, str]] = set()
        for x in firsts:
            start = int(x.decided_at.timestamp())
            if start + window * 86400 <= now_s:
                windows.append(
                    {"customer_id": x.customer_id, "start_s": start,
                     "end_s": start + window * 86400}
                )  # fmt: skip
                matured_keys.add((x.customer_id, x.occurrence))
        outcomes = (
            _outcomes(wh, pa.Table.from_pylist(windows, schema=_WINDOWS))
            if windows
            else {}
        )
        compared = {w["customer_id"] for w in windows}
        groups: dict[str, list[tuple[int, float]]] = {"treatment": [], "holdout": []}
        for customer in sorted(compared):
            groups[group[customer]].append(outcomes.get(customer, (0, 0.0)))
        statuses = {
            k: sum(x.status == k for x in sends) for k in ("sent", "pending", "failed")
        }
        base = {
            "flow": name, "type": flow.type if flow else "?", "window_days": window,
            "min_group": min_group, "decisions": len(firsts),
            "treatment": sum(g == "treatment" for g in group.values()),
            "holdout": sum(g == "holdout" for g in group.values()),
            **statuses, "in_window": len(firsts) - len(windows),
            "messages_compared": sum(
                x.status == "sent" and (x.customer_id, x.occurrence) in matured_keys
                for x in sends
            ),
        }  # fmt: skip
        results.append(_compare(base, groups, min_group=min_group))
    measured = {i: r.p_value for i, r in enumerate(results) if r.p_value is not None}
    for i, p in zip(measured, holm(list(measured.values())), strict=True):
        results[i].p_adjusted = p
    for r in results:
        r.flows_compared = len(measured)
    return results


def _compare(
    base: dict[str, Any], groups: dict[str, list[tuple[int, float]]], *, min_group: int
) -> FlowUplift:
    t, h = groups["treatment"], groups["holdout"]
    n_t, n_h = len(t), len(h)
    x_t = sum(1 for orders, _ in t if orders > 0)
    x_h = sum(1 for orders, _ in h if orders > 0)
    result = FlowUplift(
        **base, compared_treatment=n_t, compared_holdout=n_h,
        converted_treatment=x_t, converted_holdout=x_h,
        rate_treatment=x_t / n_t if n_t else None,
        rate_holdout=x_h / n_h if n_h else None,
    )  # fmt: skip
    if n_t < max(min_group, 2) or n_h < max(min_group, 2):
        return result
    result.uplift, result.uplift_low, result.uplift_high = newcombe(x_t, n_t, x_h, n_h)
    result.p_value = two_proportion_p(x_t, n_t, x_h, n_h)
    o_t, o_h = _sums([o for o, _ in t]), _sums([o for o, _ in h])
    r_t, r_h = _sums([r for _, r in t]), _sums([r for _, r in h])
    mo_t, mo_h, _, olo, ohi = welch(*o_t, *o_h)
    mr_t, mr_h, _, rlo, rhi = welch(*r_t, *r_h)
    result.orders_per_treated, result.orders_per_held_out = mo_t, mo_h
    result.incremental_orders = (mo_t - mo_h) * n_t
    result.incremental_orders_low, result.incremental_orders_high = olo * n_t, ohi * n_t
    messages = base["messages_compared"]
    result.incremental_orders_per_message = (
        result.incremental_orders / messages if messages else None
    )
    result.revenue_per_treated, result.revenue_per_held_out = mr_t, mr_h
    result.incremental_revenue = (mr_t - mr_h) * n_t
    result.incremental_revenue_low, result.incremental_revenue_high = (
        rlo * n_t,
        rhi * n_t,
    )
    return result
