"""What the SQL adapters share about their servers: URLs, connection options, time columns.

The stores and the synchronous strategies (`synchronous.py`) reach the same servers;
what they must agree on lives here rather than in one adapter that the others import.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from eventpro.ports import Misconfigured

NAME = re.compile(r"[A-Za-z0-9_]{1,63}")  # schemas, databases: no quoting needed
MYSQL_OPTIONS = {  # of every MySQL/MariaDB connection
    "charset": "utf8mb4",
    "connect_timeout": 5,
    # refuse what does not fit rather than truncate it; times are UTC
    "init_command": "SET SESSION sql_mode = 'STRICT_ALL_TABLES', time_zone = '+00:00'",
}


def with_query(url: str, name: str, value: str) -> str:
    """`url` with the query parameter `name` set to `value`."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query[name] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


def checked_name(name: str, what: str) -> str:
    if not NAME.fullmatch(name):
        raise Misconfigured(f"the {what} name must be letters, digits and _: {name!r}")
    return name


def postgres_target(url: str) -> tuple[str, str]:
    """`postgresql://…?schema=name` → (a libpq URL without `schema`, the schema name)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    schema = checked_name(query.pop("schema", "public"), "schema")
    scheme = parts.scheme.removesuffix("+unsafe")
    return urlunsplit(parts._replace(scheme=scheme, query=urlencode(query))), schema


def mysql_target(url: str) -> tuple[str, str]:
    """`mysql://user@host:3306/name` → (a SQLAlchemy URL of the server, the database name)."""
    parts = urlsplit(url)
    name = checked_name(parts.path.lstrip("/"), "database")
    server = urlunsplit(parts._replace(scheme="mysql+pymysql", path="/", query=""))
    return server, name


def to_naive_utc(moment: datetime) -> datetime:
    """A MySQL DATETIME value: the moment in UTC, without a zone."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def from_naive_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)
