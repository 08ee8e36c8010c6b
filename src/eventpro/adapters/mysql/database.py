"""A bounded pool of PyMySQL connections (SQLAlchemy's), versioned migrations, errors mapped."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventpro.adapters.dialects import MYSQL_OPTIONS, mysql_target
from eventpro.ports import Conflict, Misconfigured, StoreError, Unavailable

POOL_SIZE = 10  # connections per process: workers write in batches, so few are needed
POOL_TIMEOUT = 5.0  # seconds to wait for a connection before answering "unavailable"
MIGRATION_LOCK = "eventpro_migrations"  # GET_LOCK name: one migrating process at a time
MIGRATION_LOCK_WAIT = 60  # seconds
# Server error codes that mean "not there yet" or "try again" rather than a bad request.
# https://mariadb.com/kb/en/mariadb-error-code-reference/
MISSING_TABLE = 1146
TRANSIENT = frozenset({1205, 1213, 2002, 2003, 2006, 2013})  # lock wait, deadlock, link


@contextmanager
def mapped_errors() -> Iterator[None]:
    """Translate SQLAlchemy and PyMySQL errors into the port's `StoreError` family."""
    try:
        yield
    except sa.exc.IntegrityError as exc:
        raise Conflict(f"mysql: {exc.orig}") from exc
    except sa.exc.TimeoutError as exc:
        raise Unavailable(f"mysql: no free connection: {exc}") from exc
    except sa.exc.DBAPIError as exc:
        code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
        if code == MISSING_TABLE:
            raise Misconfigured(
                f"mysql: schema missing, run `eventpro migrate`: {exc.orig}"
            ) from exc
        if exc.connection_invalidated or code in TRANSIENT:
            raise Unavailable(f"mysql: {exc.orig}") from exc
        raise StoreError(f"mysql: {exc.orig}") from exc


class MysqlDatabase:
    """A pool of connections to one database, created with its schema if missing."""

    def __init__(self, url: str, pool_size: int = POOL_SIZE) -> None:
        server, self.name = mysql_target(url)
        options = MYSQL_OPTIONS
        with mapped_errors():
            bootstrap = sa.create_engine(server, connect_args=options, poolclass=sa.NullPool)
            with bootstrap.connect() as conn:
                conn.exec_driver_sql(
                    f"CREATE DATABASE IF NOT EXISTS `{self.name}`"  # name: checked above
                    " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                )
            bootstrap.dispose()
        self.engine = sa.create_engine(
            f"{server.rstrip('/')}/{self.name}",
            connect_args=options,
            pool_size=pool_size,
            max_overflow=0,
            pool_timeout=POOL_TIMEOUT,
            pool_pre_ping=True,
            isolation_level="READ COMMITTED",
        )
        try:
            self.migrate()
        except BaseException:
            self.engine.dispose()
            raise

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction on a pooled connection: committed on success, else rolled back."""
        with mapped_errors(), self.engine.begin() as conn:
            yield conn

    def migrate(self) -> None:
        """Apply the numbered `.sql` files not applied yet, under a named server lock.

        MySQL commits each DDL statement on its own, so the scripts are written to be run
        again (`IF NOT EXISTS`); a version is recorded once its script has run through.
        """
        scripts = sorted(
            resources.files(__package__).joinpath("migrations").iterdir(), key=lambda f: f.name
        )
        with mapped_errors(), self.engine.connect() as conn:
            got = conn.exec_driver_sql(
                "SELECT GET_LOCK(%s, %s)", (MIGRATION_LOCK, MIGRATION_LOCK_WAIT)
            ).scalar()
            if got != 1:
                raise Unavailable("mysql: another process holds the migration lock")
            try:
                conn.exec_driver_sql(
                    "CREATE TABLE IF NOT EXISTS eventpro_migrations (version INT PRIMARY KEY,"
                    " name VARCHAR(200) NOT NULL,"
                    " applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))"
                )
                done = {
                    r[0] for r in conn.exec_driver_sql("SELECT version FROM eventpro_migrations")
                }
                for version, script in enumerate(scripts, start=1):
                    if version in done:
                        continue
                    for statement in _statements(script.read_text()):
                        conn.exec_driver_sql(statement)
                    conn.exec_driver_sql(
                        "INSERT INTO eventpro_migrations (version, name) VALUES (%s, %s)",
                        (version, script.name),
                    )
                    conn.commit()
            finally:
                conn.exec_driver_sql("SELECT RELEASE_LOCK(%s)", (MIGRATION_LOCK,))

    def ping(self) -> None:
        with self.transaction() as conn:
            conn.exec_driver_sql("SELECT 1")

    def drop(self) -> None:
        """Drop the whole database (tests and benchmarks clean up with this)."""
        with mapped_errors(), self.engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{self.name}`")

    def close(self) -> None:
        self.engine.dispose()


def _statements(script: str) -> list[str]:
    """The statements of a migration file: `;` ends one at the end of a line."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    statements = (s.strip().rstrip(";") for s in "\n".join(lines).split(";\n"))
    return [s for s in statements if s]
