"""Built-in and saved segments, their members at any day, and runs over time.

A segment is a name, a description and a condition in the segment language
(`regulars.segments.language`). Built-in segments ship with Regulars; saved
ones live in the warehouse's `segments` table. `segment_members` turns a
condition into an Ibis table of customers; `refresh_segment` stores a run
and says who entered and who left since the segment's previous run.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa
import pyarrow.compute as pc
from lark import Tree

from regulars.backends import Append, DeleteKeys
from regulars.errors import InputError
from regulars.metrics.base import day_number
from regulars.models.rfm import SEGMENTS as RFM_SEGMENTS
from regulars.segments.features import FIELDS, customer_features, product_purchases
from regulars.segments.language import (
    SegmentError,
    compile_condition,
    parse,
    referenced,
    referenced_fields,
)

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from regulars.backends import Warehouse

__all__ = [
    "BUILTIN",
    "Segment",
    "SegmentRun",
    "Tables",
    "audiences",
    "count_members",
    "delete_segment",
    "find_segment",
    "list_segments",
    "members_of",
    "refresh_segment",
    "refresh_segments",
    "save_segment",
    "segment_history",
    "segment_members",
]


@dataclass(frozen=True)
class Segment:
    """A named condition."""

    name: str
    description: str
    condition: str
    builtin: bool


def _builtin() -> dict[str, Segment]:
    rows = [
        ("one_time_buyers", "Customers with exactly one counted order.", "orders = 1"),
        ("repeat_customers", "Customers with two or more counted orders.", "orders >= 2"),
        ("vip", "The top 10% of scored customers by predicted CLV.", "clv_percentile >= 90"),
        (
            "at_risk",
            (
                "Repeat customers slipping away: two or more orders and P(alive) "
                "from 0.25 to below 0.5 (risk tier at_risk)."
            ),
            'risk_tier = "at_risk" and orders >= 2',
        ),
        ("lost", "Risk tier lost: P(alive) below 0.25.", 'risk_tier = "lost"'),
        ("replenishment_due", ("A product they buy again and again is due: since its "
         "last purchase, 1x to 2x the product's median replenishment interval."),
         "replenishment_due"),
    ]  # fmt: skip
    rows += [
        (f"rfm_{name}", f"RFM segment {name} (docs/rfm.md).", f'rfm_segment = "{name}"')
        for name, *_ in RFM_SEGMENTS
    ]
    return {n: Segment(n, d, c, builtin=True) for n, d, c in rows}


#: Segments every store has.
BUILTIN: dict[str, Segment] = _builtin()

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Tables:
    """The canonical tables a segment reads."""

    orders: ir.Table
    lines: ir.Table
    customers: ir.Table
    scores: ir.Table
    feedback: ir.Table

    @classmethod
    def of(cls, wh: Warehouse) -> Tables:
        """The tables of warehouse `wh`, orders with the columns segments read."""
        return cls(
            wh.resolved("orders", columns=SEGMENT_ORDER_COLUMNS), wh.table("order_lines"),
            wh.resolved("customers"), wh.table("scores"), wh.resolved("feedback"),
        )  # fmt: skip


#: The order columns the segment fields read. Every reader of the orders
#: shares one resolved table, which DuckDB keeps whole while the query runs:
#: at ten million orders all 23 columns took several GB of memory.
SEGMENT_ORDER_COLUMNS = (
    "order_id", "source", "customer_id", "placed_at", "status", "net", "refunded",
    "channel", "coupon_code", "country",
)  # fmt: skip


def _saved(wh: Warehouse) -> dict[str, Segment]:
    rows = wh.to_arrow(wh.table("segments")).to_pylist()
    return {
        r["name"]: Segment(
            r["name"], r["description"] or "", r["condition"], builtin=False
        )
        for r in rows
    }


def list_segments(wh: Warehouse) -> list[Segment]:
    """Built-in segments, then saved ones, each group by name."""
    saved = _saved(wh)
    return [*BUILTIN.values(), *sorted(saved.values(), key=lambda s: s.name)]


def find_segment(wh: Warehouse, name: str) -> Segment:
    """The segment called `name`; `InputError` listing close names if none is."""
    found = {s.name: s for s in list_segments(wh)}
    if name in found:
        return found[name]
    import difflib

    close = difflib.get_close_matches(name, list(found), n=3, cutoff=0.5)
    hint = (f"Did you mean {', '.join(close)}? " if close else "") + (
        "`regulars segments list` shows every segment.")  # fmt: skip
    raise InputError(f"no segment named '{name}'.", hint=hint)


def save_segment(
    wh: Warehouse, name: str, condition: str, *, description: str = "",
    now: _dt.datetime | None = None,
) -> Segment:  # fmt: skip
    """Save (or replace) segment `name` after checking its condition compiles."""
    if not _NAME.match(name):
        raise InputError(
            f"'{name}' cannot name a segment.",
            hint="Use lower-case letters, digits, - and _, starting with a letter.",
        )
    if name in BUILTIN:
        raise InputError(
            f"'{name}' is a built-in segment.", hint="Choose another name."
        )
    now = now or _dt.datetime.now(_dt.UTC)
    # Compiling checks fields, kinds and referenced segments (also for cycles).
    _compile(
        Tables.of(wh),
        condition,
        as_of=now.date(),
        lookup=_lookup(wh, {name: condition}),
        name=name,
    )
    saved = _saved(wh)
    created = now
    if name in saved:
        t = wh.table("segments")
        old = wh.to_arrow(t.filter(t.name == name).select("created_at")).to_pylist()
        created = old[0]["created_at"] if old else now
    row = pa.table({
        "name": [name], "description": [description], "condition": [condition],
        "created_at": pa.array([created], pa.timestamp("us", tz="UTC")),
        "updated_at": pa.array([now], pa.timestamp("us", tz="UTC")),
    })  # fmt: skip
    wh.apply(
        [DeleteKeys("segments", pa.table({"name": [name]})), Append("segments", row)]
    )
    return Segment(name, description, condition, builtin=False)


def delete_segment(wh: Warehouse, name: str) -> None:
    """Delete saved segment `name` (its past runs stay, for the record)."""
    if name in BUILTIN:
        raise InputError(f"'{name}' is a built-in segment and cannot be deleted.")
    if name not in _saved(wh):
        find_segment(wh, name)  # raises with suggestions
    wh.apply([DeleteKeys("segments", pa.table({"name": [name]}))])


def _lookup(
    wh: Warehouse, extra: Mapping[str, str] | None = None
) -> Callable[[str], str | None]:
    conditions = {s.name: s.condition for s in list_segments(wh)}
    conditions.update(extra or {})
    return conditions.get


def _matches(p: ir.Table, product: str) -> ir.BooleanValue:
    text = ibis.literal(product, "string")
    return (
        (p.product_name.lower() == text.lower())
        | (p.product_id == text)
        | (p.sku == text)
    )


def _compile(
    tables: Tables,
    condition: str,
    *,
    as_of: _dt.date,
    lookup: Callable[[str], str | None],
    name: str | None = None,
) -> tuple[ir.Table, ir.BooleanValue]:
    """Features of every customer joined with what the condition's functions
    need, and the condition as a predicate on that table."""
    table, [predicate] = _compile_many(
        tables, [condition], as_of=as_of, lookup=lookup, name=name
    )
    return table, predicate


def _compile_many(
    tables: Tables,
    conditions: list[str],
    *,
    as_of: _dt.date,
    lookup: Callable[[str], str | None],
    name: str | None = None,
    only: ir.Table | None = None,
    fields: Collection[str] | None = None,
) -> tuple[ir.Table, list[ir.BooleanValue]]:
    """`_compile` for several conditions over one features table (of the
    customers in `only` alone, see `customer_features`). With `fields`, the
    table has those fields and the ones the conditions read, not every one."""
    # Keys: an int for each condition given, a segment's name for in_segment().
    trees: dict[str | int, Tree] = {i: parse(c) for i, c in enumerate(conditions)}
    texts: dict[str | int, str] = dict(enumerate(conditions))

    # Resolve in_segment() references, depth first, refusing cycles.
    def visit(key: str | int, chain: tuple[str, ...]) -> None:
        for function, arg in referenced(trees[key]):
            if function != "in_segment":
                continue
            if arg in chain:
                loop = " -> ".join([*chain, arg])
                raise InputError(f"segments refer to each other in a loop: {loop}.")
            if arg not in trees:
                text = lookup(arg)
                if text is None:
                    raise InputError(f"in_segment(\"{arg}\"): no segment named '{arg}'.",
                                     hint="`regulars segments list` shows every segment.")  # fmt: skip
                try:
                    trees[arg] = parse(text)
                except SegmentError as exc:
                    raise InputError(f"segment '{arg}' does not parse: {exc}") from exc
                texts[arg] = text
            visit(arg, (*chain, arg))

    for i in range(len(conditions)):
        visit(i, (name,) if name else ())
    calls = sorted({
        (name, arg) for tree in trees.values() for name, arg in referenced(tree)
        if name != "in_segment"
    })  # fmt: skip
    if fields is not None:
        read = set().union(*[referenced_fields(tree) for tree in trees.values()])
        fields = {*fields, *(read & set(FIELDS))}
    table = customer_features(
        tables.orders, tables.lines, tables.customers, tables.scores, tables.feedback,
        as_of=as_of, only=only, fields=fields,
    )  # fmt: skip
    columns: dict[tuple[str, str], str] = {}
    if calls:
        bought = product_purchases(tables.orders, tables.lines, as_of=as_of, only=only)
        for i, (function, arg) in enumerate(calls):
            if function == "bought_category":
                hit = bought.filter(
                    bought.category.lower() == ibis.literal(arg, "string").lower()
                )
            else:
                hit = bought.filter(_matches(bought, arg))
            agg = hit.group_by("customer_id").aggregate(
                **{f"_f{i}_days": hit.day.nunique(), f"_f{i}_last": hit.day.max()}
            )
            table = table.left_join(agg, "customer_id").drop("customer_id_right")
            columns[(function, arg)] = f"_f{i}"
    today = ibis.literal(day_number(as_of), "int64")
    compiled: dict[str, ir.BooleanValue] = {}

    def call(name: str, arg: str, line: int, column: int) -> tuple[Any, str]:
        del line, column
        if name == "in_segment":
            if arg not in compiled:
                compiled[arg] = ibis.coalesce(
                    compile_condition(texts[arg], table, call=call, tree=trees[arg]),
                    False,
                )
            return compiled[arg], "boolean"
        prefix = columns[(name, arg)]
        days = ibis.coalesce(table[f"{prefix}_days"], 0).cast("int64")
        if name in ("bought", "bought_category"):
            return days > 0, "boolean"
        if name == "times_bought":
            return days, "number"
        return (today - table[f"{prefix}_last"]).cast("int64"), "number"

    predicates = [
        ibis.coalesce(compile_condition(c, table, call=call, tree=trees[i]), False)
        for i, c in enumerate(conditions)
    ]
    return table, predicates


def audiences(
    wh: Warehouse,
    conditions: list[str],
    *,
    as_of: _dt.date,
    columns: list[str],
    only: ir.Table | None = None,
) -> ir.Table:
    """One row per customer in at least one of `conditions` on `as_of`: the
    feature `columns` asked for, and ``_in0``, ``_in1``, ... saying which.

    One query for many conditions (say, the audiences of every flow in a
    run), where `members_of` would build the features once per condition.
    With `only` (a table with a `customer_id` column), among those customers.
    """
    table, predicates = _compile_many(
        Tables.of(wh), conditions, as_of=as_of, lookup=_lookup(wh), only=only,
        fields=columns,
    )  # fmt: skip
    flags = {f"_in{i}": p for i, p in enumerate(predicates)}
    table = table.mutate(**flags)
    any_flag = ibis.or_(*[table[k] for k in flags]) if flags else ibis.literal(False)
    return table.filter(any_flag).select(*columns, *flags)


def segments_of(
    wh: Warehouse, customer_id: str, *, as_of: _dt.date
) -> tuple[dict[str, Any] | None, list[str]]:
    """One customer's feature fields on `as_of` and the segments they are in.

    One query for every segment (built-in, then saved; the RFM segments
    are the `rfm_segment` field), on this customer's features alone: the
    store-wide figures among them (RFM scores, percentiles) are computed
    once, where asking each segment in turn with `members_of` would compute
    them once per segment. Fields are None for someone who is not a
    customer on `as_of`.
    """
    segments = [s for s in list_segments(wh) if not s.name.startswith("rfm_")]
    only = ibis.memtable(
        {"customer_id": [customer_id]}, schema={"customer_id": "string"}
    )
    # "true" first: every customer, in a segment or not.
    table = audiences(wh, ["true", *[s.condition for s in segments]], as_of=as_of,
                      columns=list(FIELDS), only=only)  # fmt: skip
    rows = wh.to_arrow(table).to_pylist()
    if not rows:
        return None, []
    row = rows[0]
    del row["_in0"]
    names = [s.name for i, s in enumerate(segments, 1) if row.pop(f"_in{i}")]
    if row.get("rfm_segment"):
        names.append(f"rfm_{row['rfm_segment']}")
    return row, names


def segment_members(
    tables: Tables,
    condition: str,
    *,
    as_of: _dt.date,
    lookup: Callable[[str], str | None] | None = None,
) -> ir.Table:
    """Customers who meet `condition` on `as_of`, with every feature field.

    Parameters
    ----------
    tables
        The canonical tables (`Tables.of(wh)`).
    condition
        A condition in the segment language.
    as_of
        The day the condition is evaluated on (inclusive).
    lookup
        Condition of a segment by name, for ``in_segment``; default: built-in
        segments only.

    Raises
    ------
    SegmentError
        If the condition does not parse or check, with its position.
    InputError
        If it refers to an unknown segment or segments refer to each other.
    """
    lookup = lookup or (lambda n: BUILTIN[n].condition if n in BUILTIN else None)
    table, predicate = _compile(tables, condition, as_of=as_of, lookup=lookup)
    return table.filter(predicate).select(*FIELDS)


def members_of(wh: Warehouse, condition: str, *, as_of: _dt.date) -> ir.Table:
    """`segment_members` on warehouse `wh`, with its saved segments known."""
    return segment_members(Tables.of(wh), condition, as_of=as_of, lookup=_lookup(wh))


def count_members(wh: Warehouse, condition: str, *, as_of: _dt.date) -> int:
    """How many customers `members_of` gives, computing only the fields
    `condition` reads (see `customer_features`)."""
    found = audiences(wh, [condition], as_of=as_of, columns=["customer_id"])
    return int(wh.scalar(found.count()))


@dataclass(frozen=True)
class SegmentRun:
    """What `refresh_segment` stored."""

    run_id: int
    segment: str
    as_of: _dt.date
    members: int
    entered: int
    left: int
    previous_as_of: _dt.date | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "run_id": self.run_id, "segment": self.segment,
            "as_of": self.as_of.isoformat(), "members": self.members,
            "entered": self.entered, "left": self.left,
            "previous_as_of": self.previous_as_of.isoformat() if self.previous_as_of else None,
        }  # fmt: skip


def refresh_segment(
    wh: Warehouse, name: str, *, as_of: _dt.date, now: _dt.datetime | None = None
) -> SegmentRun:
    """Compute segment `name` on `as_of`, store the run and its members.

    Entered and left compare with the segment's previous run (the latest one
    stored, whatever its day).
    """
    [run] = refresh_segments(wh, [name], as_of=as_of, now=now)
    return run


def refresh_segments(
    wh: Warehouse, names: list[str], *, as_of: _dt.date, now: _dt.datetime | None = None
) -> list[SegmentRun]:
    """`refresh_segment` for each of `names`, their members found in one
    query: the store-wide features are computed once, not once per segment."""
    if not names:
        return []
    segments = [find_segment(wh, name) for name in names]
    found = wh.to_arrow(audiences(
        wh, [s.condition for s in segments], as_of=as_of, columns=["customer_id"]
    ))  # fmt: skip
    runs = []
    for i, segment in enumerate(segments):
        mask = pc.fill_null(found.column(f"_in{i}"), False)
        members = found.filter(mask).select(["customer_id"])
        runs.append(_store_run(wh, segment, members, as_of=as_of, now=now))
    return runs


def _store_run(
    wh: Warehouse, segment: Segment, members: pa.Table, *, as_of: _dt.date,
    now: _dt.datetime | None,
) -> SegmentRun:  # fmt: skip
    """Store a run of `segment` with `members` (``customer_id``)."""
    name = segment.name
    runs = wh.table("segment_runs")
    previous = wh.to_arrow(
        runs.filter(runs.segment == name).order_by(ibis.desc("run_id")).limit(1)
    ).to_pylist()
    now_ids = set(members.column("customer_id").to_pylist())
    before: set[str] = set()
    previous_as_of = None
    if previous:
        m = wh.table("segment_members")
        old = wh.to_arrow(
            m.filter(m.run_id == previous[0]["run_id"]).select("customer_id")
        )
        before = set(old.column("customer_id").to_pylist())
        previous_as_of = previous[0]["as_of"]
    top = wh.scalar(runs.run_id.max())
    run_id = int(top or 0) + 1
    run = SegmentRun(run_id, name, as_of, len(now_ids), len(now_ids - before),
                     len(before - now_ids), previous_as_of)  # fmt: skip
    stamp = _dt.datetime.now(_dt.UTC) if now is None else now
    row = pa.table({
        "run_id": [run_id], "segment": [name], "condition": [segment.condition],
        "as_of": pa.array([as_of], pa.date32()),
        "run_at": pa.array([stamp], pa.timestamp("us", tz="UTC")),
        "members": [run.members], "entered": [run.entered], "left": [run.left],
    })  # fmt: skip
    ids = sorted(now_ids)
    member_rows = pa.table({
        "run_id": pa.array([run_id] * len(ids), pa.int64()),
        "segment": pa.array([name] * len(ids), pa.string()),
        "customer_id": pa.array(ids, pa.string()),
    })  # fmt: skip
    wh.apply([Append("segment_runs", row), Append("segment_members", member_rows)])
    return run


def segment_history(
    wh: Warehouse, name: str, *, limit: int = 10
) -> list[dict[str, Any]]:
    """The latest `limit` runs of segment `name`, newest first."""
    runs = wh.table("segment_runs")
    rows = wh.to_arrow(
        runs.filter(runs.segment == name).order_by(ibis.desc("run_id")).limit(limit)
    ).to_pylist()
    return rows
