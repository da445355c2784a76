"""Open the app state: a SQLite file (WAL) by default, any SQLAlchemy URL otherwise."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Iterator

from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from regulars.errors import StoreError
from regulars.state.models import Base, Setting, Unsubscribe

__all__ = ["StateStore", "default_state_url", "email_sha256", "open_state"]


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
