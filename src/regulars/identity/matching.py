"""Probabilistic matching with Splink: records with no shared email or phone
whose name and address say they are one person.

Off by default (`IdentitySettings.match_threshold` is None). When the user
sets a threshold, customer records that have a last name, an address and a
postcode are compared pairwise within each postcode (Splink's blocking) and
scored by a Fellegi-Sunter model whose weights are fixed here rather than
trained, so the same two records always get the same probability whatever
else the store holds:

| field       | agree exactly | nearly (edit distance) | disagree |
|-------------|---------------|------------------------|----------|
| first name  | m .90 u .010  | <= 2: m .09 u .020     | m .01 u .970 |
| last name   | m .90 u .010  | <= 2: m .07 u .020     | m .03 u .970 |
| address     | m .85 u .010  | <= 3: m .12 u .020     | m .03 u .970 |
| city        | m .95 u .300  |                        | m .05 u .700 |

(m: how often the field agrees so for records of one person; u: for two
people who share a postcode) with a prior of 1 in 10,000 that two records in
one postcode are one person. The same name at the same address scores 0.995;
two people of one household (same surname and address, other first names)
score 0.02 and stay apart at any sensible threshold.

Splink runs on the store's engine: DuckDB (an in-memory database of its own,
so nothing of Splink's lands in the store file) or the store's Spark session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis
import pyarrow as pa

from regulars.errors import ConfigError

if TYPE_CHECKING:
    from regulars.backends import Warehouse

__all__ = ["PRIOR", "match_records", "matchable_records"]

#: Probability that two records sharing a postcode are one person, before comparing.
PRIOR = 1e-4

_SCHEMA = pa.schema(
    [
        ("record_a", pa.string()),
        ("record_b", pa.string()),
        ("probability", pa.float64()),
    ]
)


def matchable_records(wh: Warehouse) -> pa.Table:
    """One row per customer record with a last name, address and postcode.

    The newest values of each record across its customer rows; text is
    lower-cased so that case does not count as a difference.
    """
    c = wh.table("customers")
    c = c.filter(c.last_name.notnull() & c.address.notnull() & c.postcode.notnull())
    order = ibis.coalesce(c.updated_at, c.created_at)
    newest = {
        name: c[name].lower().argmax(order)
        for name in ("first_name", "last_name", "address", "city")
    }
    rows = c.group_by(record_id=c.customer_id).aggregate(
        postcode=c.postcode.upper().argmax(order), **newest
    )
    return wh.to_arrow(rows.order_by("record_id"))


def _settings():  # type: ignore[no-untyped-def]
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    def nearly(column: str, distance: int, m: list[float], u: list[float]):  # type: ignore[no-untyped-def]
        return cl.LevenshteinAtThresholds(column, [distance]).configure(
            m_probabilities=m, u_probabilities=u
        )

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_id",
        blocking_rules_to_generate_predictions=[block_on("postcode")],
        comparisons=[
            nearly("first_name", 2, [0.90, 0.09, 0.01], [0.010, 0.020, 0.970]),
            nearly("last_name", 2, [0.90, 0.07, 0.03], [0.010, 0.020, 0.970]),
            nearly("address", 3, [0.85, 0.12, 0.03], [0.010, 0.020, 0.970]),
            cl.ExactMatch("city").configure(
                m_probabilities=[0.95, 0.05], u_probabilities=[0.3, 0.7]
            ),
        ],
        probability_two_random_records_match=PRIOR,
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )


def match_records(wh: Warehouse, *, threshold: float) -> pa.Table:
    """Pairs of records (``record_a < record_b``) one person with at least `threshold`.

    Raises
    ------
    ConfigError
        If Splink is not installed (``pip install 'regulars[matching]'``).
    """
    try:
        from splink import DuckDBAPI, Linker
    except ImportError as exc:  # pragma: no cover - the test environment has it
        raise ConfigError(
            "probabilistic matching needs Splink, which is not installed.",
            hint="pip install 'regulars[matching]', or switch it off: "
            "regulars identity settings --match-threshold off",
        ) from exc
    records = matchable_records(wh)
    if records.num_rows < 2:
        return _SCHEMA.empty_table()
    if wh.kind == "spark":
        from splink import SparkAPI

        session = wh.session  # type: ignore[attr-defined]
        # "persist" keeps intermediate tables in memory: no checkpoint directory
        # needed, and no jar of UDFs (the comparisons use built-in functions).
        api = SparkAPI(
            spark_session=session, register_udfs_automatically=False,
            break_lineage_method="persist",
        )  # fmt: skip
        data = session.createDataFrame(records.to_pandas())
    else:
        api = DuckDBAPI()
        data = records.to_pandas()
    linker = Linker(data, _settings(), db_api=api)
    scored = linker.inference.predict(threshold_match_probability=threshold)
    pairs = pa.Table.from_pandas(scored.as_pandas_dataframe(), preserve_index=False)
    a = pairs.column("record_id_l").to_pylist()
    b = pairs.column("record_id_r").to_pylist()
    p = pairs.column("match_probability").to_pylist()
    rows = sorted(
        (min(x, y), max(x, y), float(q)) for x, y, q in zip(a, b, p, strict=True)
    )
    return pa.Table.from_pylist(
        [{"record_a": x, "record_b": y, "probability": q} for x, y, q in rows],
        schema=_SCHEMA,
    )
