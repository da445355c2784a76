"""Fault tests: a `flows run` killed at each step of a send, then run again;
an unsubscribe between preview and run."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.campaigns.conftest import FLOWS, NOW
from tests.conftest import order, shopify_csv

from regulars.campaigns.delivery.smtp import SmtpSettings
from regulars.campaigns.flows import load_flows
from regulars.campaigns.run import outbox_counts, plan, run_flows
from regulars.ingest.load import import_shopify_orders
from regulars.state import open_state
from regulars.web import create_app

REGULARS = str(Path(sys.executable).parent / "regulars")


def _command(tmp_path: Path, now: str = "2025-03-08 10:00:00") -> list[str]:
    return [REGULARS, "--store", str(tmp_path / "store.duckdb"), "flows", "run",
            "--flows", str(tmp_path / "flows.toml"), "--now", now,
            "--state", f"sqlite:///{tmp_path / 'state.sqlite'}"]  # fmt: skip


def _env(port: int, **extra: str) -> dict[str, str]:
    return {**os.environ, "REGULARS_SMTP_PORT": str(port), "REGULARS_SECRET": "s3cret",
            "REGULARS_MAIL_FROM": "shop@shop.test", **extra}  # fmt: skip


def _killed(tmp_path: Path, port: int, kill_at: str) -> subprocess.CompletedProcess:
    """`regulars flows run` in its own process, killed at `kill_at`."""
    return subprocess.run(
        _command(tmp_path), check=False, env=_env(port, REGULARS_KILL_AT=kill_at),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _rerun(tmp_path: Path, port: int, monkeypatch: pytest.MonkeyPatch):
    """The next cron run, here in the test's process, on the same store and state."""
    from regulars.backends import connect

    monkeypatch.setenv("REGULARS_SECRET", "s3cret")
    wh = connect(str(tmp_path / "store.duckdb"))
    state = open_state(f"sqlite:///{tmp_path / 'state.sqlite'}")
    smtp = SmtpSettings(host="127.0.0.1", port=port, mail_from="shop@shop.test")
    try:
        run_flows(wh, state, load_flows(tmp_path / "flows.toml"), smtp,
                  now=dt.datetime(2025, 3, 8, 10, 5, tzinfo=dt.UTC))  # fmt: skip
    finally:
        wh.close()
    return state


@pytest.mark.parametrize(
    "kill_at",
    # after deciding; after writing the outbox; before the 1st and the 2nd
    # message is handed to the server; after the 2nd is marked sent.
    ["planned", "written", "connecting:1", "connecting:2", "recorded:2"],
)
def test_killed_at_any_step_then_rerun_sends_each_message_once(
    shop, smtp_server, tmp_path, kill_at, monkeypatch
):
    controller, inbox = smtp_server
    shop.close()  # the runs below are other processes
    (tmp_path / "flows.toml").write_text(textwrap.dedent(FLOWS), encoding="utf-8")
    killed = _killed(tmp_path, controller.port, kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    before = len(inbox.messages())
    assert before == {"connecting:2": 1, "recorded:2": 2}.get(kill_at, 0)
    state = _rerun(tmp_path, controller.port, monkeypatch)
    received = inbox.messages()
    assert sorted(m["To"] for m in received) == ["anna@example.com", "cara@example.com"]
    assert len({m["Message-ID"] for m in received}) == 2
    assert outbox_counts(state) == {"sent": 2}


def test_killed_between_acceptance_and_record_resends_with_the_same_message_id(
    shop, smtp_server, tmp_path, monkeypatch
):
    """The one window SMTP cannot close (docs/flows.md, "Exactly once"): the
    server took the message, the outbox had not yet said so. The next run
    sends it again, under the same Message-ID, and nothing else twice."""
    controller, inbox = smtp_server
    shop.close()
    (tmp_path / "flows.toml").write_text(textwrap.dedent(FLOWS), encoding="utf-8")
    assert (
        _killed(tmp_path, controller.port, "accepted:1").returncode == -signal.SIGKILL
    )
    _rerun(tmp_path, controller.port, monkeypatch)
    ids = [m["Message-ID"] for m in inbox.messages()]
    assert len(ids) == 3 and len(set(ids)) == 2
    first = inbox.messages()[0]["Message-ID"]
    assert ids.count(first) == 2


def test_unsubscribe_between_preview_and_run_is_honoured(setup, tmp_path):
    shop, state, flows, smtp, inbox = setup
    run_flows(shop, state, flows, smtp, now=NOW)  # thanks for the 03-01 orders
    first = next(m for m in inbox.messages() if m["To"] == "anna@example.com")
    again = [order("#9", Email="anna@example.com", lines=[], **{"Billing Name": "Anna Berg",
             "Accepts Marketing": "yes", "Created at": "2025-03-10 09:00:00"})]  # fmt: skip
    import_shopify_orders(shop, str(shopify_csv(tmp_path / "more.csv", again)))
    later = NOW + dt.timedelta(days=9)
    preview = {d.email: d.outcome for d in plan(shop, state, flows, now=later)}
    assert preview == {"anna@example.com": "send"}
    link = first["List-Unsubscribe"].strip("<>").removeprefix("http://shop.test")
    assert TestClient(create_app(state)).post(link).status_code == 200
    report = run_flows(shop, state, flows, smtp, now=later)
    assert [(d.email, d.outcome) for d in report.decisions] == [
        ("anna@example.com", "unsubscribed")
    ]
    assert report.delivered == 0
    assert [m["To"] for m in inbox.messages()].count("anna@example.com") == 1


def test_overlapping_runs_deliver_each_message_once(shop, smtp_server, tmp_path):
    """Cron starts a run while the last one is still delivering to a slow server."""
    controller, inbox = smtp_server
    (tmp_path / "flows.toml").write_text(textwrap.dedent(FLOWS), encoding="utf-8")
    state = open_state(f"sqlite:///{tmp_path / 'state.sqlite'}")
    down = SmtpSettings(host="127.0.0.1", port=1, mail_from="shop@shop.test", timeout=2)
    first = run_flows(shop, state, load_flows(tmp_path / "flows.toml"), down, now=NOW)
    assert outbox_counts(state) == {"pending": 2} and first.retrying == 2
    shop.close()
    inbox.delay = 1.5
    runs = [
        subprocess.Popen(_command(tmp_path, "2025-03-08 10:05:00"), env=_env(controller.port),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]  # fmt: skip
    for run in runs:
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
    ids = [m["Message-ID"] for m in inbox.messages()]
    assert len(ids) == len(set(ids)) == 2
    assert outbox_counts(state) == {"sent": 2}
