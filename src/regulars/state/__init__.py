"""App state (SQLAlchemy): sends (the outbox), unsubscribes, ratings, flow runs."""

from regulars.state.models import FlowRun, Rating, Send, Unsubscribe
from regulars.state.store import StateStore, default_state_url, email_sha256, open_state

__all__ = [
    "FlowRun",
    "Rating",
    "Send",
    "StateStore",
    "Unsubscribe",
    "default_state_url",
    "email_sha256",
    "open_state",
]
