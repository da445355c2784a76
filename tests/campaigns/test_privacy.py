"""Messages in the customer profile; `forget` erases them from app state too."""

from __future__ import annotations

from sqlalchemy import select
from tests.campaigns.conftest import NOW

from regulars.campaigns.run import plan, run_flows
from regulars.privacy import forget
from regulars.profile import customer_profile
from regulars.state.models import Send


def test_profile_lists_messages_and_forget_erases_them(setup):
    shop, state, flows, smtp, _ = setup
    run_flows(shop, state, flows, smtp, now=NOW)
    profile = customer_profile(shop, "anna@example.com", as_of=NOW.date(), state=state)
    [message] = profile["messages"]
    assert (message["flow"], message["status"], message["subject"]) == (
        "thanks", "sent", "Thank you, Anna"
    )  # fmt: skip
    assert "Hello Anna" in message["body"] and message["email"] == "anna@example.com"

    erasure = forget(shop, "anna@example.com", state=state)
    assert erasure.records["messages"] == 1
    with state.session() as s:
        rows = list(s.scalars(select(Send)))
    anna = [r for r in rows if r.customer_id == erasure.anonymous_id]
    assert len(anna) == 1 and anna[0].key.startswith(
        f"thanks/1/{erasure.anonymous_id}/"
    )
    assert (anna[0].email, anna[0].subject, anna[0].body) == (None, None, None)
    everything = " ".join(str(v) for r in rows for v in vars(r).values())
    assert "anna" not in everything.lower()
    # Cara's message is untouched; and the anonymised decision is not taken again.
    assert any(r.email == "cara@example.com" and r.body for r in rows)
    again = {d.customer_id: d.outcome for d in plan(shop, state, flows, now=NOW)}
    assert again[erasure.anonymous_id] == "already"
