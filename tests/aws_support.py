"""The AWS emulator for tests: moto in server mode, in its own process, on a loopback port.

`python -m tests.aws_support PORT` serves moto's app behind two small WSGI layers:

- one lock around each request. DynamoDB applies each request atomically; moto's
  threaded server does not (two concurrent conditional writes can both pass their check),
  so without the lock the emulator, not the adapter, would oversell in a race test;
- a counter of AWS calls by operation (`X-Amz-Target`, or the `Action` of a query
  request), served as JSON at `GET /_eventpro/calls` and reset by `DELETE` on it.

`emulator_endpoint()` starts one emulator per test process on first use (and sets the
credentials and region variables that boto3's standard chain reads to dummy values);
`tests/backends.py` uses it for the `dynamodb` backend of the conformance suite. The
fixtures `aws_emulator` (its endpoint), `dynamodb_store` and `dynamodb_queue` (an adapter
on fresh tables, a new prefix per test, dropped afterwards) are registered for every test
by `tests/conftest.py`. Under `CI=true` an emulator that does not start fails the run;
elsewhere it skips.
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

REGION = "eu-west-1"
CALLS_PATH = "/_eventpro/calls"
IN_CI = os.environ.get("CI") == "true"
ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


class SerialCountingApp:
    """WSGI: one request at a time through moto, each counted by operation."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.calls: collections.Counter[str] = collections.Counter()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == CALLS_PATH:
            return self._calls(environ, start_response)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        operation = target.rpartition(".")[2] or environ.get("QUERY_STRING", "") or "other"
        with self.lock:
            self.calls[operation] += 1
            return list(self.app(environ, start_response))

    def _calls(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with self.lock:
            body = json.dumps(dict(self.calls)).encode()
            if environ.get("REQUEST_METHOD") == "DELETE":
                self.calls.clear()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]


def serve(port: int) -> None:
    """Run the emulator in this process until it is killed."""
    from moto.moto_server.threaded_moto_server import MotoRequestHandler
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import run_simple

    os.environ.setdefault("MOTO_PORT", str(port))
    app = SerialCountingApp(DomainDispatcherApplication(create_backend_app))
    run_simple("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the emulator exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + CALLS_PATH, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the emulator did not answer at {url} within {seconds} s")


def start_emulator() -> tuple[str, subprocess.Popen[bytes]]:
    """Start the emulator process; return its endpoint URL and the process."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.aws_support", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **ENV},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process)
    except RuntimeError:
        process.kill()
        process.wait()
        raise
    return url, process


def calls(endpoint: str, reset: bool = False) -> dict[str, int]:
    """The AWS calls the emulator served so far, by operation (and reset them if asked)."""
    request = urllib.request.Request(endpoint + CALLS_PATH, method="DELETE" if reset else "GET")
    with urllib.request.urlopen(request, timeout=5) as answer:
        counted: dict[str, int] = json.loads(answer.read())
    return counted


_running: dict[str, str] = {}


def emulator_endpoint() -> str:
    """The endpoint of this test process's emulator: started on first use (with the dummy
    credentials and region set for boto3's chain), stopped when the process exits."""
    if "endpoint" not in _running:
        endpoint, process = start_emulator()
        os.environ.update(ENV)
        atexit.register(_stop, process)
        _running["endpoint"] = endpoint
    return _running["endpoint"]


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


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


if __name__ == "__main__":
    serve(int(sys.argv[1]))
