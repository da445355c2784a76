"""Deterministic identity resolution: records that share an identifier are one customer.

A *record* is what an importer keyed: every order, customer row, piece of
feedback and event carries the ``customer_id`` its importer gave it (the id
in the file, else a hash of the email, else of the phone). Records are joined
into one customer when they share a link key (`regulars.identity.keys`): the
same email under the store's rules, the same phone in E.164, or a
probabilistic match the user switched on. The groups are the connected
components of the graph of records and keys, so a guest order with only a
phone and an account with that phone and an email end up one customer.

The resolved customer id of a group is its smallest record id, so it does not
depend on the order files were imported in. Rules the user adds
(`identity_rules`) undo wrong merges: ``ignore`` stops an identifier from
linking anyone (a shared family phone), ``separate`` keeps a record alone.
An identifier shared by more than `IdentitySettings.max_shared` records (a
shop's own phone typed into guest checkouts, say) links nobody either, and is
reported.

`resolve` is pure (Arrow in, Arrow out) and is what the tests pin;
`resolve_store` reads the warehouse, resolves and rewrites ``identity_map``
and ``identities`` in one atomic apply. Analyses read records through
`Warehouse.resolved`, which swaps each record id for its customer's.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from regulars.backends import Append, Replace
from regulars.errors import InputError
from regulars.identity.keys import email_keys, phone_keys
from regulars.schema import TABLES

if TYPE_CHECKING:
    from regulars.backends import Change, Warehouse

__all__ = [
    "RESOLVED_THROUGH",
    "IdentitySettings",
    "Resolution",
    "Rule",
    "add_rule",
    "drop_rule",
    "ignored_identifiers",
    "is_stale",
    "record_identifiers",
    "record_keys",
    "resolve",
    "resolve_store",
    "rules_of",
    "settings_changes",
    "settings_of",
]

#: Meta keys of the settings (the `meta` table).
_PLUS_TAGS = "identity.plus_tags"
_COUNTRY = "identity.default_country"
_MAX_SHARED = "identity.max_shared"
_THRESHOLD = "identity.match_threshold"
#: Meta key: the newest import whose records are linked.
RESOLVED_THROUGH = "identity.resolved_through_import"

RULE_KINDS = ("ignore", "separate")


@dataclass(frozen=True)
class IdentitySettings:
    """How records are linked.

    Attributes
    ----------
    plus_tags
        Keep ``+tags`` in emails (``anna+shop@x.com`` is then someone else);
        default false: the tag is ignored.
    default_country
        ISO 3166 code (``DE``) for phone numbers written without a country
        code; None links such numbers only on identical digits.
    max_shared
        An identifier shared by more records than this links none of them.
    match_threshold
        Probability (0-1) above which two records with no shared identifier
        but a matching name, address and postcode are linked; None (the
        default) switches probabilistic matching off.
    """

    plus_tags: bool = False
    default_country: str | None = None
    max_shared: int = 20
    match_threshold: float | None = None


def settings_of(wh: Warehouse) -> IdentitySettings:
    """The store's identity settings (defaults where unset)."""
    meta = wh.meta()
    threshold = meta.get(_THRESHOLD)
    return IdentitySettings(
        plus_tags=meta.get(_PLUS_TAGS, "ignore") == "keep",
        default_country=meta.get(_COUNTRY) or None,
        max_shared=int(meta.get(_MAX_SHARED, IdentitySettings.max_shared)),
        match_threshold=float(threshold) if threshold else None,
    )


def settings_changes(settings: IdentitySettings) -> list[Change]:
    """The changes that store `settings`.

    Raises
    ------
    InputError
        If a value is out of range or the country code is unknown.
    """
    import phonenumbers

    country = settings.default_country
    if country is not None and (country.upper() not in phonenumbers.SUPPORTED_REGIONS):
        raise InputError(
            f"'{country}' is not a country code phone numbers know.",
            hint="Use a two-letter ISO 3166 code such as DE, GB or US.",
        )
    if settings.max_shared < 2:
        raise InputError("--max-shared must be at least 2.")
    t = settings.match_threshold
    if t is not None and not 0.5 <= t < 1:
        raise InputError(
            f"a match threshold of {t} is out of range.",
            hint="Give a probability from 0.5 to 0.999, e.g. 0.95; 'off' switches matching off.",
        )
    from regulars.backends import Warehouse

    return Warehouse.set_meta({
        _PLUS_TAGS: "keep" if settings.plus_tags else "ignore",
        _COUNTRY: (country or "").upper(),
        _MAX_SHARED: str(settings.max_shared),
        _THRESHOLD: "" if t is None else repr(t),
    })  # fmt: skip


@dataclass(frozen=True)
class Rule:
    """A user's rule: `kind` ``ignore`` (identifier) or ``separate`` (record)."""

    rule_id: int
    kind: str
    value: str
    note: str | None
    created_at: _dt.datetime | None


def rules_of(wh: Warehouse) -> list[Rule]:
    """The store's identity rules, oldest first."""
    rows = wh.to_arrow(wh.table("identity_rules").order_by("rule_id")).to_pylist()
    return [Rule(**r) for r in rows]


def _rule_value(kind: str, value: str) -> str:
    value = value.strip()
    if kind == "separate":
        if not value:
            raise InputError("give the record id to keep separate.")
        return value
    prefix, sep, rest = value.partition(":")
    if not sep and "@" in value:
        prefix, rest = "email", value
    elif not sep and value.lstrip("+").isdigit():
        prefix, rest = "phone", value
    prefix = prefix.strip().lower()
    if prefix == "email":
        key = email_keys(pa.array([rest]), plus_tags=True)[0].as_py()
        if key:
            return f"email:{key}"
    elif prefix == "phone":
        return f"phone:{rest.strip().replace(' ', '')}"
    raise InputError(
        f"'{value}' is not an identifier.",
        hint="Write email:anna@example.com or phone:+4930123456, as `regulars "
        "customer explain` lists them.",
    )


def add_rule(wh: Warehouse, kind: str, value: str, note: str | None = None) -> Rule:
    """Store a rule; it takes effect at the next `resolve_store`.

    Raises
    ------
    InputError
        If `kind` is unknown or `value` is not an identifier (for ``ignore``).
    """
    if kind not in RULE_KINDS:
        raise InputError(f"unknown rule kind '{kind}'.", hint="Use ignore or separate.")
    value = _rule_value(kind, value)
    rules = rules_of(wh)
    for rule in rules:
        if rule.kind == kind and rule.value == value:
            return rule
    rule = Rule(
        rule_id=max((r.rule_id for r in rules), default=0) + 1, kind=kind, value=value,
        note=note, created_at=_dt.datetime.now(_dt.UTC),
    )  # fmt: skip
    data = pa.Table.from_pylist([rule.__dict__])
    wh.apply([Append("identity_rules", data)])
    return rule


def drop_rule(wh: Warehouse, rule_id: int) -> Rule:
    """Remove rule `rule_id`; it stops applying at the next `resolve_store`.

    Raises
    ------
    InputError
        If there is no such rule.
    """
    rules = rules_of(wh)
    hit = [r for r in rules if r.rule_id == rule_id]
    if not hit:
        raise InputError(
            f"there is no identity rule {rule_id}.",
            hint="`regulars identity rules` lists them.",
        )
    kept = pa.Table.from_pylist([r.__dict__ for r in rules if r.rule_id != rule_id])
    wh.apply([Replace("identity_rules", kept)])
    return hit[0]


def record_identifiers(
    wh: Warehouse, among: pa.Array | pa.ChunkedArray | None = None
) -> pa.Table:
    """Every (record_id, email, phone) combination in orders and customer rows.

    With `among`, only those of these record ids.
    """
    wanted = None
    if among is not None:
        wanted = ibis.memtable(pa.table({"customer_id": pc.unique(among)}))
    parts = []
    for name in ("orders", "customers"):
        t = wh.table(name)
        if wanted is not None:
            t = t.semi_join(wanted, "customer_id")
        parts.append(
            t.filter(t.customer_id.notnull()).select(
                record_id=t.customer_id, email=t.email, phone=t.phone
            )
        )
    return wh.to_arrow(ibis.union(*parts, distinct=True))


def record_keys(records: pa.Table, settings: IdentitySettings) -> pa.Table:
    """The distinct link keys (``source, source_key``) of `records`
    (``record_id, email, phone`` rows), as `resolve` derives them."""
    _, kinds, keys, _ = _edges(records, np.zeros(records.num_rows, np.int64), settings)
    pairs = pa.table({"source": kinds, "source_key": keys})
    return pairs.group_by(["source", "source_key"]).aggregate([])


@dataclass
class Resolution:
    """The outcome of `resolve`.

    Attributes
    ----------
    identity_map
        ``record_id, customer_id, linked_by`` for records joined to a customer
        whose id is another record's.
    identities
        ``source, source_key, customer_id``: every identifier and its customer.
    records, customers
        How many records there are and how many customers they make.
    ignored
        Identifiers that link nobody, with why (rule or too widely shared).
    partial
        The records are those an import touched and the records that share
        an identifier with them (`regulars.identity.incremental`), not the
        whole store.
    """

    identity_map: pa.Table
    identities: pa.Table
    records: int
    customers: int
    ignored: dict[str, str] = field(default_factory=dict)
    partial: bool = False

    @property
    def merged(self) -> int:
        """Records joined to another record's customer."""
        return self.identity_map.num_rows

    def counted(self, count: str) -> str:
        """A count of this outcome as text: `count` is ``records``,
        ``customers`` or ``merged`` (as records): "1 record", "3 customers"."""
        n = getattr(self, count)
        word = "customer" if count == "customers" else "record"
        return f"{n:,} {word}{'' if n == 1 else 's'}"


#: Why a record is in its group, as bits; `linked_by` spells the set out.
_LABELS = ("email", "email without +tag", "phone", "name and address match")


def _edges(
    records: pa.Table, rec: np.ndarray, settings: IdentitySettings
) -> tuple[np.ndarray, pa.Array, pa.Array, np.ndarray]:
    """Every identifier on every record: (record index, kind, link key, label bit).

    `rec` holds the index of each row's record id among the sorted ids.
    """
    rec = pa.array(rec)
    email = records.column("email")
    ekeys = email_keys(email, plus_tags=settings.plus_tags)
    pkeys = phone_keys(
        records.column("phone"), default_country=settings.default_country
    )
    has_e = pc.is_valid(ekeys)
    has_p = pc.is_valid(pkeys)
    tagged = pc.not_equal(pc.utf8_lower(pc.utf8_trim_whitespace(email)), ekeys)
    e_bits = np.where(pc.filter(tagged, has_e).to_numpy(zero_copy_only=False), 2, 1)
    n_e = int(pc.sum(has_e).as_py() or 0)
    n_p = int(pc.sum(has_p).as_py() or 0)
    rows = np.concatenate([
        pc.filter(rec, has_e).to_numpy(zero_copy_only=False),
        pc.filter(rec, has_p).to_numpy(zero_copy_only=False),
    ]).astype(np.int64)  # fmt: skip
    kinds = pa.concat_arrays([
        pa.array(["email"] * n_e, pa.string()), pa.array(["phone"] * n_p, pa.string()),
    ])  # fmt: skip
    keys = pa.concat_arrays([
        _flat(pc.filter(ekeys, has_e)), _flat(pc.filter(pkeys, has_p)),
    ])  # fmt: skip
    bits = np.concatenate([e_bits, np.full(n_p, 4)]).astype(np.int64)
    return rows, kinds, keys, bits


def _flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _sorted_distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values, ascending.

    By sorting: at millions of integers several times faster than
    `np.unique`, which takes a hash-based path in numpy 2.
    """
    ordered = np.sort(values)
    first = np.ones(len(ordered), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


def _coded_ids(record_ids: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """The distinct ids sorted, and each row's index among them.

    One dictionary encoding gives the distinct ids and every row's code; only
    the distinct ids are sorted, and the codes renumbered in their order.
    """
    encoded = pc.dictionary_encode(_flat(record_ids))
    order = pc.array_sort_indices(encoded.dictionary).to_numpy(zero_copy_only=False)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    return pc.take(encoded.dictionary, pa.array(order)), rank[codes]


def _spell(bits: int) -> str:
    return ", ".join(label for i, label in enumerate(_LABELS) if bits & (1 << i))


@dataclass
class _Keys:
    """Every identifier on every record, coded, and which ones may link.

    `ids` are the distinct record ids, sorted; `rows`, `kinds`, `keys`,
    `bits` as `_edges` gives them; `key_names` the distinct ``kind:key``
    texts and `key_idx` each edge's index among them; `shared` the records
    per key; `usable` the keys that link; `ignored` those that do not, with why.
    """

    ids: pa.Array
    rows: np.ndarray
    kinds: pa.Array
    keys: pa.Array
    bits: np.ndarray
    key_names: pa.Array
    key_idx: np.ndarray
    shared: np.ndarray
    usable: np.ndarray
    ignored: dict[str, str]


def _identifier_keys(
    records: pa.Table, settings: IdentitySettings, rules: list[Rule]
) -> _Keys:
    records = records.filter(pc.is_valid(records.column("record_id")))
    ids, rec = _coded_ids(records.column("record_id"))  # sorted: index order = id order
    n_rec = len(ids)
    rows, kinds, keys, bits = _edges(records, rec, settings)
    full = pc.binary_join_element_wise(kinds, keys, ":")
    # Codes and distinct keys in one pass.
    coded = _flat(pc.dictionary_encode(full))
    key_names = coded.dictionary
    key_idx = coded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    # Records per key (distinct): a key on too many records links none of them.
    pairs = _sorted_distinct(key_idx * n_rec + rows)
    shared = np.bincount(pairs // max(n_rec, 1), minlength=len(key_names))
    usable = shared <= settings.max_shared
    ignored: dict[str, str] = {
        key_names[int(k)].as_py(): f"shared by {shared[k]} records (more than {settings.max_shared})"
        for k in np.nonzero(~usable)[0]
    }  # fmt: skip
    by_rule = {r.value: r.rule_id for r in rules if r.kind == "ignore"}
    if by_rule:
        hit = pc.index_in(pa.array(list(by_rule), pa.string()), value_set=key_names)
        for value, k in zip(by_rule, hit.to_pylist(), strict=True):
            if k is not None:
                usable[k] = False
                ignored[value] = f"ignored by rule {by_rule[value]}"
    return _Keys(
        ids, rows, kinds, keys, bits, key_names, key_idx, shared, usable, ignored
    )


def ignored_identifiers(
    records: pa.Table, settings: IdentitySettings, rules: list[Rule]
) -> dict[str, str]:
    """Identifiers of `records` that link nobody, with why: `resolve`'s
    ``ignored``, without linking anyone (coding the identifiers is most of
    `resolve`'s time; the links are the rest)."""
    return _identifier_keys(records, settings, rules).ignored


def resolve(
    records: pa.Table,
    settings: IdentitySettings | None = None,
    rules: list[Rule] | None = None,
    matches: pa.Table | None = None,
) -> Resolution:
    """Group `records` (``record_id, email, phone`` rows) into customers.

    `matches` (``record_a, record_b, probability``) are probabilistic links
    already above the user's threshold.
    """
    settings = settings or IdentitySettings()
    rules = rules or []
    k = _identifier_keys(records, settings, rules)
    ids, rows, kinds, keys, bits = k.ids, k.rows, k.kinds, k.keys, k.bits
    key_names, key_idx, shared, usable = k.key_names, k.key_idx, k.shared, k.usable
    n_rec = len(ids)
    alone = np.zeros(n_rec, bool)
    separate = [r.value for r in rules if r.kind == "separate"]
    if separate:
        at = pc.index_in(pa.array(separate, pa.string()), value_set=ids).to_pylist()
        alone[[i for i in at if i is not None]] = True
    link = (
        usable[key_idx] & ~alone[rows] & (shared[key_idx] >= 2)
        if len(rows)
        else rows > 0
    )
    src, dst = [rows[link]], [n_rec + key_idx[link]]
    why = np.zeros(n_rec, np.int64)
    np.bitwise_or.at(why, rows[link], bits[link])
    if matches is not None and matches.num_rows:
        a = pc.index_in(matches.column("record_a"), value_set=ids).to_pylist()
        b = pc.index_in(matches.column("record_b"), value_set=ids).to_pylist()
        ok = [(x, y) for x, y in zip(a, b, strict=True)
              if x is not None and y is not None and not alone[x] and not alone[y]]  # fmt: skip
        if ok:
            pa_, pb_ = np.array([x for x, _ in ok]), np.array([y for _, y in ok])
            src.append(pa_)
            dst.append(pb_)
            why[pa_] |= 8
            why[pb_] |= 8
    n = n_rec + len(key_names)
    s, d = np.concatenate(src), np.concatenate(dst)
    graph = coo_matrix((np.ones(len(s), np.int8), (s, d)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    # The smallest record id of each group names it (ids are sorted).
    root = np.full(label.max() + 1 if n else 0, n_rec, np.int64)
    np.minimum.at(root, label[:n_rec], np.arange(n_rec))
    customer_of = root[label[:n_rec]]
    moved = np.nonzero(customer_of != np.arange(n_rec))[0]
    spelled = {int(b): _spell(int(b)) for b in np.unique(why[moved])}
    identity_map = pa.table({
        "record_id": pc.take(ids, pa.array(moved)),
        "customer_id": pc.take(ids, pa.array(customer_of[moved])),
        "linked_by": pa.array([spelled[int(b)] for b in why[moved]], pa.string()),
    })  # fmt: skip
    # One row per (identifier, customer): distinct pairs of integer codes,
    # far cheaper than grouping the text. Row order carries no meaning.
    owner = customer_of[rows] if len(rows) else rows
    _, first = np.unique(key_idx * n_rec + owner, return_index=True)
    at = pa.array(first)
    identities = pa.table({
        "source": pc.take(kinds, at),
        "source_key": pc.take(keys, at),
        "customer_id": pc.take(ids, pa.array(owner[first])),
    })  # fmt: skip
    return Resolution(
        identity_map=identity_map, identities=identities, records=n_rec,
        customers=int(np.count_nonzero(customer_of == np.arange(n_rec))), ignored=k.ignored,
    )  # fmt: skip


def resolve_store(wh: Warehouse) -> Resolution:
    """Resolve every record in the store and rewrite the identity tables atomically."""
    settings = settings_of(wh)
    matches = None
    if settings.match_threshold is not None:
        from regulars.identity.matching import match_records

        matches = match_records(wh, threshold=settings.match_threshold)
    result = resolve(record_identifiers(wh), settings, rules_of(wh), matches)
    through = wh.scalar(wh.table("imports").import_id.max())
    changes: list[Change] = [
        Replace("identity_map", result.identity_map),
        Replace("identities", result.identities),
        *wh.set_meta({RESOLVED_THROUGH: str(int(through or 0))}),
    ]
    if matches is None:
        matches = TABLES["identity_matches"].to_pyarrow().empty_table()
    changes.append(Replace("identity_matches", matches))
    wh.apply(changes)
    return result


def is_stale(wh: Warehouse) -> bool:
    """Whether imports landed after the last resolution."""
    through = wh.scalar(wh.table("imports").import_id.max())
    return int(wh.meta().get(RESOLVED_THROUGH, "0")) < int(through or 0)
