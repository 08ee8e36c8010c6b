"""The synchronous strategies: each purchase decided inside its HTTP call, on one pooled
connection, against the inventory store's own tables (so `eventpro audit` checks them).

They exist to be measured against the queue (`eventpro replay`), never as a default:

- `naive` is the monolith of the incident: every statement commits on its own (MySQL's
  autocommit), so it reads the stock, checks it in Python and, 20 ms later (the
  monolith's work and a network round trip under load), writes back the computed value;
  two buyers who read the same stock both sell it. Driver errors are not mapped: they
  become 500s, as they did.
- `locking` reads under a row lock (`SELECT … FOR UPDATE`; `BEGIN IMMEDIATE` on SQLite,
  whose only lock is the database's), then writes in the same transaction.
- `conditional` takes the stock with one `UPDATE … WHERE remaining >= :n` and checks the
  row count; seats with `… WHERE order_id IS NULL`.

SQLAlchemy gives one pool with the incident's shape (a fixed size, a wait timeout) and
one way to bind parameters over sqlite3, psycopg and PyMySQL. Transactions are begun
explicitly on autocommit connections so that the three strategies differ only in SQL.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
import sqlalchemy as sa
from msgspec.structs import replace
from sqlalchemy import bindparam, text

from eventpro.adapters.dialects import (
    MYSQL_OPTIONS,
    from_naive_utc,
    postgres_target,
    to_naive_utc,
)
from eventpro.adapters.stock import free_seats
from eventpro.domain.allocation import SectionStock, allocate
from eventpro.domain.errors import Refused
from eventpro.domain.model import NAIVE_PAUSE_S, Event, Order, PurchaseRequest, Reason, Strategy
from eventpro.ports import IdSource, Misconfigured, StoreError, SynchronousSeller, Unavailable

ORDER_COLUMNS = "id, event_id, buyer_id, purchase_id, section, seats, quantity, amount_cents"
SECTION = text("SELECT remaining FROM sections WHERE event_id = :event AND name = :section")
SET_REMAINING = text(
    "UPDATE sections SET remaining = :remaining WHERE event_id = :event AND name = :section"
)
TAKE_STOCK = text(
    "UPDATE sections SET remaining = remaining - :n"
    " WHERE event_id = :event AND name = :section AND remaining >= :n"
)
HELD = text(
    "SELECT COALESCE(SUM(quantity), 0) FROM orders WHERE event_id = :event AND buyer_id = :buyer"
)
FREE_LOWEST = (
    "SELECT label, idx FROM seats WHERE event_id = :event AND section = :section"
    " AND order_id IS NULL ORDER BY idx LIMIT :n"
)
FREE_NAMED = (
    "SELECT label, idx FROM seats WHERE event_id = :event AND label IN :labels"
    " AND order_id IS NULL ORDER BY label"
)
MARK_SEATS = text(
    "UPDATE seats SET order_id = :order WHERE event_id = :event AND label IN :labels"
).bindparams(bindparam("labels", expanding=True))
TAKE_SEATS = text(
    "UPDATE seats SET order_id = :order WHERE event_id = :event AND label IN :labels"
    " AND order_id IS NULL"
).bindparams(bindparam("labels", expanding=True))
ORDER_OF = text(f"SELECT {ORDER_COLUMNS}, created_at FROM orders WHERE purchase_id = :purchase")
INSERT_ORDER = text(
    f"INSERT INTO orders ({ORDER_COLUMNS}, created_at) VALUES (:id, :event_id, :buyer_id,"
    " :purchase_id, :section, :seats, :quantity, :amount_cents, :created_at)"
)
POOL_WAIT = 0.005  # seconds: a checkout slower than this waited for a free connection
ANY_SEAT_TRIES = 5  # `conditional` picking "any N seats" retries when another buyer won one


class _SeatsRaced(Exception):
    """Free seats picked for a buyer were taken by another before the conditional write."""


class SqlSeller(SynchronousSeller):
    """One of the three synchronous strategies over SQLite, PostgreSQL or MariaDB."""

    def __init__(
        self, url: str, strategy: Strategy, pool_size: int = 150, pool_timeout: float = 10.0
    ) -> None:
        if strategy is Strategy.QUEUED:
            raise Misconfigured("`queued` is not a synchronous strategy")
        self.strategy = strategy
        self.engine, self.dialect = _engine(url, pool_size, pool_timeout)
        self._ids = IdSource()
        self._counts = {"waited": 0, "timed_out": 0}
        self._counts_lock = threading.Lock()
        # SQLite's one lock is the database's: BEGIN IMMEDIATE takes it up front.
        self._lock_suffix = "" if self.dialect == "sqlite" else " FOR UPDATE"
        self._warm(pool_size)

    def _warm(self, connections: int) -> None:
        """Open the pool's connections now, as a monolith's pool is open before its sale:
        PyMySQL's handshake runs in Python, and opening them under the spike would space
        the first buyers out by the interpreter lock instead of racing them."""
        with contextlib.ExitStack() as opened, self._errors_mapped():
            for _ in range(connections):
                opened.enter_context(self.engine.connect())

    def sell(
        self, purchase_id: str, event: Event, request: PurchaseRequest, now: datetime
    ) -> Order:
        with self._errors_mapped(), self._connection() as conn:
            earlier = _order_of(conn, purchase_id)
            if earlier is not None:
                return earlier
            order = Order(
                id=self._ids.new("ord"),
                event_id=event.id,
                buyer_id=request.buyer_id,
                purchase_id=purchase_id,
                section=request.section,
                seats=request.seats,
                quantity=request.quantity,
                amount_cents=request.amount_cents,
                created_at=now,
            )
            if self.strategy is Strategy.NAIVE:
                return self._naive(conn, event, order)
            decide = self._locking if self.strategy is Strategy.LOCKING else self._conditional
            for _ in range(ANY_SEAT_TRIES):
                try:
                    with self._transaction(conn):
                        return decide(conn, event, order)
                except _SeatsRaced:
                    continue  # rolled back: another buyer took one of the seats picked
                except sa.exc.IntegrityError:
                    earlier = _order_of(conn, purchase_id)  # the same key, sent twice at once
                    if earlier is None:
                        raise
                    return earlier
            raise Unavailable("could not pick free seats: too many buyers at once; retry")

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sa.Connection]:
        """A pooled connection, counting the requests that had to wait for one."""
        started = time.perf_counter()
        try:
            conn = self.engine.connect()
        except sa.exc.TimeoutError:
            self._count("timed_out")
            raise
        if time.perf_counter() - started > POOL_WAIT:
            self._count("waited")
        with conn:
            yield conn

    def _count(self, name: str) -> None:
        with self._counts_lock:
            self._counts[name] += 1

    def pool_counts(self) -> dict[str, int]:
        with self._counts_lock:
            return dict(self._counts)

    def _naive(self, conn: sa.Connection, event: Event, order: Order) -> Order:
        """Read, check in Python, write back: each statement commits on its own."""
        return self._read_check_write(conn, event, order, lock="")

    def _locking(self, conn: sa.Connection, event: Event, order: Order) -> Order:
        """The same under a lock of the section row, then its seats, in one transaction."""
        return self._read_check_write(conn, event, order, lock=self._lock_suffix)

    def _read_check_write(
        self, conn: sa.Connection, event: Event, order: Order, lock: str
    ) -> Order:
        """Read the stock, let the domain's `allocate` decide, write back the stock it
        computed: safe under the section's lock (`locking`), a race without it (`naive`)."""
        stock = self._read_stock(conn, event, order, lock)
        got = allocate(_request_of(order), stock)
        if isinstance(got, Reason):
            raise Refused(got)
        self._check_limit(conn, event, order)
        if self.strategy is Strategy.NAIVE:
            time.sleep(NAIVE_PAUSE_S)
        order = _with_seats(order, got)
        if order.seats:
            conn.execute(MARK_SEATS, _seat_keys(event, order))
        keys = {"event": event.id, "section": order.section}
        conn.execute(SET_REMAINING, {**keys, "remaining": stock.remaining})
        self._insert(conn, order)
        return order

    def _read_stock(
        self, conn: sa.Connection, event: Event, order: Order, lock: str
    ) -> SectionStock:
        """What the section holds, as far as this order needs: its count, and for a
        reserved section the named seats that are free or the lowest free ones."""
        keys = {"event": event.id, "section": order.section}
        remaining = conn.execute(text(SECTION.text + lock), keys).scalar_one()
        section = event.section(order.section)
        if section is None or not section.seats:
            return SectionStock(remaining)
        if order.seats:
            named = text(FREE_NAMED + lock).bindparams(bindparam("labels", expanding=True))
            rows = conn.execute(named, {"event": event.id, "labels": list(order.seats)})
        else:
            rows = conn.execute(text(FREE_LOWEST + lock), {**keys, "n": order.quantity})
        return SectionStock(remaining, free_seats(rows.all()))

    def _conditional(self, conn: sa.Connection, event: Event, order: Order) -> Order:
        """Take the stock with a conditional UPDATE; seats likewise, all or nothing."""
        keys = {"event": event.id, "section": order.section, "n": order.quantity}
        if conn.execute(TAKE_STOCK, keys).rowcount != 1:
            raise Refused(Reason.SOLD_OUT)
        self._check_limit(conn, event, order)
        picked = self._pick_seats(conn, event, order)
        took = picked.seats and conn.execute(TAKE_SEATS, _seat_keys(event, picked)).rowcount
        if picked.seats and took != order.quantity:
            if order.seats:  # the buyer named them: all or nothing
                raise Refused(Reason.SEAT_TAKEN)
            raise _SeatsRaced
        self._insert(conn, picked)
        return picked

    def _check_limit(self, conn: sa.Connection, event: Event, order: Order) -> None:
        # A read inside the transaction: two concurrent requests of one buyer in two
        # sections can both pass it (the queue's per-buyer counts do not have this gap).
        held = conn.execute(HELD, {"event": event.id, "buyer": order.buyer_id}).scalar_one()
        if held + order.quantity > event.per_buyer_limit:
            raise Refused(Reason.LIMIT_EXCEEDED)

    def _pick_seats(self, conn: sa.Connection, event: Event, order: Order) -> Order:
        """The order with the lowest free seats of a reserved section asked for by count;
        unchanged if it names its seats or is general admission."""
        section = event.section(order.section)
        if order.seats or section is None or not section.seats:
            return order
        args = {"event": event.id, "section": order.section, "n": order.quantity}
        chosen = tuple(row[0] for row in conn.execute(text(FREE_LOWEST), args))
        if len(chosen) < order.quantity:
            raise Refused(Reason.SOLD_OUT)
        return _with_seats(order, chosen)

    def _insert(self, conn: sa.Connection, order: Order) -> None:
        seats: object = list(order.seats)
        created: object = order.created_at
        if self.dialect != "postgresql":  # a JSON text column; ISO text on SQLite
            seats = orjson.dumps(order.seats).decode()
        if self.dialect == "sqlite":
            created = order.created_at.isoformat()
        elif self.dialect == "mysql":  # DATETIME holds no zone: UTC
            created = to_naive_utc(order.created_at)
        conn.execute(
            INSERT_ORDER,
            {
                "id": order.id,
                "event_id": order.event_id,
                "buyer_id": order.buyer_id,
                "purchase_id": order.purchase_id,
                "section": order.section,
                "seats": seats,
                "quantity": order.quantity,
                "amount_cents": order.amount_cents,
                "created_at": created,
            },
        )

    def _begin(self) -> str:
        return "BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN"

    @contextlib.contextmanager
    def _transaction(self, conn: sa.Connection) -> Iterator[None]:
        conn.execute(text(self._begin()))
        try:
            yield
        except BaseException:
            conn.execute(text("ROLLBACK"))
            raise
        conn.execute(text("COMMIT"))

    @contextlib.contextmanager
    def _errors_mapped(self) -> Iterator[None]:
        """Pool waits and lost connections answer 503; `naive` lets them be 500s."""
        if self.strategy is Strategy.NAIVE:
            yield
            return
        try:
            yield
        except (sa.exc.TimeoutError, sa.exc.OperationalError) as exc:
            raise Unavailable(f"{self.dialect}: {exc}") from exc
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"{self.dialect}: {exc}") from exc

    def close(self) -> None:
        self.engine.dispose()


def _engine(url: str, pool_size: int, pool_timeout: float) -> tuple[sa.Engine, str]:
    """A pooled SQLAlchemy engine for one of our store URLs, and its dialect's name."""
    scheme = urlsplit(url).scheme
    args: dict[str, Any] = {}
    if scheme == "sqlite":
        target = url
        args["connect_args"] = {"timeout": pool_timeout, "check_same_thread": False}
    elif scheme in ("postgresql", "postgres"):
        conninfo, schema = postgres_target(url)
        target = "postgresql+psycopg://" + conninfo.split("://", 1)[1]
        args["connect_args"] = {"options": f"-c search_path={schema}"}
    elif scheme in ("mysql", "mariadb"):
        target = "mysql+pymysql://" + url.split("://", 1)[1]
        args["connect_args"] = MYSQL_OPTIONS
    else:
        raise Misconfigured(f"no synchronous strategy on {scheme}://")
    engine = sa.create_engine(
        target,
        poolclass=sa.QueuePool,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=pool_timeout,
        isolation_level="AUTOCOMMIT",
        **args,
    )
    return engine, engine.dialect.name


def _order_of(conn: sa.Connection, purchase_id: str) -> Order | None:
    row = conn.execute(ORDER_OF, {"purchase": purchase_id}).first()
    if row is None:
        return None
    seats = row.seats if isinstance(row.seats, list) else orjson.loads(row.seats)
    created = row.created_at
    if isinstance(created, str):
        created = datetime.fromisoformat(created)
    elif created.tzinfo is None:
        created = from_naive_utc(created)
    return Order(
        id=row.id,
        event_id=row.event_id,
        buyer_id=row.buyer_id,
        purchase_id=row.purchase_id,
        section=row.section,
        seats=tuple(seats),
        quantity=row.quantity,
        amount_cents=row.amount_cents,
        created_at=created,
    )


def _request_of(order: Order) -> PurchaseRequest:
    return PurchaseRequest(
        order.buyer_id, order.section, order.quantity, order.seats, order.amount_cents
    )


def _with_seats(order: Order, seats: tuple[str, ...]) -> Order:
    return replace(order, seats=seats)


def _seat_keys(event: Event, order: Order) -> dict[str, object]:
    return {"event": event.id, "order": order.id, "labels": list(order.seats)}
