"""A bounded psycopg connection pool, versioned migrations and error mapping."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from importlib import resources
from typing import Any, cast

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from eventpro.adapters.dialects import postgres_target
from eventpro.adapters.journal import Journal, Recording
from eventpro.ports import Conflict, Misconfigured, StoreError, Unavailable

POOL_MAX = 10  # connections per process: workers write in batches, so few are needed
POOL_TIMEOUT = 5.0  # seconds to wait for a connection before answering "unavailable"
MIGRATION_LOCK = 0x45_56_50_52  # pg_advisory_xact_lock key: "EVPR"


@contextmanager
def mapped_errors() -> Iterator[None]:
    """Translate psycopg errors into the port's `StoreError` family."""
    try:
        yield
    except psycopg.errors.IntegrityError as exc:
        raise Conflict(str(exc)) from exc
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise Unavailable(f"postgresql: {exc}") from exc
    except psycopg.errors.UndefinedTable as exc:
        raise Misconfigured(f"postgresql: schema missing, run `eventpro migrate`: {exc}") from exc
    except psycopg.Error as exc:
        raise StoreError(f"postgresql: {exc}") from exc


class PostgresDatabase:
    """A pool of connections whose `search_path` is the adapter's schema."""

    def __init__(self, url: str, max_size: int = POOL_MAX) -> None:
        conninfo, self.schema = postgres_target(url)
        # When a list, every autocommit statement is appended to it (see `ceiling.Replay`).
        self.journal: Journal | None = None
        self.pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_size,
            timeout=POOL_TIMEOUT,
            kwargs={"options": f"-c search_path={self.schema}", "autocommit": False},
            open=False,
        )
        try:
            with mapped_errors():
                self.pool.open(wait=True, timeout=POOL_TIMEOUT)
            self.migrate()
        except BaseException:
            self.pool.close()  # stop its background reconnection attempts
            raise

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """One transaction on a pooled connection: committed on success, else rolled back."""
        with mapped_errors(), self.pool.connection() as conn:
            yield conn

    @contextmanager
    def statement(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """A pooled connection in autocommit mode: each statement is its own transaction,
        with no BEGIN and COMMIT round trips around it."""
        with mapped_errors(), self.pool.connection() as conn:
            conn.autocommit = True
            try:
                if self.journal is None:
                    yield conn
                else:
                    transaction = self.journal.note()
                    yield cast(psycopg.Connection[tuple[Any, ...]], Recording(conn, transaction))
            finally:
                # back as the pool lends it; a broken connection is the pool's to discard
                with suppress(psycopg.Error):
                    conn.autocommit = False

    def migrate(self) -> None:
        """Apply the numbered `.sql` files not applied yet, under an advisory lock.

        Safe to run twice and from two processes at once: the second waits for the lock,
        then finds every version recorded in `eventpro_migrations`.
        """
        scripts = sorted(
            resources.files(__package__).joinpath("migrations").iterdir(), key=lambda f: f.name
        )
        with self.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            create = sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            conn.execute(create)
            conn.execute(
                "CREATE TABLE IF NOT EXISTS eventpro_migrations"
                " (version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM eventpro_migrations")}
            for version, script in enumerate(scripts, start=1):
                if version in done:
                    continue
                conn.execute(script.read_text().encode())
                conn.execute(
                    "INSERT INTO eventpro_migrations (version, name) VALUES (%s, %s)",
                    (version, script.name),
                )

    def ping(self) -> None:
        with self.transaction() as conn:
            conn.execute("SELECT 1")

    def close(self) -> None:
        self.pool.close()
