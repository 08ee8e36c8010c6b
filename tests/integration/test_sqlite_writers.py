"""Writers of one SQLite file take turns by a lock on a file beside it (`_turn`), tried
every TURN_POLL, instead of waiting in SQLite's busy handler, which sleeps up to 100 ms
between its tries while the write lock may sit free. Shown with two handles on one real
file: each has its own connections and its own descriptor of the lock file, so they
exclude each other as two processes do."""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventpro.adapters.sqlite import database
from eventpro.adapters.sqlite.database import SqliteDatabase
from eventpro.ports import Unavailable
from tests.support import write_held_open

# Seconds a write is held. SQLite's busy handler sleeps 1, 2, 5, 10, … ms, 328 ms in all
# by its 12th try, then 100 ms a try: a writer that began waiting with this one tries at
# about 0.328 s and next at 0.428 s, some 80 ms after the commit.
HELD = 0.35
TRIALS = 5
PROMPT = 0.03  # seconds: a handoff this fast is a turn, not a busy handler's sleep


def _hold(db: SqliteDatabase, holding: threading.Event, committed: list[float]) -> None:
    with db.write() as conn:
        conn.execute("PRAGMA user_version")
        holding.set()
        time.sleep(HELD)
    committed.append(time.monotonic())


def _handoffs(path: Path) -> list[float]:
    """Seconds from one writer's commit to the start of another's, which waited for it."""
    first, second = SqliteDatabase(str(path)), SqliteDatabase(str(path))
    try:
        delays = []
        for _ in range(TRIALS):
            holding, committed = threading.Event(), list[float]()
            holder = threading.Thread(target=_hold, args=(first, holding, committed))
            holder.start()
            assert holding.wait(10)
            with second.write():
                started = time.monotonic()
            holder.join()
            delays.append(started - committed[0])
        return delays
    finally:
        first.close()
        second.close()


def test_a_waiting_writer_starts_as_soon_as_the_other_commits(tmp_path: Path) -> None:
    delays = _handoffs(tmp_path / "turns.db")
    assert max(delays) < PROMPT, delays


def test_without_turns_a_waiting_writer_sleeps_past_the_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The negative control: SQLite's busy handler alone leaves the lock free while the
    waiter sleeps (see HELD)."""

    @contextlib.contextmanager
    def no_turn(self: SqliteDatabase) -> Iterator[None]:
        yield

    monkeypatch.setattr(SqliteDatabase, "_turn", no_turn)
    delays = _handoffs(tmp_path / "no-turns.db")
    assert statistics.median(delays) >= PROMPT, delays


def test_a_writer_gives_up_when_no_turn_comes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 300)
    path = tmp_path / "stuck.db"
    first, second = SqliteDatabase(str(path)), SqliteDatabase(str(path))
    try:
        with write_held_open(first):
            started = time.monotonic()
            with pytest.raises(Unavailable, match="no turn to write"), second.write():
                pass
            assert 0.3 <= time.monotonic() - started < 3
    finally:
        first.close()
        second.close()
