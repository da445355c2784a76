"""`regulars serve`: the flows run on its schedule, and the links it serves work."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

from tests.campaigns.conftest import free_port
from tests.conftest import order, shopify_csv

from regulars.ingest.load import import_shopify_orders


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def test_serve_runs_the_flows_on_schedule_and_answers_links(
    duck, smtp_server, tmp_path
):
    controller, inbox = smtp_server
    placed = dt.datetime.now(dt.UTC) - dt.timedelta(days=7, hours=2)
    when = placed.strftime("%Y-%m-%d %H:%M:%S")
    orders = [
        order("#1", Email="anna@example.com", **{"Billing Name": "Anna Berg",
              "Accepts Marketing": "yes", "Created at": when}),
        order("#2", Email="ben@example.com", **{"Billing Name": "Ben Ode",
              "Accepts Marketing": "yes", "Created at": when}),
    ]  # fmt: skip
    import_shopify_orders(duck, str(shopify_csv(tmp_path / "orders.csv", orders)))
    duck.close()
    port = free_port()
    (tmp_path / "flows.toml").write_text(textwrap.dedent(f"""
        [settings]
        base_url = "http://127.0.0.1:{port}"
        [[flow]]
        name = "thanks"
        type = "post_purchase"
        holdout = 0
        subject = "Thank you, {{{{ first_name }}}}"
        body = "Thank you for your order."
    """), encoding="utf-8")  # fmt: skip
    env = {**os.environ, "REGULARS_SMTP_PORT": str(controller.port),
           "REGULARS_MAIL_FROM": "shop@shop.test"}  # fmt: skip
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "regulars"), "--store", str(tmp_path / "store.duckdb"),
         "serve", "--port", str(port), "--every", "1", "--flows", str(tmp_path / "flows.toml")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while len(inbox.messages()) < 2 and time.monotonic() < deadline:
            assert server.poll() is None, server.communicate()
            time.sleep(0.5)
        assert sorted(m["To"] for m in inbox.messages()) == [
            "anna@example.com", "ben@example.com"
        ]  # fmt: skip
        time.sleep(2.5)  # more ticks of the schedule: nothing is sent twice
        health = json.loads(_get(f"http://127.0.0.1:{port}/health"))
        assert health["outbox"] == {"sent": 2}
        assert (
            health["schedule"]["runs"] >= 2 and health["schedule"]["last_error"] is None
        )
        assert len(inbox.messages()) == 2
        anna = next(m for m in inbox.messages() if m["To"] == "anna@example.com")
        link = anna["List-Unsubscribe"].strip("<>")
        assert link.startswith(f"http://127.0.0.1:{port}/u/")
        request = urllib.request.Request(
            link, data=b"List-Unsubscribe=One-Click", method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
    # uvicorn shuts down cleanly, then re-raises SIGTERM as the exit status.
    assert server.returncode in (0, -signal.SIGTERM), stderr
    assert "Traceback" not in stderr
    assert "every 1 s" in stderr
