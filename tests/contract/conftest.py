"""Fixtures of the conformance suite: every adapter pair, built by URL, on a fresh store.

Backends: `memory` (the reference model), `sqlite` (a fresh file per test),
`cluster`: the PostgreSQL store (a fresh schema per test) with the Redis queue (a fresh
key prefix per test), on the servers of `EVENTPRO_TEST_POSTGRES_URL` and
`EVENTPRO_TEST_REDIS_URL`, and `mariadb`: the MySQL/MariaDB store (a fresh database per
test on the server of `EVENTPRO_TEST_MYSQL_URL`) with the memory queue. Under `CI=true` a
server that is not set or does not answer fails the run; elsewhere the suite starts
throwaway PostgreSQL and Redis servers (`initdb`/`pg_ctl`, `redis-server`) if it can, and
skips a backend with the reason if it cannot. Each test names a contract of the ports;
every adapter must pass all of them unchanged.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest

from eventpro.adapters import open_queue, open_store
from eventpro.adapters.mysql import MysqlDatabase
from eventpro.ports import InventoryStore, PurchaseQueue, Unavailable
from tests.support import ThrowawayPostgres, mysql_database, redis_answers, throwaway_redis

POSTGRES_URL = os.environ.get("EVENTPRO_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("EVENTPRO_TEST_REDIS_URL")
MYSQL_URL = os.environ.get("EVENTPRO_TEST_MYSQL_URL")
BACKENDS = ["memory", "sqlite", "cluster", "mariadb", "dynamodb"]
IN_CI = os.environ.get("CI") == "true"


def _with(url: str, name: str, value: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{name}={value}"


def _answers(postgres_url: str | None, redis_url: str | None) -> str | None:
    """None when both servers answer, else why not."""
    if not (postgres_url and redis_url):
        return "EVENTPRO_TEST_POSTGRES_URL and EVENTPRO_TEST_REDIS_URL are not both set"
    try:
        with psycopg.connect(postgres_url, connect_timeout=3):
            pass
    except psycopg.Error as exc:
        return f"PostgreSQL at {postgres_url} does not answer: {exc}"
    if not redis_answers(redis_url):
        return f"Redis at {redis_url} does not answer"
    return None


@pytest.fixture(scope="session")
def cluster_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(PostgreSQL URL, Redis URL) of the cluster backend, as the module docstring says."""
    missing = _answers(POSTGRES_URL, REDIS_URL)
    if missing is None:
        assert POSTGRES_URL and REDIS_URL
        yield POSTGRES_URL, REDIS_URL
        return
    if IN_CI:
        pytest.fail(f"cluster backend: {missing} (CI=true: a missing service is a failure)")
    servers = contextlib.ExitStack()
    try:
        postgres = servers.enter_context(ThrowawayPostgres())
        redis_url = servers.enter_context(throwaway_redis(tmp_path_factory.mktemp("redis")))
    except (OSError, subprocess.CalledProcessError, AssertionError) as exc:
        servers.close()
        pytest.skip(f"cluster backend: {missing}, and no throwaway servers could start: {exc}")
    with servers:
        yield postgres.url, redis_url


def urls(
    backend: str, tmp_path: Path, scope: str, servers: tuple[str, str] | None
) -> tuple[str, str]:
    if backend == "memory":
        return "memory://", "memory://"
    if backend == "cluster":
        assert servers is not None
        return _with(servers[0], "schema", scope), _with(servers[1], "prefix", scope)
    if backend == "mariadb":
        if not MYSQL_URL:
            unreachable("mariadb", "EVENTPRO_TEST_MYSQL_URL is not set")
        return mysql_database(str(MYSQL_URL), scope), "memory://"
    url = f"sqlite:///{tmp_path / 'contract.db'}"
    return url, url


_unreachable: dict[str, str] = {}


def open_backend(
    backend: str, store_url: str, queue_url: str
) -> tuple[InventoryStore, PurchaseQueue]:
    """Open both; a server that does not answer fails under CI and skips elsewhere."""
    reason = _unreachable.get(backend)
    if reason is None:
        try:
            return open_store(store_url), open_queue(queue_url)
        except Unavailable as exc:
            reason = _unreachable[backend] = f"{backend} not reachable: {exc}"
    unreachable(backend, reason)


def unreachable(backend: str, reason: str) -> NoReturn:
    """A backend's server is missing: a failure under CI, a skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{backend}: {reason} (CI=true: a missing service is a failure)")
    pytest.skip(f"{backend}: {reason}")


def clean_up(store: InventoryStore, queue: PurchaseQueue, scope: str) -> None:
    """Drop the test's PostgreSQL schema and Redis keys, if it had any."""
    db = getattr(store, "db", None)
    if db is not None and getattr(db, "schema", None) == scope:
        with db.transaction() as conn:
            conn.execute(f'DROP SCHEMA "{scope}" CASCADE')
    if isinstance(db, MysqlDatabase) and db.name == scope:
        db.drop()
    client = getattr(queue, "client", None)
    if client is not None and getattr(queue, "prefix", None) == scope:
        keys = list(client.scan_iter(match=f"{scope}:*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture(params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[InventoryStore, PurchaseQueue]]:
    if request.param == "dynamodb":  # the AWS tier, on the emulator (tests/aws_support.py)
        yield request.getfixturevalue("dynamodb_store"), request.getfixturevalue("dynamodb_queue")
        return
    scope = f"eventpro_test_{uuid.uuid4().hex[:12]}"
    servers = request.getfixturevalue("cluster_servers") if request.param == "cluster" else None
    store, queue = open_backend(request.param, *urls(request.param, tmp_path, scope, servers))
    yield store, queue
    clean_up(store, queue, scope)
    queue.close()
    store.close()


@pytest.fixture
def store(backend: tuple[InventoryStore, PurchaseQueue]) -> InventoryStore:
    return backend[0]


@pytest.fixture
def queue(backend: tuple[InventoryStore, PurchaseQueue]) -> PurchaseQueue:
    return backend[1]
