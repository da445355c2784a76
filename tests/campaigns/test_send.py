"""Flows end to end: due customers, the outbox, real SMTP, links that work."""

from __future__ import annotations

import datetime as dt
import json
import textwrap

import pytest
from fastapi.testclient import TestClient
from tests.campaigns.conftest import FLOWS, NOW

from regulars.campaigns.delivery.smtp import SmtpSettings
from regulars.campaigns.flows import load_flows
from regulars.campaigns.run import outbox_counts, plan, run_flows
from regulars.errors import InputError
from regulars.state import open_state
from regulars.web import create_app


def test_due_customers_with_consent_get_one_message_each(setup):
    wh, state, flows, smtp, inbox = setup
    report = run_flows(wh, state, flows, smtp, now=NOW)
    # Due 7 days after their 03-01 orders: Anna, Ben (no consent), Cara; the
    # guest is nobody to write to; Cara's February order is too old (lookback 7 days).
    outcomes = sorted((d.email, d.outcome) for d in report.decisions)
    assert outcomes == [
        ("anna@example.com", "send"),
        ("ben@example.com", "no_consent"),
        ("cara@example.com", "send"),
    ]
    messages = sorted(inbox.messages(), key=lambda m: m["To"])
    assert [(m["To"], m["Subject"]) for m in messages] == [
        ("anna@example.com", "Thank you, Anna"),
        ("cara@example.com", "Thank you, Cara"),
    ]
    anna = messages[0]
    body = anna.get_content()
    assert "Hello Anna, how was Coffee Beans 1kg?" in body
    assert body.count("http://shop.test/r/") == 5
    assert anna["List-Unsubscribe"].startswith("<http://shop.test/u/")
    assert anna["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert anna["From"] == "shop@shop.test"
    assert outbox_counts(state) == {"sent": 2}
    again = run_flows(wh, state, flows, smtp, now=NOW + dt.timedelta(minutes=5))
    assert again.count("already") == 2 and again.delivered == 0
    assert len(inbox.messages()) == 2


def test_unsubscribe_link_works_when_followed(setup):
    wh, state, flows, smtp, inbox = setup
    run_flows(wh, state, flows, smtp, now=NOW)
    anna = next(m for m in inbox.messages() if m["To"] == "anna@example.com")
    url = anna["List-Unsubscribe"].strip("<>")
    path = url.removeprefix("http://shop.test")
    client = TestClient(create_app(state))
    assert "Unsubscribe" in client.get(path).text
    done = client.post(path, content="List-Unsubscribe=One-Click",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert done.status_code == 200 and "no more marketing" in done.text
    assert client.post(path[:-2] + "xx").status_code == 404  # a forged token
    rating = (
        anna.get_content().split("3: ")[1].split()[0].removeprefix("http://shop.test")
    )
    assert "rated us 3" in client.get(rating).text
    # A later order of Anna's would be due again, but she unsubscribed.
    decisions = plan(wh, state, flows, now=NOW)
    assert {d.email: d.outcome for d in decisions}["anna@example.com"] == "already"
    assert state.unsubscribed()


def test_smtp_down_then_up_delivers_every_message_once(setup):
    wh, state, flows, _, inbox = setup
    down = SmtpSettings(host="127.0.0.1", port=1, mail_from="shop@shop.test", timeout=2)
    first = run_flows(wh, state, flows, down, now=NOW)
    assert first.delivered == 0 and first.retrying == 2
    assert outbox_counts(state) == {"pending": 2}
    controller_port = setup[3].port
    up = SmtpSettings(
        host="127.0.0.1", port=controller_port, mail_from="shop@shop.test"
    )
    early = run_flows(wh, state, flows, up, now=NOW + dt.timedelta(seconds=30))
    assert early.delivered == 0  # the retry is due after a minute
    later = run_flows(wh, state, flows, up, now=NOW + dt.timedelta(minutes=2))
    assert later.delivered == 2
    assert sorted(m["To"] for m in inbox.messages()) == [
        "anna@example.com",
        "cara@example.com",
    ]
    assert len({m["Message-ID"] for m in inbox.messages()}) == 2


def test_a_permanent_refusal_is_recorded_with_the_servers_answer(setup):
    wh, state, flows, smtp, inbox = setup
    inbox.refuse = "550 mailbox unavailable"
    report = run_flows(wh, state, flows, smtp, now=NOW)
    assert report.failed == 2
    from sqlalchemy import select

    from regulars.state.models import Send

    with state.session() as s:
        errors = {r.last_error for r in s.scalars(select(Send))}
    assert errors == {"550 mailbox unavailable"}


def test_cli_preview_sends_nothing_and_run_sends(
    shop, smtp_server, tmp_path, monkeypatch
):
    from typer.testing import CliRunner

    from regulars.cli.main import app

    controller, inbox = smtp_server
    (tmp_path / "flows.toml").write_text(textwrap.dedent(FLOWS), encoding="utf-8")
    shop.close()  # the CLI opens tmp_path / "store.duckdb" itself, read-only
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REGULARS_SMTP_PORT", str(controller.port))
    monkeypatch.setenv("REGULARS_MAIL_FROM", "shop@shop.test")
    state = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    runner = CliRunner()
    base = ["--store", str(tmp_path / "store.duckdb"), "flows"]
    preview = runner.invoke(app, [*base, "preview", "thanks", "--now", "2025-03-08 10:00:00",
                                  "--state", state, "--json"])  # fmt: skip
    assert preview.exit_code == 0, preview.output
    rows = json.loads(preview.output)
    assert sorted((r["email"], r["outcome"], r["subject"]) for r in rows) == [
        ("anna@example.com", "send", "Thank you, Anna"),
        ("ben@example.com", "no_consent", None),
        ("cara@example.com", "send", "Thank you, Cara"),
    ]
    assert inbox.messages() == []
    done = runner.invoke(app, [*base, "run", "--now", "2025-03-08 10:00:00", "--state", state,
                               "--json"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["delivered"] == 2
    assert len(inbox.messages()) == 2


def test_a_flows_own_cap_and_its_channel(shop, smtp_server, tmp_path):
    controller, inbox = smtp_server
    path = tmp_path / "flows.toml"
    path.write_text(textwrap.dedent(FLOWS).replace(
        "holdout = 0", 'holdout = 0\nmarketing = false\ncap_days = 30\nchannel = "email"'
    ), encoding="utf-8")  # fmt: skip
    flows = load_flows(path)
    state = open_state(f"sqlite:///{tmp_path / 'state.sqlite'}")
    smtp = SmtpSettings(
        host="127.0.0.1", port=controller.port, mail_from="shop@shop.test"
    )
    # Cara's February order is thanked on 02-08; her March order falls within
    # 30 days of that message, so it waits (and is too late by the next week).
    first = run_flows(
        shop, state, flows, smtp, now=dt.datetime(2025, 2, 8, 10, tzinfo=dt.UTC)
    )
    assert [(d.email, d.outcome) for d in first.decisions] == [
        ("cara@example.com", "send")
    ]
    march = {
        d.email: d.outcome
        for d in run_flows(shop, state, flows, smtp, now=NOW).decisions
    }
    assert march == {"anna@example.com": "send", "ben@example.com": "send",
                     "cara@example.com": "capped"}  # fmt: skip
    assert sorted(m["To"] for m in inbox.messages()) == [
        "anna@example.com", "ben@example.com", "cara@example.com"
    ]  # fmt: skip
    path.write_text(textwrap.dedent(FLOWS).replace("holdout = 0", 'holdout = 0\nchannel = "sms"'),
                    encoding="utf-8")  # fmt: skip
    with pytest.raises(InputError, match="channel 'sms'"):
        load_flows(path)
