"""One SQLite file in WAL mode: per-thread connections, migrations and error mapping."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import cast
from urllib.parse import parse_qs, urlsplit

from eventpro.adapters.journal import Journal, Recording
from eventpro.ports import Conflict, Misconfigured, StoreError, Unavailable

BUSY_TIMEOUT_MS = 5_000
# The writers of every process take turns by a lock on a file beside the database before
# BEGIN IMMEDIATE. SQLite's busy handler sleeps 1 to 100 ms between its tries, so with
# several processes writing (`serve --processes 2`, a worker) the write lock often sat
# free while they slept: a writer waited up to 440 ms, and the demo's p99 answer took
# 110-131 ms. Tried every TURN_POLL, the lock passes within a fraction of a millisecond:
# p99 54-65 ms (docs/perf.md). Polled, not blocking, so a wait stays bounded.
TURN_POLL = 0.0002  # seconds
# WAL checkpoints run in a thread of their own, every so often, instead of inside the
# commit that crosses the auto-checkpoint size: that commit (a group of admissions)
# would wait tens of milliseconds for it. PASSIVE never waits for readers or writers.
CHECKPOINT_EVERY = 0.2  # seconds
# Page cache per connection, bounded so memory stays flat however long the line. A thread
# that writes (the admission writer, a worker) gets the larger one: the pages it changes
# are the same few every group. Readers (poll readers, a thread pool) may be many, and a
# cache each would grow the process by megabytes as the file grows.
READER_CACHE_KIB = 2_048
WRITER_CACHE_KIB = 8_192
# FULL makes every commit durable across power loss, not only a process crash; group
# commit amortises the fsync over a whole group of admissions or a batch of decisions.
SYNCHRONOUS = ("OFF", "NORMAL", "FULL")


@contextmanager
def mapped_errors() -> Iterator[None]:
    """Translate sqlite3 errors into the port's `StoreError` family."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise Conflict(str(exc)) from exc
    except sqlite3.OperationalError as exc:
        message = str(exc).lower()
        if "locked" in message or "busy" in message or "unable to open" in message:
            raise Unavailable(f"sqlite: {exc}") from exc
        raise StoreError(f"sqlite: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"sqlite: {exc}") from exc


def path_from_url(url: str) -> tuple[str, str]:
    """`sqlite:///relative.db`, `sqlite:////abs/path.db` → (path, synchronous mode)."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise Misconfigured(f"not a sqlite URL: {url!r}")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path:
        raise Misconfigured("sqlite URL needs a file path, e.g. sqlite:///eventpro.db")
    sync = parse_qs(parts.query).get("synchronous", ["FULL"])[0].upper()
    if sync not in SYNCHRONOUS:
        raise Misconfigured(f"synchronous must be one of {SYNCHRONOUS}, not {sync!r}")
    return path, sync


class SqliteDatabase:
    """A SQLite file shared by the store and the queue; one connection per thread."""

    def __init__(self, path: str, synchronous: str = "FULL") -> None:
        self.path = path
        self._synchronous = synchronous
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._turn_path = f"{path}-writer"
        self._turn_files: list[int] = []  # each writing thread's descriptor of it
        self._lock = threading.Lock()
        # When a list, every write transaction is appended to it (see `ceiling.Replay`).
        self.journal: Journal | None = None
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.migrate()
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint, name="eventpro-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with mapped_errors():
                conn = sqlite3.connect(
                    self.path,
                    isolation_level=None,
                    timeout=BUSY_TIMEOUT_MS / 1000,
                    check_same_thread=False,
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={self._synchronous}")
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                conn.execute(f"PRAGMA cache_size=-{READER_CACHE_KIB}")
                conn.execute("PRAGMA wal_autocheckpoint=0")  # see CHECKPOINT_EVERY
                conn.execute("PRAGMA temp_store=MEMORY")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def write(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the file's write lock at once (BEGIN IMMEDIATE).

        `durable=False` skips the fsync of this commit, for writes that are safe to lose
        on power failure (a lease, a completion that a redelivery repeats): in WAL mode the
        next durable commit's fsync makes them durable too, and a process crash never
        loses them.
        """
        conn = self.connection()
        relaxed = not durable and self._synchronous == "FULL"
        with mapped_errors():
            if not getattr(self._local, "writer", False):
                conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
                self._local.writer = True
            if relaxed:
                conn.execute("PRAGMA synchronous=NORMAL")
            try:
                with self._turn():
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        if self.journal is None:
                            yield conn
                        else:  # appended once the write lock is held: in commit order
                            transaction = self.journal.note(durable)
                            yield cast(sqlite3.Connection, Recording(conn, transaction))
                    except BaseException:
                        conn.execute("ROLLBACK")
                        raise
                    conn.execute("COMMIT")
            finally:
                if relaxed:
                    conn.execute(f"PRAGMA synchronous={self._synchronous}")

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """This thread's turn to write, among the writers of every process (TURN_POLL)."""
        turn: int | None = getattr(self._local, "turn", None)
        if turn is None:
            turn = self._local.turn = os.open(self._turn_path, os.O_RDWR | os.O_CREAT, 0o600)
            with self._lock:
                self._turn_files.append(turn)
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                fcntl.flock(turn, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise Unavailable(f"sqlite: no turn to write in {BUSY_TIMEOUT_MS} ms") from None
                time.sleep(TURN_POLL)
        try:
            yield
        finally:
            fcntl.flock(turn, fcntl.LOCK_UN)

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several reads (WAL readers never block the writer)."""
        conn = self.connection()
        with mapped_errors():
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    def migrate(self) -> None:
        """Apply the numbered migrations not yet applied, each in its own transaction.

        `PRAGMA user_version` records the last one; BEGIN IMMEDIATE makes two processes
        migrating at once take turns, and the second finds nothing left to do.
        """
        scripts = sorted(
            (f for f in resources.files(__package__).joinpath("migrations").iterdir()),
            key=lambda f: f.name,
        )
        conn = self.connection()
        for number, script in enumerate(scripts, start=1):
            with self.write():
                (version,) = conn.execute("PRAGMA user_version").fetchone()
                if version >= number:
                    continue
                for statement in script.read_text().split(";\n"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number}")

    def _checkpoint(self) -> None:
        """Copy the WAL into the database file now and then, beside the writers."""
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(CHECKPOINT_EVERY):
                with contextlib.suppress(sqlite3.Error):  # busy now: the next one will do
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            conn.close()

    def ping(self) -> None:
        with mapped_errors():
            self.connection().execute("SELECT 1").fetchone()

    def close(self) -> None:
        self._stop.set()
        if self._checkpointer is not threading.current_thread():
            self._checkpointer.join(timeout=5)
        with self._lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.ProgrammingError):
                    conn.close()
            self._all.clear()
            for turn in self._turn_files:
                os.close(turn)
            self._turn_files.clear()
        self._local = threading.local()
