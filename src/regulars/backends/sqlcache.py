"""Ibis writes the SQL of each shape of query once per process.

Writing SQL from an Ibis expression (its ``compile``) is most of the time a
small query takes here: a tiny import spends more than half its time on it,
and the test suite a third of its CPU. Most of those queries have been
written before in the same process: an import runs the same steps on each
file, a flow run asks the same questions every day, and a store opened again
reads the same tables. They differ only in the names of the tables an import
works in, which carry a random part (Ibis's in-memory tables and the
import's temporary tables, `regulars.ingest.scratch`), and in which
connection they run on.

`cache_compiles` has a connection look each query's shape up first. The
shape is the expression graph, node by node, with those names replaced by
their order of appearance and each connection by its class; the SQL is kept
with the same names as slots, and filled with the query's own names. Two
queries of one shape differ only in those names, so their SQL differs only
there: the answer is the SQL Ibis would write.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.operations as ops
from ibis.backends import BaseBackend

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["cache_compiles", "scratch_prefix", "shape"]

#: Table names with a random part: those Ibis makes up for in-memory tables
#: (``ibis_pandas_memtable_`` and 26 base-32 characters of a UUID), and the
#: temporary tables an import keeps (`scratch_prefix`, then the step's name).
#: Only those are numbered in a shape; a table named by hand is looked up by
#: its name.
VOLATILE_NAME = re.compile(r"ibis_[a-z_]+_[a-z2-7]{26}\Z|_rg_[0-9a-f]{10}_")


def scratch_prefix() -> str:
    """A new random prefix for the temporary tables of one import
    (`regulars.ingest.scratch.Scratch`), of the form `VOLATILE_NAME` knows."""
    return f"_rg_{uuid.uuid4().hex[:10]}_"


#: Nodes kept, over all shapes, the least recently used shape dropped first:
#: about 370 bytes each, so at most about 75 MB. An import writes about 50
#: shapes of 2,500 nodes in all; the largest query of the report or of a
#: segment is about 1,200 nodes. One that tests membership in a long list of
#: values holds a node per value; over `MAX_NODES_ONE` it is not kept.
MAX_NODES = 200_000
MAX_NODES_ONE = 10_000


class _Ref(int):
    """A node of the shape, by its place in the description."""


def _value(v: Any) -> Any:
    """A node's argument as it goes in the shape: typed, so that values
    Python holds equal but Ibis writes differently (1, 1.0 and True) differ."""
    if type(v) is _Ref:
        return v
    if isinstance(v, tuple):
        return (tuple, tuple(_value(x) for x in v))
    if isinstance(v, dict):
        return (dict, tuple((_value(k), _value(x)) for k, x in v.items()))
    if isinstance(v, BaseBackend):
        return (BaseBackend, type(v))
    return (type(v), v)


def shape(node: ops.Node) -> tuple[tuple[Any, ...], list[str]]:
    """The shape of the graph under `node`, and its volatile table names in
    the order the shape numbers them.

    Each node is described once, in Ibis's topological order, with its
    arguments: nodes under it by their place, values as they are (a literal
    by its type and ``repr``, so 0.0 and -0.0, or one instant in two time
    zones, stay apart), a connection by its class. A table whose name has a
    random part (`VOLATILE_NAME`) is described by the name's place among
    those of the graph instead; an in-memory table by its name and schema,
    not its rows.
    """
    names: dict[str, int] = {}
    parts: list[Any] = []

    def name(table: str) -> Any:
        if VOLATILE_NAME.match(table):
            return names.setdefault(table, len(names))
        return (str, table)

    def describe(node: ops.Node, _results: Any, **kwargs: Any) -> _Ref:
        if isinstance(node, ops.InMemoryTable):
            part: Any = (ops.InMemoryTable, name(node.name), node.schema)
        elif isinstance(node, ops.DatabaseTable):
            part = (type(node), name(node.name), node.schema,
                    _value(node.namespace), type(node.source))  # fmt: skip
        elif isinstance(node, ops.Literal):
            part = (ops.Literal, type(node.value), repr(node.value), node.dtype)
        else:
            part = (type(node), tuple(_value(v) for v in kwargs.values()))
        parts.append(part)
        return _Ref(len(parts) - 1)

    node.map(describe)
    return tuple(parts), list(names)


def _template(sql: str, names: list[str]) -> tuple[str | int, ...]:
    """`sql` cut at each of `names` (longest first, so a name that begins
    another is not taken for it): text, and the number of each name."""
    if not names:
        return (sql,)
    number = {name: i for i, name in enumerate(names)}
    pattern = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    out: list[str | int] = []
    at = 0
    for m in re.finditer(pattern, sql):
        out += [sql[at : m.start()], number[m.group()]]
        at = m.end()
    out.append(sql[at:])
    return tuple(out)


def _fill(template: tuple[str | int, ...], names: list[str]) -> str:
    return "".join(names[p] if type(p) is int else p for p in template)


_shapes: OrderedDict[tuple[Any, ...], tuple[str | int, ...]] = OrderedDict()
_nodes = 0  # kept, over all shapes
_lock = threading.Lock()


def _keep(key: tuple[Any, ...], size: int, template: tuple[str | int, ...]) -> None:
    global _nodes
    if size > MAX_NODES_ONE:
        return
    with _lock:
        if key in _shapes:
            return
        _shapes[key] = template
        _nodes += size
        while _nodes > MAX_NODES:
            old, _ = _shapes.popitem(last=False)
            _nodes -= len(old[-1])


def cache_compiles(con: BaseBackend) -> None:
    """Have Ibis backend `con` write each shape of query once (see the module).

    Queries with parameters are written each time.
    """
    compile_ = con.compile

    def compile_once(
        expr: ir.Expr, /, *, limit: Any = None, params: Any = None,
        pretty: bool = False,
    ) -> str:  # fmt: skip
        if params:
            return compile_(expr, limit=limit, params=params, pretty=pretty)
        parts, names = shape(expr.op())
        options = ibis.options.sql
        key = (type(con), limit, pretty, options.fuse_selects,
               options.default_limit, parts)  # fmt: skip
        with _lock:
            template = _shapes.get(key)
            if template is not None:
                _shapes.move_to_end(key)
        if template is not None:
            return _fill(template, names)
        sql = compile_(expr, limit=limit, pretty=pretty)
        _keep(key, len(parts), _template(sql, names))
        return sql

    con.compile = compile_once  # type: ignore[method-assign]
