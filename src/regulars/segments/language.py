"""The segment language: a condition on customer fields, parsed into Ibis.

A segment is a condition such as::

    orders >= 2 and days_since_last_order > 1.5 * typical_interval
      and bought("Coffee Beans 1kg") and not in_segment("vip")
      and country in ("DE", "AT")

The text is parsed by a Lark LALR grammar into a tree, checked (every field
known, every operator applied to values of the right kind) and compiled into
an Ibis boolean expression over `customer_features`. Nothing is evaluated
and no SQL is written from the text: string literals become Ibis literals,
which the engine receives as quoted values, so quotes, ``;`` or SQL keywords
inside them are only data. Every error names the line and column, shows the
text with a caret and, where it can, suggests the fix.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ibis
from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

from regulars.errors import InputError
from regulars.segments.features import FIELDS, Kind

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["FUNCTIONS", "SegmentError", "compile_condition", "parse", "referenced"]

_GRAMMAR = r"""
?start: or_test

?or_test: and_test
        | or_test _OR and_test              -> or_
?and_test: not_test
         | and_test _AND not_test           -> and_
?not_test: _NOT not_test                    -> not_
         | comparison
?comparison: sum
           | sum COMPARE sum                -> compare
           | sum _IN "(" literals ")"       -> in_
           | sum _NOT _IN "(" literals ")"  -> not_in
           | sum _IS _NULL                  -> is_null
           | sum _IS _NOT _NULL             -> is_not_null
literals: literal ("," literal)*
?literal: NUMBER                            -> number
        | "-" NUMBER                        -> negative_number
        | STRING                            -> string
        | _TRUE                             -> true
        | _FALSE                            -> false
?sum: product
    | sum ADD product                       -> arith
?product: unary
        | product MUL unary                 -> arith
?unary: "-" unary                           -> neg
      | atom
?atom: NUMBER                               -> number
     | STRING                               -> string
     | _TRUE                                -> true
     | _FALSE                               -> false
     | NAME "(" (or_test ("," or_test)*)? ")" -> call
     | NAME                                 -> field
     | "(" or_test ")"

COMPARE: "==" | "!=" | "<>" | "<=" | ">=" | "<" | ">" | "="
ADD: "+" | "-"
MUL: "*" | "/"
_OR: "or"i
_AND: "and"i
_NOT: "not"i
_IN: "in"i
_IS: "is"i
_NULL: "null"i
_TRUE: "true"i
_FALSE: "false"i
NAME: /[A-Za-z_][A-Za-z0-9_]*/
NUMBER: /(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/
STRING: /"(?:[^"\\\n]|\\.)*"/ | /'(?:[^'\\\n]|\\.)*'/

%import common.WS
%ignore WS
"""

#: name -> (argument description, result kind, meaning), for messages and docs.
FUNCTIONS: dict[str, tuple[str, Kind, str]] = {
    "bought": ("a product", "boolean",
               "bought the product (name, id or SKU) in a counted order up to as_of"),
    "bought_category": ("a category", "boolean",
                        "bought a product of the category (case-insensitive)"),
    "times_bought": ("a product", "number",
                     "days on which the customer bought the product (0 if never)"),
    "days_since_bought": ("a product", "number",
                          ("days since the customer last bought the product "
                          "(empty if never)")),
    "in_segment": ("a segment name", "boolean",
                   "is in the saved or built-in segment"),
}  # fmt: skip

_TOKEN_NAMES = {
    "NAME": "a field name",
    "NUMBER": "a number",
    "STRING": "a quoted text",
    "COMPARE": "a comparison (=, !=, <, <=, >, >=)",
    "ADD": "+ or -",
    "MUL": "* or /",
    "_OR": "or",
    "_AND": "and",
    "_NOT": "not",
    "_IN": "in",
    "_IS": "is",
    "_NULL": "null",
    "_TRUE": "true",
    "_FALSE": "false",
    "LPAR": "(",
    "RPAR": ")",
    "COMMA": ",",
    "MINUS": "-",
    "$END": "the end",
}

_KIND_WORDS = {
    "number": "a number",
    "text": "text",
    "boolean": "a true/false condition",
}


class SegmentError(InputError):
    """A segment condition that cannot be parsed or does not make sense.

    `line` and `column` (1-based) point at the problem in `text`.
    """

    def __init__(self, message: str, *, text: str, line: int, column: int,
                 hint: str | None = None) -> None:  # fmt: skip
        self.text = text
        self.line = line
        self.column_number = column
        lines = text.split("\n")
        shown = lines[min(line, len(lines)) - 1]
        pointer = " " * (column - 1) + "^"
        where = (
            f"line {line}, column {column}" if len(lines) > 1 else f"column {column}"
        )
        body = f"{where}: {message}\n  {shown}\n  {pointer}"
        super().__init__(body + (f"\n{hint}" if hint else ""))
        self.hint = hint


@functools.cache
def _parser() -> Lark:
    return Lark(_GRAMMAR, parser="lalr", propagate_positions=True)


def _position(node: Tree | Token) -> tuple[int, int]:
    if isinstance(node, Token):
        return node.line or 1, node.column or 1
    meta = node.meta
    return getattr(meta, "line", 1), getattr(meta, "column", 1)


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name.lower(), choices, n=1, cutoff=0.6)
    return f", did you mean '{close[0]}'?" if close else "."


def parse(text: str) -> Tree:
    """Parse `text` into a syntax tree, or raise `SegmentError` with its position."""
    if not text.strip():
        raise SegmentError("the condition is empty.", text=text, line=1, column=1,
                           hint='Write a condition, e.g. orders >= 2.')  # fmt: skip
    nul = text.find("\x00")
    if nul >= 0:
        # SQL text ends at it, so no engine could be given it, even in quotes.
        start = text.rfind("\n", 0, nul) + 1
        raise SegmentError(
            "a condition cannot hold the NUL character (\\x00).",
            text=text,
            line=text.count("\n", 0, nul) + 1,
            column=nul - start + 1,
            hint="Remove it; it comes with text copied from a binary file.",
        )
    try:
        return _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None


def _syntax_error(text: str, exc: UnexpectedInput) -> SegmentError:
    line, column = exc.line, exc.column
    if isinstance(exc, UnexpectedEOF) or line in (None, -1):
        lines = text.split("\n")
        line, column = len(lines), len(lines[-1]) + 1
        return SegmentError("the condition ends too early.", text=text, line=line,
                            column=column, hint=_expected(exc))  # fmt: skip
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        if char in "\"'":
            return SegmentError("this quote is never closed.", text=text, line=line,
                                column=column, hint=f"Close the text with {char}.")  # fmt: skip
        return SegmentError(f"unexpected character {char!r}.", text=text, line=line,
                            column=column, hint=_expected(exc))  # fmt: skip
    token = getattr(exc, "token", None)
    if token is not None and token.type == "$END":
        lines = text.split("\n")
        return SegmentError("the condition ends too early.", text=text,
                            line=len(lines), column=len(lines[-1]) + 1,
                            hint=_expected(exc))  # fmt: skip
    shown = str(token) if token is not None else "?"
    return SegmentError(f"unexpected {shown!r}.", text=text, line=line, column=column,
                        hint=_expected(exc))  # fmt: skip


def _expected(exc: UnexpectedInput) -> str | None:
    wanted = sorted({_TOKEN_NAMES.get(t, t) for t in (getattr(exc, "expected", None) or
                                                        getattr(exc, "allowed", None) or [])})  # fmt: skip
    if not wanted:
        return None
    shown = [w if w.startswith(("a ", "+", "*")) else f"'{w}'" for w in wanted]
    return "Expected one of: " + ", ".join(shown) + "."


def _unquote(token: Token) -> str:
    body = str(token)[1:-1]
    out = []
    chars = iter(body)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
        else:
            out.append(ch)
    return "".join(out)


def referenced(tree: Tree) -> list[tuple[str, str]]:
    """Every function call with its text argument in `tree`: ``(name, argument)``."""
    found = []
    for node in tree.iter_subtrees_topdown():
        if node.data == "call":
            name, *args = node.children
            if (
                len(args) == 1
                and isinstance(args[0], Tree)
                and args[0].data == "string"
            ):
                found.append((str(name), _unquote(args[0].children[0])))
    return found


def referenced_fields(tree: Tree) -> set[str]:
    """The field names `tree` reads, as written and lower-cased (a field is
    found either way, see `Compiler`)."""
    names: set[str] = set()
    for node in tree.iter_subtrees_topdown():
        if node.data == "field":
            name = str(node.children[0])
            names |= {name, name.lower()}
    return names


@dataclass
class _Value:
    expr: Any
    kind: Kind
    literal: bool = False


@dataclass
class Compiler:
    """Turns a checked tree into an Ibis predicate on `table`.

    `call` builds the value of a function call (``name, argument``); it
    receives only the names and quoted arguments that `referenced` lists.
    """

    text: str
    table: ir.Table
    call: Callable[[str, str, int, int], _Value | tuple[Any, Kind]]
    fields: Mapping[str, Kind] = field(default_factory=lambda: {
        n: f.kind for n, f in FIELDS.items()})  # fmt: skip

    def error(
        self, node: Tree | Token, message: str, hint: str | None = None
    ) -> SegmentError:
        line, column = _position(node)
        return SegmentError(
            message, text=self.text, line=line, column=column, hint=hint
        )

    def value(self, node: Tree | Token) -> _Value:
        if isinstance(node, Token):  # pragma: no cover - the grammar wraps tokens
            raise self.error(node, f"unexpected {node!s}.")
        handler = getattr(self, f"_{node.data}", None)
        if handler is None:  # pragma: no cover - every rule has a handler
            raise self.error(node, f"cannot use {node.data} here.")
        result: _Value = handler(node)
        return result

    def condition(self, node: Tree) -> ir.BooleanValue:
        v = self.value(node)
        if v.kind != "boolean":
            raise self.error(node, f"a segment must be a condition, not {_KIND_WORDS[v.kind]}.",
                             hint="Compare it with something, e.g. orders >= 2.")  # fmt: skip
        return v.expr

    # literals
    def _number(self, node: Tree) -> _Value:
        text = str(node.children[0])
        number = float(text) if any(c in text for c in ".eE") else int(text)
        if abs(number) > 1e15:  # also infinity, from 1e999
            raise self.error(node, f"{text} is too large a number here.",
                             hint="Numbers up to 10^15 can be compared.")  # fmt: skip
        return _Value(ibis.literal(number), "number", literal=True)

    def _negative_number(self, node: Tree) -> _Value:
        v = self._number(node)
        return _Value(-v.expr, "number", literal=True)

    def _string(self, node: Tree) -> _Value:
        return _Value(
            ibis.literal(_unquote(node.children[0]), "string"), "text", literal=True
        )

    def _true(self, node: Tree) -> _Value:
        return _Value(ibis.literal(True), "boolean", literal=True)

    def _false(self, node: Tree) -> _Value:
        return _Value(ibis.literal(False), "boolean", literal=True)

    # names
    def _field(self, node: Tree) -> _Value:
        name = str(node.children[0])
        kind = self.fields.get(name) or self.fields.get(name.lower())
        if kind is None:
            if name.lower() in FUNCTIONS:
                raise self.error(node, f"'{name}' is a function; call it with an argument, "
                                 f'e.g. {name}("...").')  # fmt: skip
            suggestion = _suggest(name, list(self.fields))
            hint = "See docs/segments.md for the fields."
            if suggestion == ".":
                hint = (
                    f'If you meant the text {name}, put it in quotes: "{name}". ' + hint
                )
            raise self.error(node, f"unknown field '{name}'{suggestion}", hint=hint)
        return _Value(
            self.table[name.lower() if name not in self.fields else name], kind
        )

    def _call(self, node: Tree) -> _Value:
        name_token, *args = node.children
        name = str(name_token).lower()
        if name not in FUNCTIONS:
            raise self.error(
                node,
                f"unknown function '{name_token}'" + _suggest(name, list(FUNCTIONS)),
            )
        what = FUNCTIONS[name][0]
        if len(args) != 1 or not (
            isinstance(args[0], Tree) and args[0].data == "string"
        ):
            raise self.error(node, f"{name}() takes {what} in quotes, "
                             f'e.g. {name}("...").')  # fmt: skip
        line, column = _position(node)
        result = self.call(name, _unquote(args[0].children[0]), line, column)
        if isinstance(result, _Value):
            return result
        expr, kind = result
        return _Value(expr, kind)

    # operators
    def _neg(self, node: Tree) -> _Value:
        v = self.value(node.children[0])
        self._need(node.children[0], v, "number", "-")
        return _Value(-v.expr, "number", literal=v.literal)

    def _arith(self, node: Tree) -> _Value:
        left_node, op, right_node = node.children
        left, right = self.value(left_node), self.value(right_node)
        self._need(left_node, left, "number", str(op))
        self._need(right_node, right, "number", str(op))
        a, b = left.expr, right.expr
        if op == "+":
            expr = a + b
        elif op == "-":
            expr = a - b
        elif op == "*":
            expr = a * b
        else:
            # NULL, not an error, when dividing by zero (Spark's ANSI mode raises).
            expr = a.cast("float64") / b.cast("float64").nullif(0.0)
        return _Value(expr, "number")

    def _compare(self, node: Tree) -> _Value:
        left_node, op_token, right_node = node.children
        op = {"==": "=", "<>": "!="}.get(str(op_token), str(op_token))
        left, right = self.value(left_node), self.value(right_node)
        if left.kind != right.kind:
            raise self.error(
                op_token,
                f"cannot compare {_KIND_WORDS[left.kind]} with {_KIND_WORDS[right.kind]}.",
                hint=self._kind_hint(left_node, left, right),
            )
        if left.kind != "number" and op not in ("=", "!="):
            raise self.error(op_token, f"{op} compares numbers; {_KIND_WORDS[left.kind]} "
                             "can only be compared with = or !=.")  # fmt: skip
        a, b = left.expr, right.expr
        expr = {
            "=": lambda: a == b, "!=": lambda: a != b, "<": lambda: a < b,
            "<=": lambda: a <= b, ">": lambda: a > b, ">=": lambda: a >= b,
        }[op]()  # fmt: skip
        return _Value(expr, "boolean")

    def _kind_hint(self, node: Tree | Token, left: _Value, right: _Value) -> str | None:
        if isinstance(node, Tree) and node.data == "field":
            name = str(node.children[0])
            return f"'{name}' is {_KIND_WORDS[left.kind]}" + (
                "; put text in quotes, e.g. country = \"DE\"." if left.kind == "text"
                else "." if right.kind != "text" else "; write a number without quotes.")  # fmt: skip
        return None

    def _members(self, node: Tree, literals: Tree) -> tuple[_Value, list[Any]]:
        left = self.value(node.children[0])
        values = [self.value(child) for child in literals.children]
        for child, v in zip(literals.children, values, strict=True):
            if v.kind != left.kind:
                raise self.error(child, f"the list mixes {_KIND_WORDS[left.kind]} "
                                 f"with {_KIND_WORDS[v.kind]}.")  # fmt: skip
        return left, [v.expr for v in values]

    def _in_(self, node: Tree) -> _Value:
        left, values = self._members(node, node.children[1])
        return _Value(left.expr.isin(values), "boolean")

    def _not_in(self, node: Tree) -> _Value:
        left, values = self._members(node, node.children[1])
        return _Value(left.expr.notin(values), "boolean")

    def _is_null(self, node: Tree) -> _Value:
        return _Value(self.value(node.children[0]).expr.isnull(), "boolean")

    def _is_not_null(self, node: Tree) -> _Value:
        return _Value(self.value(node.children[0]).expr.notnull(), "boolean")

    def _not_(self, node: Tree) -> _Value:
        v = self.value(node.children[0])
        self._need(node.children[0], v, "boolean", "not")
        return _Value(~v.expr, "boolean")

    def _and_(self, node: Tree) -> _Value:
        return self._logic(node, "and")

    def _or_(self, node: Tree) -> _Value:
        return self._logic(node, "or")

    def _logic(self, node: Tree, op: str) -> _Value:
        left_node, right_node = node.children
        left, right = self.value(left_node), self.value(right_node)
        self._need(left_node, left, "boolean", op)
        self._need(right_node, right, "boolean", op)
        expr = (left.expr & right.expr) if op == "and" else (left.expr | right.expr)
        return _Value(expr, "boolean")

    def _need(self, node: Tree | Token, v: _Value, kind: Kind, op: str) -> None:
        if v.kind != kind:
            example = {"boolean": "orders >= 2", "number": "orders", "text": '"DE"'}[
                kind
            ]
            raise self.error(node, f"{op} needs {_KIND_WORDS[kind]} here, "
                             f"not {_KIND_WORDS[v.kind]} (e.g. {example}).")  # fmt: skip


def compile_condition(
    text: str,
    table: ir.Table,
    *,
    call: Callable[[str, str, int, int], Any],
    tree: Tree | None = None,
) -> ir.BooleanValue:
    """Compile condition `text` into an Ibis boolean expression on `table`.

    Parameters
    ----------
    text
        The condition.
    table
        `customer_features` (or a table with its columns and more).
    call
        Builds function calls: ``call(name, argument, line, column)`` returns
        ``(expression, kind)`` on `table`.
    tree
        The tree of `text` when already parsed.

    Raises
    ------
    SegmentError
        With the position of the first problem.
    """
    tree = tree if tree is not None else parse(text)
    return Compiler(text, table, call).condition(tree)
