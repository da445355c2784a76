"""App state tables (SQLAlchemy): operational rows written one at a time.

Sends form the outbox: a row is written, with its key, before anything is
delivered, so a process killed at any point finds its work on the next run.
Personal data kept here (the address a message went to, its rendered text)
is erased by `regulars forget`; unsubscribes keep only a hash of the email,
so they outlive an erasure.
"""

from __future__ import annotations

import datetime as _dt

from sqlalchemy import DateTime, Integer, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "FlowRun", "Rating", "Send", "Setting", "Unsubscribe"]


class Base(DeclarativeBase):
    """Declarative base of the app state tables."""


class UTCDateTime(TypeDecorator[_dt.datetime]):
    """A UTC timestamp: stored without zone (SQLite keeps none), returned aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("app state times must be time-zone aware")
        return value.astimezone(_dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):  # type: ignore[no-untyped-def]
        return None if value is None else value.replace(tzinfo=_dt.UTC)


def _utc(column: str) -> Mapped[_dt.datetime]:
    del column
    return mapped_column(UTCDateTime())


class Send(Base):
    """One decision about one message: to send it, or to hold the customer out.

    `key` is ``flow/step/customer/occurrence``: the same trigger occurrence
    never produces a second row. `status` is ``pending`` (written, not yet
    delivered), ``sent``, ``failed`` (permanently, with the server's answer)
    or ``held_out`` (in the flow's holdout group: recorded, never sent).
    """

    __tablename__ = "sends"
    __table_args__ = (UniqueConstraint("key", name="uq_sends_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(400))
    flow: Mapped[str] = mapped_column(String(100), index=True)
    step: Mapped[int] = mapped_column(Integer, default=1)
    customer_id: Mapped[str] = mapped_column(String(100), index=True)
    occurrence: Mapped[str] = mapped_column(String(200))
    group: Mapped[str] = mapped_column(String(20))  # treatment, holdout
    marketing: Mapped[bool] = mapped_column(default=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    decided_at: Mapped[_dt.datetime] = _utc("decided_at")
    email: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[_dt.datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[_dt.datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    # A delivering process's claim ("host:pid") and when it lapses (wall clock):
    # two overlapping runs never hand the same message to the server.
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[_dt.datetime | None] = mapped_column(UTCDateTime())


class Unsubscribe(Base):
    """A customer who asked for no more marketing email (by link or one-click)."""

    __tablename__ = "unsubscribes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_sha256: Mapped[str] = mapped_column(String(64), index=True)
    customer_id: Mapped[str | None] = mapped_column(String(100))
    at: Mapped[_dt.datetime] = _utc("at")
    via: Mapped[str] = mapped_column(String(20))  # link, one-click


class Rating(Base):
    """A 1-5 rating clicked in a feedback request."""

    __tablename__ = "ratings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    send_id: Mapped[int] = mapped_column(Integer, index=True)
    customer_id: Mapped[str] = mapped_column(String(100))
    rating: Mapped[int] = mapped_column(Integer)
    at: Mapped[_dt.datetime] = _utc("at")


class FlowRun(Base):
    """One `regulars flows run`: when, for which clock time, what it did."""

    __tablename__ = "flow_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[_dt.datetime] = _utc("started_at")
    now: Mapped[_dt.datetime] = _utc("now")
    due: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    held_out: Mapped[int] = mapped_column(Integer, default=0)
    deferred: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)


class Setting(Base):
    """Key/value settings of the app state, e.g. the key that signs links."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
