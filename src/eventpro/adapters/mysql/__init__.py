"""The inventory store on MySQL or MariaDB: the incident's database kind, for the replay's
strategies and for deployments that already run it (PyMySQL, SQLAlchemy's bounded pool)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa

from eventpro.adapters.dialects import MYSQL_OPTIONS, checked_name, mysql_target
from eventpro.adapters.mysql.database import MysqlDatabase, mapped_errors
from eventpro.adapters.mysql.store import MysqlInventoryStore


def store_from_url(url: str) -> MysqlInventoryStore:
    """`mysql://user:password@host:3306/name` or `mariadb://…` (the database is created
    if missing)."""
    return MysqlInventoryStore(MysqlDatabase(url))


def scoped_url(url: str, scope: str) -> str:
    """The same server, in a database of its own."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{checked_name(scope, 'database')}", query=""))


def drop_scope(url: str) -> None:
    server, name = mysql_target(url)
    engine = sa.create_engine(server, connect_args=MYSQL_OPTIONS, poolclass=sa.NullPool)
    try:
        with mapped_errors(), engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")  # name: checked
    finally:
        engine.dispose()


def max_connections(url: str) -> int:
    """How many connections the server takes."""
    server, _ = mysql_target(url)
    engine = sa.create_engine(server, connect_args=MYSQL_OPTIONS, poolclass=sa.NullPool)
    try:
        with mapped_errors(), engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT @@max_connections").scalar_one())
    finally:
        engine.dispose()


__all__ = [
    "MysqlDatabase",
    "MysqlInventoryStore",
    "drop_scope",
    "max_connections",
    "scoped_url",
    "store_from_url",
]
