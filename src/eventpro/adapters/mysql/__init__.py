"""The inventory store on MySQL or MariaDB: the incident's database kind, for the replay's
strategies and for deployments that already run it (PyMySQL, SQLAlchemy's bounded pool)."""

from __future__ import annotations

from eventpro.adapters.mysql.database import MysqlDatabase
from eventpro.adapters.mysql.store import MysqlInventoryStore


def store_from_url(url: str) -> MysqlInventoryStore:
    """`mysql://user:password@host:3306/name` or `mariadb://…` (the database is created
    if missing)."""
    return MysqlInventoryStore(MysqlDatabase(url))


__all__ = ["MysqlDatabase", "MysqlInventoryStore", "store_from_url"]
