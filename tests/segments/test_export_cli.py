"""Exports in the layouts email tools import, consent first; the CLI end to end."""

from __future__ import annotations

import csv
import json

import pytest
from tests.segments.conftest import AS_OF, fill
from typer.testing import CliRunner

from regulars.cli.main import app
from regulars.errors import InputError
from regulars.segments.catalog import members_of
from regulars.segments.export import write_members


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def store(duck):
    fill(duck)
    return duck


def test_marketing_layouts_leave_out_customers_without_consent(store, tmp_path):
    members = store.to_arrow(members_of(store, "orders >= 0", as_of=AS_OF))
    result = write_members(
        members, str(tmp_path / "k.csv"), layout="klaviyo", segment="all"
    )
    rows = _rows(tmp_path / "k.csv")
    assert [r["Email"] for r in rows] == [
        "a@example.com",
        "c@example.com",
        "d@example.com",
    ]
    assert (result.written, result.without_consent, result.without_email) == (3, 1, 0)
    assert list(rows[0])[:5] == [
        "Email",
        "Phone Number",
        "First Name",
        "Last Name",
        "Country",
    ]
    assert rows[0]["Regulars Segment"] == "all" and rows[0]["Orders"] == "3"
    assert rows[2]["First Name"] == "Robert'); DROP TABLE customers;--"

    result = write_members(members, str(tmp_path / "m.csv"), layout="mailchimp",
                           segment="all", include_without_consent=True)  # fmt: skip
    rows = _rows(tmp_path / "m.csv")
    assert list(rows[0]) == [
        "Email Address",
        "First Name",
        "Last Name",
        "Phone Number",
        "Tags",
    ]
    assert len(rows) == 4 and result.without_consent == 0
    assert {r["Tags"] for r in rows} == {"all"}


def test_plain_csv_has_every_field_and_everyone(store, tmp_path):
    members = store.to_arrow(members_of(store, "true", as_of=AS_OF))
    result = write_members(members, str(tmp_path / "all.csv"))
    rows = _rows(tmp_path / "all.csv")
    assert result.written == 4 and rows[1]["customer_id"] == "B"
    assert rows[1]["accepts_marketing"] == "false"


def test_unknown_layout(store, tmp_path):
    with pytest.raises(InputError, match="Choose one of: csv, klaviyo, mailchimp"):
        write_members(store.to_arrow(members_of(store, "true", as_of=AS_OF)),
                      str(tmp_path / "x.csv"), layout="hubspot")  # fmt: skip


def test_cli_count_export_save_refresh(store_file, tmp_path):
    path = store_file
    runner = CliRunner()
    base = ["--store", path, "--as-of", AS_OF.isoformat(), "segments"]

    result = runner.invoke(app, [*base, "count", "--where", "orders >= 2", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["count"] == 2

    result = runner.invoke(app, [*base, "count", "--where", "ordrs >= 2"])
    assert result.exit_code == 1
    assert "did you mean 'orders'?" in result.output and "^" in result.output

    result = runner.invoke(app, [*base, "save", "coffee", "--where",
                                 'bought_category("Coffee")', "--description", "Coffee"])  # fmt: skip
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, [*base, "count", "coffee", "--json"])
    assert json.loads(result.stdout)["count"] == 2

    out = tmp_path / "coffee.csv"
    result = runner.invoke(app, [*base, "export", "coffee", "--format", "mailchimp",
                                 "--out", str(out), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["written"] == 2
    assert [r["Email Address"] for r in _rows(out)] == [
        "a@example.com",
        "c@example.com",
    ]

    result = runner.invoke(app, [*base, "refresh", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0] | {"run_id": 0} == {
        "run_id": 0, "segment": "coffee", "as_of": "2025-06-30", "members": 2,
        "entered": 2, "left": 0, "previous_as_of": None,
    }  # fmt: skip

    result = runner.invoke(app, [*base, "list", "--json"])
    names = [s["name"] for s in json.loads(result.stdout)]
    assert (
        names[0] == "one_time_buyers"
        and names[-1] == "coffee"
        and "rfm_champions" in names
    )

    result = runner.invoke(app, [*base, "show", "coffee", "--json"])
    shown = json.loads(result.stdout)
    assert (shown["count"], len(shown["runs"])) == (2, 1)

    result = runner.invoke(app, [*base, "count", "cofee"])
    assert result.exit_code == 1 and "Did you mean coffee?" in result.output

    result = runner.invoke(app, [*base, "delete", "coffee"])
    assert result.exit_code == 0
    result = runner.invoke(app, [*base, "count", "coffee"])
    assert result.exit_code == 1
