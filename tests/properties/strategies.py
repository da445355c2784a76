"""Hypothesis strategies: segment conditions, well-formed and not."""

from __future__ import annotations

from hypothesis import strategies as st

from regulars.segments.catalog import BUILTIN
from regulars.segments.features import FIELDS

NUMBER_FIELDS = [n for n, f in FIELDS.items() if f.kind == "number"]
TEXT_FIELDS = [n for n, f in FIELDS.items() if f.kind == "text"]
BOOL_FIELDS = [n for n, f in FIELDS.items() if f.kind == "boolean"]

# Text that tries to escape its quotes or smuggle SQL in.
_NASTY = [
    "'",
    '"',
    ";",
    "--",
    "/*",
    "DROP TABLE orders",
    "' OR '1'='1",
    "\\",
    "\u00e9",
    "%",
    "_",
]


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# Text in quotes, on one line, without NUL (refused with a position: test_language).
strings = st.lists(
    st.one_of(st.sampled_from(_NASTY), st.text(max_size=4)), max_size=4
).map(
    lambda parts: _quoted(
        "".join(parts).replace("\n", " ").replace("\r", " ").replace("\x00", " ")
    )
)
numbers = st.one_of(
    st.integers(min_value=0, max_value=10_000).map(str),
    st.floats(min_value=0, max_value=1e4, allow_nan=False).map(lambda x: f"{x:.3f}"),
)


def _number_expr() -> st.SearchStrategy[str]:
    leaf = st.one_of(
        st.sampled_from(NUMBER_FIELDS), numbers,
        strings.map(lambda s: f"times_bought({s})"),
        strings.map(lambda s: f"days_since_bought({s})"),
    )  # fmt: skip
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            inner.map(lambda x: f"-{x}"),
        ),
        max_leaves=4,
    )


def _condition_leaf() -> st.SearchStrategy[str]:
    num = _number_expr()
    return st.one_of(
        st.tuples(num, st.sampled_from(["=", "==", "!=", "<>", "<", "<=", ">", ">="]), num)
        .map(" ".join),
        st.tuples(st.sampled_from(TEXT_FIELDS), st.sampled_from(["=", "!="]), strings)
        .map(" ".join),
        st.tuples(st.sampled_from(TEXT_FIELDS), st.sampled_from(["in", "not in"]),
                  st.lists(strings, min_size=1, max_size=3))
        .map(lambda t: f"{t[0]} {t[1]} ({', '.join(t[2])})"),
        st.sampled_from(BOOL_FIELDS),
        st.tuples(st.sampled_from(list(FIELDS)), st.sampled_from(["is null", "is not null"]))
        .map(" ".join),
        strings.map(lambda s: f"bought({s})"),
        strings.map(lambda s: f"bought_category({s})"),
        st.sampled_from(list(BUILTIN)).map(lambda n: f'in_segment("{n}")'),
        st.sampled_from(["true", "false"]),
    )  # fmt: skip


#: Conditions that are right by construction: each must compile and run.
conditions = st.recursive(
    _condition_leaf(),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or", "AND", "Or"]), inner).map(
            lambda t: f"({t[0]}) {t[1]} ({t[2]})"
        ),
        inner.map(lambda x: f"not ({x})"),
    ),
    max_leaves=5,
)

_TOKENS = [
    *FIELDS, "ordrs", "countri", "bought", "in_segment", "(", ")", ",", "and", "or",
    "not", "in", "is", "null", "true", "=", "!=", "<", ">=", "+", "*", "/", "-",
    "1", "2.5", '"DE"', "'x'", '"', "'", "@", ";", "#", "\n",
]  # fmt: skip

#: Any sequence of plausible tokens: most are wrong somewhere.
token_soup = st.lists(st.sampled_from(_TOKENS), min_size=0, max_size=12).map(" ".join)
