"""Open the app state: a SQLite file (WAL) by default, any SQLAlchemy URL otherwise."""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import os
import secrets
import socket
from collections.abc import Iterator

from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from regulars.errors import StoreError
from regulars.state.models import Base, Setting, Unsubscribe

__all__ = [
    "StateStore", "default_state_url", "email_sha256", "lapsed", "open_state", "owner",
]  # fmt: skip


def default_state_url(store: str) -> str:
    """The app state beside a warehouse: ``shop.duckdb`` -> ``shop.state.sqlite``."""
    scheme, sep, rest = store.partition("://")
    if sep and scheme == "spark":
        return f"sqlite:///{os.path.join(rest, 'state.sqlite')}"
    path = rest if sep else store
    base = path.removesuffix(".duckdb")
    return f"sqlite:///{base}.state.sqlite"


def email_sha256(email: str) -> str:
    """SHA-256 of a trimmed, lower-cased email: how unsubscribes remember people."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def _wal(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def owner() -> str:
    """This process, as claims and locks name it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def lapsed(claimed_by: str | None, until: _dt.datetime | None) -> bool:
    """Whether a claim or lock no longer holds: none, expired, or its process
    on this host is gone (killed mid-run)."""
    if claimed_by is None or until is None:
        return True
    if until < _dt.datetime.now(_dt.UTC):
        return True
    host, _, pid = claimed_by.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _zombie(int(pid))


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


class StateStore:
    """The app state database: sessions, the signing key, unsubscribes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except SQLAlchemyError as exc:
                session.rollback()
                raise StoreError(
                    f"the app state write failed and was undone: {exc}"
                ) from exc
            except BaseException:
                session.rollback()
                raise

    def signing_key(self) -> bytes:
        """The key that signs unsubscribe and rating links.

        ``REGULARS_SECRET`` when set; otherwise a random key made on first use
        and kept in the app state (links stay valid across runs).
        """
        env = os.environ.get("REGULARS_SECRET")
        if env:
            return env.encode()
        with self.session() as s:
            row = s.get(Setting, "signing_key")
            if row is None:
                row = Setting(key="signing_key", value=secrets.token_hex(32))
                s.add(row)
            return row.value.encode()

    def try_lock(self, name: str, *, minutes: int = 15) -> bool:
        """Take lock `name` for this process unless a live one holds it
        (compare and set on the settings row ``lock:NAME``)."""
        from sqlalchemy import update
        from sqlalchemy.exc import IntegrityError

        key = f"lock:{name}"
        until = _dt.datetime.now(_dt.UTC) + _dt.timedelta(minutes=minutes)
        mine = f"{owner()}|{until.isoformat()}"
        try:
            with self.session() as s:
                row = s.get(Setting, key)
                if row is None:
                    s.add(Setting(key=key, value=mine))
                    return True
                holder, _, held_until = row.value.partition("|")
                free = not holder or lapsed(
                    holder,
                    _dt.datetime.fromisoformat(held_until) if held_until else None,
                )
                if not free and holder != owner():
                    return False
                done = s.execute(
                    update(Setting).where(Setting.key == key, Setting.value == row.value)
                    .values(value=mine).execution_options(synchronize_session=False)
                )  # fmt: skip
                return done.rowcount == 1
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                return False  # another process inserted the lock first
            raise

    def unlock(self, name: str) -> None:
        """Release lock `name` if this process holds it."""
        with self.session() as s:
            row = s.get(Setting, f"lock:{name}")
            if row is not None and row.value.partition("|")[0] == owner():
                row.value = ""

    def unsubscribed(self) -> set[str]:
        """Email hashes of everyone who unsubscribed."""
        with self.session() as s:
            return set(s.scalars(select(Unsubscribe.email_sha256)))

    def close(self) -> None:
        self.engine.dispose()


def _add_missing_columns(engine: Engine) -> None:
    """Columns added to app state tables since they were created (nullable ones)."""
    from sqlalchemy import inspect, text

    inspector = inspect(engine)
    with engine.begin() as connection:
        for table in Base.metadata.sorted_tables:
            have = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in have and column.nullable:
                    kind = column.type.compile(dialect=engine.dialect)
                    connection.execute(
                        text(
                            f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'
                        )
                    )


def open_state(url: str) -> StateStore:
    """Open (and on first use create) the app state at SQLAlchemy `url`.

    Raises
    ------
    StoreError
        If the database cannot be opened or created.
    """
    try:
        engine = create_engine(url)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _wal)
        Base.metadata.create_all(engine)
        _add_missing_columns(engine)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open the app state: {exc}", file=url) from exc
    return StateStore(engine)
