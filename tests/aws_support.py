"""The AWS emulator for tests: `eventpro.loadtest.emulator` (moto in server mode, one
request at a time, calls counted), one per test process.

`emulator_endpoint()` starts it on first use (and sets the credentials and region
variables that boto3's standard chain reads to dummy values); `tests/backends.py` uses it
for the `dynamodb` backend of the conformance suite. The fixtures `aws_emulator` (its
endpoint), `dynamodb_store` and `dynamodb_queue` (an adapter on fresh tables, a new prefix
per test, dropped afterwards) are registered for every test by `tests/conftest.py`. Under
`CI=true` an emulator that does not start fails the run; elsewhere it skips.
"""

from __future__ import annotations

import atexit
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from eventpro.loadtest.emulator import ENV, REGION, Emulator, calls

__all__ = ["REGION", "aws_emulator", "calls", "dynamodb_queue", "dynamodb_store", "emulator_url"]
IN_CI = os.environ.get("CI") == "true"
_running: dict[str, str] = {}


def emulator_endpoint() -> str:
    """The endpoint of this test process's emulator: started on first use (with the dummy
    credentials and region set for boto3's chain), stopped when the process exits."""
    if "endpoint" not in _running:
        emulator = Emulator.start()
        os.environ.update(ENV)
        atexit.register(emulator.stop)
        _running["endpoint"] = emulator.endpoint
    return _running["endpoint"]


def emulator_url() -> str:
    """A `dynamodb://` URL on the emulator (tests/backends.py scopes it per test)."""
    return f"dynamodb://eventpro?region={REGION}&endpoint={emulator_endpoint()}"


@pytest.fixture(scope="session")
def aws_emulator() -> str:
    """The endpoint URL of the emulator (see the module docstring)."""
    try:
        return emulator_endpoint()
    except (OSError, RuntimeError) as exc:
        if IN_CI:
            pytest.fail(f"AWS emulator did not start (CI=true: a failure): {exc}")
        pytest.skip(f"AWS emulator did not start: {exc}")


def aws_url(endpoint: str, roles: tuple[str, ...] = ("inventory", "line")) -> str:
    """A `dynamodb://` URL on the emulator with a fresh table prefix, tables provisioned."""
    from eventpro.adapters.dynamodb import Target
    from eventpro.adapters.dynamodb.schema import provision

    url = f"dynamodb://ep-{uuid.uuid4().hex[:12]}?region={REGION}&endpoint={endpoint}"
    provision(Target.from_url(url), roles)
    return url


def drop_tables(url: str) -> None:
    from eventpro.adapters.dynamodb import Target
    from eventpro.adapters.dynamodb.schema import drop

    drop(Target.from_url(url))


@pytest.fixture
def dynamodb_store(aws_emulator: str) -> Iterator[Any]:
    """A `DynamoInventoryStore` on fresh tables of the emulator."""
    from eventpro.adapters import open_store

    url = aws_url(aws_emulator, ("inventory",))
    store = open_store(url)
    yield store
    store.close()
    drop_tables(url)


@pytest.fixture
def dynamodb_queue(aws_emulator: str) -> Iterator[Any]:
    """A `DynamoQueue` on fresh tables of the emulator."""
    from eventpro.adapters import open_queue

    url = aws_url(aws_emulator, ("line",))
    queue = open_queue(url)
    yield queue
    queue.close()
    drop_tables(url)
