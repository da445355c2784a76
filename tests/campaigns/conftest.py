"""A real SMTP server (aiosmtpd) on 127.0.0.1, and a small shop with known orders.

Customers (orders placed at 09:00 UTC, all accepting marketing unless said):

- Anna (anna@example.com): 2025-03-01 Coffee Beans 1kg.
- Ben (ben@example.com): 2025-03-01 Tea; no marketing consent.
- Cara (cara@example.com): 2025-02-01 and 2025-03-01, Coffee Beans 1kg.
- a guest order without email on 2025-03-01.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import textwrap
import threading
from email import message_from_bytes, policy
from email.message import Message

import pytest
from aiosmtpd.controller import Controller
from tests.conftest import order, shopify_csv

from regulars.ingest.load import import_shopify_orders

COFFEE = [{"Lineitem quantity": "1", "Lineitem name": "Coffee Beans 1kg",
           "Lineitem price": "20.00", "Lineitem sku": "COF-1KG"}]  # fmt: skip
ORDERS = [
    order("#1", Email="anna@example.com", **{"Billing Name": "Anna Berg",
          "Accepts Marketing": "yes", "Created at": "2025-03-01 09:00:00"}, lines=COFFEE),
    order("#2", Email="ben@example.com", **{"Billing Name": "Ben Ode",
          "Accepts Marketing": "no", "Created at": "2025-03-01 09:00:00"}),
    order("#3", Email="cara@example.com", **{"Billing Name": "Cara Lind",
          "Accepts Marketing": "yes", "Created at": "2025-02-01 09:00:00"}, lines=COFFEE),
    order("#4", Email="cara@example.com", **{"Billing Name": "Cara Lind",
          "Accepts Marketing": "yes", "Created at": "2025-03-01 09:00:00"}, lines=COFFEE),
    order("#5", Email="", **{"Created at": "2025-03-01 09:00:00"}),
]  # fmt: skip


class Inbox:
    """What the server received: envelopes and parsed messages."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[list[str], Message]] = []
        self.refuse: str | None = None  # an SMTP answer to give instead of 250
        self.delay = 0.0  # seconds to take over each message

    async def handle_DATA(self, server, session, envelope):
        del server, session
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.refuse:
            return self.refuse
        with self.lock:
            self.received.append(
                (
                    list(envelope.rcpt_tos),
                    message_from_bytes(envelope.content, policy=policy.default),
                )
            )
        return "250 OK"

    def messages(self) -> list[Message]:
        with self.lock:
            return [m for _, m in self.received]

    def clear(self) -> None:
        with self.lock:
            self.received.clear()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.fixture
def shop(duck, tmp_path):
    import_shopify_orders(duck, str(shopify_csv(tmp_path / "orders.csv", ORDERS)))
    return duck


#: A thank-you flow over the shop: due 7 days after each order, no holdout.
FLOWS = """
[settings]
base_url = "http://shop.test"
frequency_cap_days = 3

[[flow]]
name = "thanks"
type = "post_purchase"
delay_days = 7
holdout = 0
subject = "Thank you, {{ first_name }}"
body = '''
Hello {{ first_name }}, how was {{ last_products | join(", ") }}?
Rate us: {% for n, url in rating_urls.items() %}{{ n }}: {{ url }} {% endfor %}
'''
"""
NOW = dt.datetime(2025, 3, 8, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def setup(shop, smtp_server, tmp_path):
    """The shop, its app state, the FLOWS file loaded, SMTP settings for the
    test server, and the server's inbox."""
    from regulars.campaigns.delivery.smtp import SmtpSettings
    from regulars.campaigns.flows import load_flows
    from regulars.state import open_state

    controller, inbox = smtp_server
    path = tmp_path / "flows.toml"
    path.write_text(textwrap.dedent(FLOWS), encoding="utf-8")
    state = open_state(f"sqlite:///{tmp_path / 'state.sqlite'}")
    smtp = SmtpSettings(
        host="127.0.0.1", port=controller.port, mail_from="shop@shop.test"
    )
    return shop, state, load_flows(path), smtp, inbox


def demo_store(folder, config):
    """A demo store in `folder` (customers and orders imported) with the demo's
    flows file and a new app state: (warehouse, flows, state)."""
    from regulars.backends import connect
    from regulars.campaigns.flows import load_flows
    from regulars.demo import write_demo_files
    from regulars.demo.flows import DEMO_FLOWS
    from regulars.ingest.load import import_shopify_customers
    from regulars.state import open_state

    files = write_demo_files(config, str(folder))
    wh = connect(str(folder / "store.duckdb"))
    import_shopify_customers(wh, files.customers)
    import_shopify_orders(wh, files.orders)
    (folder / "flows.toml").write_text(DEMO_FLOWS, encoding="utf-8")
    flows = load_flows(folder / "flows.toml")
    return wh, flows, open_state(f"sqlite:///{folder / 'state.sqlite'}")
