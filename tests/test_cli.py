"""The command line: exit codes, summaries, status and rejects."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from conftest import DATA, order, shopify_csv
from regulars.cli.main import app

runner = CliRunner()


def invoke(store, *args):
    return runner.invoke(app, ["--store", str(store), "--quiet", *args])


def test_import_status_and_rejects(tmp_path):
    store = tmp_path / "s.duckdb"
    result = invoke(
        store, "import", "shopify-orders", str(DATA / "shopify_orders_quirks.csv")
    )
    assert result.exit_code == 0, result.output
    assert "rows read 8 = loaded 8 + rejected 0: reconciles." in result.output
    bad = shopify_csv(tmp_path / "bad.csv", [order("#77", Total="x")])
    result = invoke(store, "import", "shopify-orders", str(bad))
    assert result.exit_code == 0
    assert 'row 2, column "Total"' in result.output
    result = invoke(store, "status")
    assert result.exit_code == 0
    assert "orders" in result.output and "shopify: 6" in result.output
    result = invoke(store, "rejects", "--json")
    payload = json.loads(result.output)
    assert payload["total"] == 1
    assert (
        payload["rejects"][0]["column"] == "Total"
        and payload["rejects"][0]["value"] == "x"
    )


@pytest.mark.parametrize(
    ("option", "value", "least"),
    [("--customers", "0", "1"), ("--seed", "-1", "0"), ("--years", "0.5", "1")],
)
def test_demo_options_out_of_range_are_usage_errors(tmp_path, option, value, least):
    """They stopped in numpy with a traceback (or, for a short history, in
    the backtest, naming an option the demo does not have)."""
    result = invoke(
        tmp_path / "s.duckdb", "demo", "--out", str(tmp_path / "d"), option, value
    )
    assert result.exit_code == 2
    text = " ".join(result.output.replace("│", " ").split())
    assert (
        f"Invalid value for '{option}': Input should be greater than or equal to {least}"
        in text
    )
    assert not (tmp_path / "d").exists()


def test_rejects_of_an_import_without_any_or_of_no_import_say_so(tmp_path):
    """Both printed an empty table with no word of why."""
    store = tmp_path / "s.duckdb"
    assert invoke(store, "import", "shopify-orders",
                  str(shopify_csv(tmp_path / "a.csv", [order("#1")]))).exit_code == 0  # fmt: skip
    for args in ([], ["--by-reason"]):
        result = invoke(store, "rejects", *args)
        assert result.exit_code == 0
        assert result.output.strip() == "No rejected rows."
        result = invoke(store, "rejects", "--import", "1", *args)
        assert result.output.strip() == "Import 1 rejected no rows."
        result = invoke(store, "rejects", "--import", "2", *args)
        assert result.exit_code == 1
        assert " ".join(result.output.split()) == (
            "Error: there is no import 2. `regulars status` lists the imports."
        )
    assert json.loads(invoke(store, "rejects", "--json").output)["total"] == 0


def test_an_import_with_many_problems_counts_them_by_reason(tmp_path):
    store = tmp_path / "s.duckdb"
    bad = [order(f"#{i}", **{"Created at": "31/02/2024"}) for i in range(1, 7)]
    result = invoke(store, "import", "shopify-orders",
                    str(shopify_csv(tmp_path / "bad.csv", bad)))  # fmt: skip
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "rows read 6 = loaded 0 + rejected 6: reconciles." in text
    assert "nothing to link (this import added no orders or customers)" in text
    assert "6 problems on 6 rows, by column and reason:" in text
    assert "│ 6 │ Created at │ is not a date." in text and "row 2: 31/02/2024" in text
    # Every date failed: the file is written another way, and the way to say so is named.
    assert "--date-format (e.g. %d/%m/%Y)" in text
    assert 'row 3, column "Created at"' not in text  # counted, not listed
    assert "`regulars rejects --import 1 --by-reason`" in text
    result = invoke(store, "rejects", "--by-reason", "--json")
    assert [(r["column"], r["problems"], r["first_row"]) for r in
            json.loads(result.output)["reasons"]] == [("Created at", 6, 2)]  # fmt: skip


def test_date_format_and_decimal_comma_options(tmp_path):
    store = tmp_path / "s.duckdb"
    path = tmp_path / "orders.csv"
    path.write_text("order_id,placed_at,total,currency\n1,22.11.2023,5.00,EUR\n",
                    encoding="utf-8")  # fmt: skip
    result = invoke(store, "import", "orders", str(path), "--date-format", "%d.%m.%Y")
    assert "rows read 1 = loaded 1 + rejected 0" in result.output, result.output
    result = invoke(store, "import", "orders", str(path), "--date-format", "dd.mm.yyyy")
    assert result.exit_code == 1 and "has no strptime code" in result.output
    result = invoke(store, "import", "products", str(path), "--date-format", "%d")
    assert result.exit_code == 1 and "a products file has no dates" in result.output
    result = invoke(store, "import", "customers", str(path), "--decimal-comma")
    assert result.exit_code == 1 and "a customers file has no amounts" in result.output


def test_null_option(tmp_path):
    store = tmp_path / "s.duckdb"
    path = tmp_path / "orders.csv"
    path.write_text("order_id,placed_at,total,cancelled_at\n1,2025-01-02,5.00,N/A\n"
                    "2,2025-01-03,6.00,none\n", encoding="utf-8")  # fmt: skip
    result = invoke(store, "import", "orders", str(path), "--dry-run")
    text = " ".join(result.output.split())
    assert "rows read 2 = loaded 0 + rejected 2" in text, text
    assert ('2 rejected values are "N/A" or "none" (first: row 2, column '
            '"cancelled_at"). If this file writes an empty value so, import it again '
            'with --null N/A --null none (in a mapping: nulls = ["N/A", "none"]).') in text  # fmt: skip
    result = invoke(
        store, "import", "orders", str(path), "--null", "N/A", "--null", "none"
    )
    assert "rows read 2 = loaded 2 + rejected 0" in result.output, result.output
    result = invoke(store, "import", "customers", str(path), "--null", "")
    assert (
        result.exit_code == 1
        and "--null: give the text, e.g. --null NULL." in result.output
    )
    # A Shopify export is read as Shopify writes it.
    result = invoke(store, "import", "shopify-orders", str(path), "--null", "N/A")
    assert result.exit_code == 2 and "No such option: --null" in result.output


def test_a_since_after_as_of_is_an_error_not_a_table_of_zeros(tmp_path):
    store = tmp_path / "s.duckdb"
    invoke(store, "import", "shopify-orders", str(DATA / "shopify_orders_quirks.csv"))
    for command in ("metrics", "cohorts", "products", "insights"):
        result = runner.invoke(app, ["--store", str(store), "--quiet", "--as-of",
                                     "2025-12-31", command, "--since", "2026-01-01"])  # fmt: skip
        assert result.exit_code == 1, (command, result.output)
        assert "--since 2026-01-01 is after --as-of 2025-12-31" in result.output
    result = runner.invoke(app, ["--store", str(store), "--quiet", "--as-of",
                                 "2025-12-31", "metrics", "--since", "2025-12-31"])  # fmt: skip
    assert result.exit_code == 0, result.output


def test_several_files_are_imported_one_by_one(tmp_path):
    store = tmp_path / "s.duckdb"
    first = shopify_csv(tmp_path / "2024.csv", [order("#1"), order("#2")])
    second = shopify_csv(tmp_path / "2025.csv", [order("#2"), order("#3")])
    result = invoke(store, "import", "shopify-orders", str(first), str(second))
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Import of 2024.csv" in text and "Import of 2025.csv" in text
    # #2 was in both: the second file adds one order.
    assert "Added or updated: 2 orders" in text and "Added or updated: 1 orders" in text
    # Once both are in, the tables kept for analyses are up to date: built
    # once, after the last file, with the orders of both.
    from regulars.backends import connect

    wh = connect(str(store))
    try:
        raw = wh.con.con
        kept = raw.execute("SELECT table_name FROM duckdb_tables() WHERE "
                           "starts_with(table_name, '_derived_')").fetchall()  # fmt: skip
        assert sorted(kept) == [("_derived_order_sequence",), ("_derived_purchases",)]
        assert raw.execute(
            "SELECT count(*) FROM _derived_order_sequence"
        ).fetchone() == (3,)
    finally:
        wh.close()
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n", encoding="utf-8")
    third = shopify_csv(tmp_path / "2026.csv", [order("#4")])
    result = invoke(store, "import", "shopify-orders", str(third), str(wrong))
    assert result.exit_code == 2 and "wrong.csv" in result.output
    # The file before the unreadable one stays imported.
    result = invoke(store, "status")
    assert "shopify: 4" in result.output


def test_a_step_that_fails_after_the_write_shows_the_summary_and_says_it_landed(
    tmp_path, monkeypatch
):
    """The import's summary is shown, then one red line that says the import
    is complete and what the failed step leaves to do; `status` says which
    imports are not linked yet."""
    from regulars import products
    from regulars.errors import StoreError
    from regulars.identity import incremental

    def disk_full(*args, **kwargs):
        raise StoreError("the write failed and was undone: disk full")

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    def failed_import(name: str, orders: list[dict], step: tuple, fault: object) -> str:
        """The output, in one line, of an import that exits 1 after its
        summary, with `step` (module, function) raising as `fault` does."""
        monkeypatch.undo()
        monkeypatch.setattr(*step, fault)
        file = shopify_csv(tmp_path / name, orders)
        result = invoke(store, "import", "shopify-orders", str(file))
        assert result.exit_code == 1
        text = " ".join(result.output.split())
        n = len(orders)
        assert f"rows read {n} = loaded {n} + rejected 0: reconciles." in text
        return text

    store = tmp_path / "s.duckdb"
    linking, keeping = (incremental, "resolve_import"), (products, "keep_tables")
    text = failed_import("a.csv", [order("#1"), order("#2")], linking, disk_full)
    assert text.endswith(
        "Error: a.csv: imported as import 1 (2 rows new), but linking its customers "
        "then failed: the write failed and was undone: disk full. The import is "
        "complete and stays; `regulars identity resolve` links them, as importing "
        "the file again or the next import that adds rows does."
    )
    text = " ".join(invoke(store, "status").output.split())
    assert (
        "Import 1 is not linked yet: its customers are not joined across records "
        "until `regulars identity resolve` (or importing its file again, or the "
        "next import that adds rows) links them." in text
    )

    text = failed_import("b.csv", [order("#3")], keeping, disk_full)
    assert text.endswith(
        "Error: b.csv was imported, but updating the tables analyses read then "
        "failed: the write failed and was undone: disk full. The import is complete "
        "and stays; the next analysis or import brings them up to date."
    )
    assert "not linked" not in invoke(store, "status").output

    # Ctrl-C while linking: the same, not Click's bare "Aborted!".
    text = failed_import("c.csv", [order("#4")], linking, ctrl_c)
    assert text.endswith(
        "Error: c.csv: imported as import 3 (1 row new), but linking its customers "
        "was then interrupted. The import is complete and stays; `regulars identity "
        "resolve` links them, as importing the file again or the next import that "
        "adds rows does."
    )


def test_unreadable_file_exits_2_with_one_clear_line(tmp_path):
    store = tmp_path / "s.duckdb"
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n", encoding="utf-8")
    result = invoke(store, "import", "shopify-orders", str(wrong))
    assert result.exit_code == 2
    assert "Error:" in result.output and "wrong.csv" in result.output
    assert "Traceback" not in result.output
    result = invoke(store, "import", "orders", str(tmp_path / "missing.parquet"))
    assert result.exit_code == 2 and "no such file" in result.output


def test_bad_rate_option_exits_1(tmp_path):
    result = invoke(tmp_path / "s.duckdb", "import", "shopify-orders",
                    str(DATA / "shopify_orders_quirks.csv"), "--rate", "USD")  # fmt: skip
    assert result.exit_code == 1 and "is not CUR=RATE" in result.output


def test_store_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("REGULARS_STORE", str(tmp_path / "env.duckdb"))
    result = runner.invoke(
        app,
        [
            "--quiet",
            "import",
            "shopify-orders",
            str(DATA / "shopify_orders_quirks.csv"),
        ],
    )
    assert result.exit_code == 0
    assert (tmp_path / "env.duckdb").exists()


@pytest.fixture(scope="module")
def demo_cli(tmp_path_factory):
    """One demo store built by the command, for the tests that read it (a
    demo is most of this file's time)."""
    folder = tmp_path_factory.mktemp("cli_demo")
    store = folder / "demo.duckdb"
    # Three weeks of the campaign (5 runs), not ten (17): its figures are
    # tested at full size in tests/campaigns/test_demo_campaign.py.
    result = invoke(store, "demo", "--out", str(folder / "d"), "--customers", "500",
                    "--end", "2026-01-31", "--campaign-weeks", "3")  # fmt: skip
    return store, result


def test_demo_command_builds_a_store(demo_cli):
    store, result = demo_cli
    assert result.exit_code == 0, result.output
    assert "Demo store ready" in result.output and "reconciles" in result.output
    text = " ".join(result.output.split())
    assert re.search(
        r"Flows \(\S+flows\.toml\): 5 runs from 2025-12-18 to 2026-01-03", text
    )
    assert "replenishment: " in text and "held-out customers" in text
    result = invoke(store, "status")
    assert "shopify-customers: 500" in result.output


def test_a_demo_too_small_for_the_models_builds_the_store_and_says_why(tmp_path):
    """Five customers, two of them returning: the demo stopped with exit code
    1 after building the store, on "neither Pareto/NBD nor MBG/NBD could be
    fitted ... See the errors above", above which no error was printed;
    `regulars predict` and `backtest` said the same."""
    store, folder = tmp_path / "s.duckdb", tmp_path / "d"
    result = invoke(store, "demo", "--out", str(folder), "--customers", "5",
                    "--end", "2026-01-31", "--no-campaign")  # fmt: skip
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert (
        "Demo store ready" in text and "As of 2026-01-31: 5 customers, 7 orders" in text
    )
    reasons = (
        "neither Pareto/NBD nor MBG/NBD could be fitted, so there are no scores. "
        "Pareto/NBD: only 2 customers made a repeat purchase; the Pareto/NBD model "
        "needs at least 10. MBG/NBD: only 2 customers made a repeat purchase; the "
        "MBG/NBD model needs at least 10."
    )
    assert f"No predictions: {reasons} A demo of more customers has enough " in text
    assert f"No backtest over the last 26 weeks: {reasons}" in text
    assert "Predicted with" not in text and "See the errors above" not in text
    assert "<html" in (folder / "report.html").read_text(encoding="utf-8")
    assert "shopify-customers: 5" in invoke(store, "status").output
    for args in (["predict"], ["backtest", "--calibration-end", "2025-12-01"]):
        result = invoke(store, "--as-of", "2026-01-31", *args)
        assert result.exit_code == 1
        text = " ".join(result.output.split())
        assert text.startswith("Error: neither Pareto/NBD nor MBG/NBD could be fitted")
        assert "Pareto/NBD: only " in text and "MBG/NBD: only " in text
        assert (
            "Fit on a longer history (a later --as-of for predict, a later "
            "--calibration-end for backtest)"
        ) in text
    result = invoke(store, "--as-of", "2026-01-31", "predict", "--model", "mbg_nbd")
    assert result.exit_code == 1
    assert " ".join(result.output.split()) == (
        "Error: the MBG/NBD model could not be fitted. MBG/NBD: only 2 customers made "
        "a repeat purchase; the MBG/NBD model needs at least 10. Fit on a longer "
        "history (a later --as-of for predict, a later --calibration-end for "
        "backtest), so that returning customers can be seen. Or use --model auto."
    )


def test_a_demo_with_predictions_but_too_little_history_for_the_backtest(tmp_path):
    """Twenty customers: enough returning ones to predict, too few in the
    history before the last 26 weeks to backtest."""
    result = invoke(tmp_path / "s.duckdb", "demo", "--out", str(tmp_path / "d"),
                    "--customers", "20", "--end", "2026-01-31", "--no-campaign")  # fmt: skip
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert re.search(r"Predicted with (Pareto|MBG)/NBD: \d+ customers expected", text)
    assert "No backtest over the last 26 weeks: neither Pareto/NBD nor MBG/NBD" in text
    assert (
        "No predictions" not in text and "Backtest over the last 26 weeks:" not in text
    )


def test_metrics_json_has_the_documented_keys(tmp_path):
    store = tmp_path / "s.duckdb"
    invoke(store, "import", "shopify-orders", str(DATA / "shopify_orders_quirks.csv"))
    result = runner.invoke(
        app,
        [
            "--store",
            str(store),
            "--quiet",
            "--as-of",
            "2025-12-31",
            "metrics",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    for key in ("customers", "orders", "one_time_buyers", "repeat_purchase_rate",
                "orders_per_customer", "aov", "median_days_between_orders",
                "net_revenue", "churn_rate"):  # fmt: skip
        assert key in payload
    # Quirks file: 6 orders, #1005 voided and #1006 cancelled don't count.
    assert payload["orders"] == 4
    assert payload["customers"] == 3  # Anna (2 orders), Minji, the phone-only guest
    assert payload["repeat_purchase_rate"] == 1 / 3
    assert payload["net_revenue"] == 54 + 30 + 20 + 15
    result = invoke(store, "--as-of", "2025-12-31", "metrics")
    assert "repeat purchase rate" in result.output
    assert "holds no orders yet" not in result.output


#: Commands that read a store and never make one, with what each needs besides.
_READERS = [
    ["status"], ["rejects"], ["metrics"], ["cohorts"], ["products"], ["insights"],
    ["report"], ["predict"], ["backtest", "--calibration-end", "2025-06-30"],
    ["customer", "anna@example.com"],
    ["segments", "list"], ["segments", "count", "--where", "orders >= 1"],
    ["identity", "rules"], ["identity", "settings"], ["identity", "resolve"],
    ["forget", "anna@example.com"],
]  # fmt: skip


@pytest.mark.parametrize("command", _READERS, ids=" ".join)
def test_a_command_that_reads_a_store_does_not_make_one(tmp_path, command):
    """A --store with a slip in its name made an empty store there, and
    `status` showed it: every table empty, as if the data were gone."""
    store = tmp_path / "typo.duckdb"
    result = invoke(store, *command)
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert text.startswith(f"Error: {store}: there is no store here.")
    assert "Check --store (or REGULARS_STORE)" in text
    assert "regulars import shopify-orders orders_export.csv" in text
    assert "regulars demo" in text
    assert os.listdir(tmp_path) == []


def test_commands_that_set_up_a_store_make_it(tmp_path):
    """Settings and rules may come before the first import, which uses them."""
    for n, command in enumerate((
        ["identity", "settings", "--plus-tags", "keep"],
        ["identity", "ignore", "email:info@example.com"],
        ["segments", "save", "loyal", "--where", "orders >= 3"],
    )):  # fmt: skip
        store = tmp_path / f"new{n}.duckdb"
        result = invoke(store, *command)
        assert result.exit_code == 0, (command, result.output)
        assert store.exists()


def test_a_missing_store_opened_for_reading_says_so_not_that_it_is_busy(tmp_path):
    """Read-only opens (flows, the server) said "cannot open the DuckDB
    store ... Is another Regulars process writing to it?"."""
    from regulars.backends import connect
    from regulars.errors import StoreError

    for url, shown in (
        (str(tmp_path / "a.duckdb"), str(tmp_path / "a.duckdb")),
        (f"spark://{tmp_path / 'folder'}", str(tmp_path / "folder")),
    ):
        with pytest.raises(StoreError, match="there is no store here") as caught:
            connect(url, create=False)
        assert caught.value.file == shown
    with pytest.raises(StoreError, match="there is no store here"):
        connect(str(tmp_path / "a.duckdb"), read_only=True)
    assert os.listdir(tmp_path) == []


def test_analysis_commands_on_an_empty_store_say_what_to_do(tmp_path):
    """Zeros and empty tables, and on stderr why and what to do; --json stays JSON."""
    from regulars.backends import connect

    store = tmp_path / "empty.duckdb"
    connect(str(store)).close()  # a store, with no orders yet
    for command in (["metrics"], ["cohorts"], ["products"], ["insights"], ["report"],
                    ["cohorts", "--measure", "time_to_second"]):  # fmt: skip
        result = invoke(store, *command)
        assert result.exit_code == 0, result.output
        note = " ".join(result.stderr.split())
        assert f"The store {store} holds no orders yet: nothing to measure." in note
        assert "regulars import shopify-orders orders_export.csv" in note
    payload = json.loads(invoke(store, "metrics", "--json").stdout)
    assert (payload["orders"], payload["customers"]) == (0, 0)


def test_analysis_commands_take_since_and_json(demo_cli, monkeypatch):
    store, built = demo_cli
    assert built.exit_code == 0, built.output
    base = ["--store", str(store), "--quiet", "--as-of", "2026-01-31"]
    all_cohorts = json.loads(runner.invoke(app, [*base, "cohorts", "--json"]).output)
    recent = json.loads(
        runner.invoke(app, [*base, "cohorts", "--since", "2025-07-01", "--json"]).output
    )
    assert min(all_cohorts["cohorts"]) < "2025-07" <= min(recent["cohorts"])
    # Time to the 2nd purchase: one row per cohort, the same cohorts and sizes.
    second = json.loads(runner.invoke(
        app, [*base, "cohorts", "--measure", "time_to_second", "--json"]).output)  # fmt: skip
    assert [c["cohort"] for c in second["cohorts"]] == all_cohorts["cohorts"]
    for c in second["cohorts"]:
        assert c["customers"] == all_cohorts["sizes"][c["cohort"]]
        assert sum(c["histogram"].values()) == c["reached"] <= c["customers"]
    assert sum(c["reached"] for c in second["cohorts"]) > 0
    table = runner.invoke(app, [*base, "cohorts", "--measure", "time_to_third"])
    assert table.exit_code == 0 and "reached 3rd" in table.output
    wrong = runner.invoke(app, [*base, "cohorts", "--measure", "retention"])
    assert wrong.exit_code != 0 and "time_to_second" in wrong.output
    # The monthly trend in the terminal: one row per month of the JSON; the
    # month of --as-of is marked while it runs.
    months = json.loads(runner.invoke(app, [*base, "metrics", "--json"]).output)[
        "monthly"
    ]
    trend = runner.invoke(app, [*base, "metrics", "--monthly"]).output
    assert "Monthly trend" in trend and "*:" not in trend
    assert all(f"│ {r['month']} " in trend for r in months)
    mid = [a if a != "2026-01-31" else "2026-01-15" for a in base]
    running = runner.invoke(app, [*mid, "metrics", "--monthly"]).output
    assert (
        "│ 2026-01* " in running
        and "*: 2026-01 has not ended by 2026-01-15." in running
    )
    for command in ("products", "insights"):
        result = runner.invoke(app, [*base, command, "--since", "2024-01-01", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["as_of"] == "2026-01-31"
    # An 80-column terminal: whole columns are left out, and said so; no value is cut.
    from regulars.cli.common import out

    for width, cut in ((80, True), (200, False)):
        monkeypatch.setattr(out, "width", width)
        for command, note in (("cohorts", "Periods "), ("products", "Left out "),
                              ("status", "Left out "), ("predict", "Left out "),
                              ("segments list", "Left out ")):  # fmt: skip
            result = runner.invoke(app, [*base, *command.split()])
            assert result.exit_code == 0, result.output
            lines = result.output.splitlines()
            assert max(len(line) for line in lines) <= width
            assert "\u2026" not in result.output  # Rich's ellipsis for a cut value
            assert any(line.startswith(note) for line in lines) == cut, result.output
            if command == "predict" and cut:
                # The note's way to every score is a command that works.
                text = " ".join(result.output.split())
                assert "see every score with `regulars customer ID`" in text

                shown = re.search(r"c_[0-9a-f]{16}", result.output).group(0)
                one = runner.invoke(app, [*base, "customer", shown])
                assert one.exit_code == 0, one.output
                assert "P(alive)" in one.output
    # 60 columns: the model table of `predict` wraps its parameters, and its
    # header "log-likelihood" (no space to wrap at) is whole, not "log-li…";
    # at 40 the log-likelihood is left out instead (BIC compares the models).
    for width, left_out in ((60, None), (40, "log-likelihood")):
        monkeypatch.setattr(out, "width", width)
        result = runner.invoke(app, [*base, "predict"])
        assert result.exit_code == 0, result.output
        assert "\u2026" not in result.output
        if left_out:  # the note itself wraps at the terminal's width
            text = " ".join(result.output.split())
            assert f"terminal ({width} columns): {left_out};" in text
        else:
            assert "log-likelihood" in result.output
            assert max(len(line) for line in result.output.splitlines()) <= width


def test_fitted_table_leaves_out_the_least_important_columns_first():
    import io

    from rich.console import Console

    from regulars.cli.tables import Column, fitted_table

    columns = [
        Column("name", ["Coffee Beans 1kg", "Tea"], justify="left", wrap=True),
        Column("buyers", ["5,867", "12"]),
        Column("least", ["123,456,789", "1"], drop=3),
        Column("second", ["22,222", "2"], drop=1),
        Column("first", ["1,111,111", "3"], drop=2),
    ]
    # Needs (content + 3): name 9 (longest word "Coffee"), buyers 9, least 14,
    # second 9, first 12; plus one border: 54 for all.
    table, left_out = fitted_table("t", columns, width=54)
    assert left_out == []
    table, left_out = fitted_table("t", columns, width=53)
    assert left_out == ["least"]
    table, left_out = fitted_table("t", columns, width=30)
    assert left_out == ["least", "first"]  # 9 + 9 + 9 + 1 = 28 fit
    table, left_out = fitted_table("t", columns, width=27)
    assert left_out == ["least", "second", "first"]
    console = Console(width=27, file=io.StringIO(), record=True)
    console.print(table)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 27
    assert "5,867" in text and "Beans" in text and "\u2026" not in text
    # Nothing left to drop: the table is as narrow as it gets.
    assert fitted_table("t", columns[:2], width=10)[1] == []


def test_every_command_summary_is_one_line_in_help():
    """The command list of `--help` shows each docstring's first paragraph
    as written: a summary broken over two lines showed the break."""
    import typer.main

    def walk(command, path):
        for name, sub in getattr(command, "commands", {}).items():
            yield f"{path} {name}", sub
            yield from walk(sub, f"{path} {name}")

    commands = list(walk(typer.main.get_command(app), "regulars"))
    assert len(commands) > 30
    for name, command in commands:
        summary = (command.help or "").strip().split("\n\n")[0]
        assert summary, name
        assert "\n" not in summary, f"{name}: {summary!r}"


def test_a_command_sets_the_collector_to_run_less_often(tmp_path):
    """See regulars.collector: every command, whatever it does."""
    import gc

    from regulars.backends import connect
    from regulars.collector import YOUNG_THRESHOLD

    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # Python's default
    try:
        store = tmp_path / "s.duckdb"
        connect(str(store)).close()  # `status` reads a store; it does not make one
        result = invoke(store, "status")
        assert result.exit_code == 0, result.output
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
    finally:
        gc.set_threshold(*before)


def test_flows_and_serve_refuse_as_of_and_say_to_give_now(tmp_path):
    """`--as-of` is a date for analyses; flows run at a time of day. It was
    silently ignored (the report ran at the real clock); now it is refused
    with the --now to give, before the flows file or the store is touched."""
    store = str(tmp_path / "store.duckdb")
    for command in (
        ["flows", "report"],
        ["flows", "run"],
        ["flows", "preview", "winback"],
    ):
        result = runner.invoke(
            app, ["--store", store, "--as-of", "2026-11-30", *command,
                  "--flows", str(tmp_path / "none.toml")],
        )  # fmt: skip
        assert result.exit_code == 1, (command, result.output)
        assert "--now 2026-11-30T09:00:00" in " ".join(result.output.split())
    result = runner.invoke(app, ["--store", store, "--as-of", "2026-11-30", "serve"])
    assert result.exit_code == 1
    assert "runs its flows on the real clock" in " ".join(result.output.split())
    assert not (tmp_path / "store.duckdb").exists()


def _at_a_terminal(folder, *args):
    """The CLI as a user at a terminal runs it: Rich draws progress only there."""
    env = {
        **os.environ,
        "TTY_COMPATIBLE": "1",
        "TTY_INTERACTIVE": "1",
        "COLUMNS": "100",
    }
    return subprocess.run(
        [sys.executable, "-m", "regulars.cli", "--store", "s.duckdb", *args],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("terminal")
    orders = str(DATA / "shopify_orders_quirks.csv")
    result = _at_a_terminal(folder, "import", "shopify-orders", orders)
    assert result.returncode == 0, result.stderr
    assert "Importing shopify_orders_quirks.csv" in result.stderr  # its progress bar
    (folder / "flows.toml").write_text(
        '[[flow]]\nname = "thanks"\ntype = "post_purchase"\nsubject = "Hi"\nbody = "Hi"\n',
        encoding="utf-8",
    )
    return folder


# Each command that reads every order (seconds at millions of them) and the
# words it shows meanwhile.
BUSY = [
    (["metrics"], "Computing metrics"),
    (["cohorts"], "Computing cohorts"),
    (["cohorts", "--measure", "time_to_second"], "Computing cohorts"),
    (["products"], "Computing the product table"),
    (["insights"], "Looking for insights"),
    (["report"], "Computing the report"),
    (["customer", "anna.mueller@example.de"], "Reading everything held on"),
    (
        ["customer", "explain", "anna.mueller@example.de"],
        "reading every record's identifiers",
    ),
    (["status"], "Counting what the store holds"),
    (["identity", "resolve"], "Linking records of one person"),
    (["segments", "count", "repeat_customers"], "Counting"),
    (
        ["flows", "preview", "thanks", "--now", "2026-01-31T12:00:00"],
        "Finding who is due",
    ),
    (["flows", "report", "--now", "2026-01-31T12:00:00"], "Measuring each flow"),
]


@pytest.mark.parametrize("args,text", BUSY, ids=[" ".join(a[:3]) for a, _ in BUSY])
def test_commands_show_what_they_are_doing_at_a_terminal(small_store, args, text):
    result = _at_a_terminal(small_store, *args)
    assert result.returncode == 0, result.stderr + result.stdout
    assert text in result.stderr, result.stderr
    assert text not in result.stdout  # the spinner is never part of the output


def test_quiet_shows_no_progress_at_a_terminal(small_store):
    result = _at_a_terminal(small_store, "--quiet", "products")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
