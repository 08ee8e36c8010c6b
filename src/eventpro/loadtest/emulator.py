"""The AWS emulator: moto in server mode, in its own process, on a free loopback port.

`python -m eventpro.loadtest.emulator PORT` serves moto's app behind a small WSGI layer:

- one lock around each request. DynamoDB applies each request atomically; moto's
  threaded server does not (two concurrent conditional writes can both pass their check),
  so without the lock the emulator, not EventPro, would oversell in a race;
- a counter of AWS calls by operation (`X-Amz-Target`, or the `Action` of a query
  request), and of the items the batch and transaction calls carry, served as JSON at
  `GET /_eventpro/calls` and reset by `DELETE` on it.

`eventpro bench --backend aws`, `eventpro replay --backend aws` and the tests
(`tests/aws_support.py`) start it with `Emulator.start()`. moto is a development
dependency (`pip install 'moto[server]'`, in `eventpro[dev]`), imported only in the
emulator's own process.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import threading
import time
import types
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from eventpro.loadtest.process import free_port, peak_rss_mib

REGION = "eu-west-1"
CALLS_PATH = "/_eventpro/calls"
# What boto3's standard chain reads: dummy credentials for the emulator, never real ones.
ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}
# The calls whose items are counted too (what a batch or a transaction carries).
_ITEMS: dict[str, Callable[[dict[str, Any]], int]] = {
    "BatchWriteItem": lambda body: sum(map(len, body.get("RequestItems", {}).values())),
    "BatchGetItem": lambda body: sum(
        len(table.get("Keys", [])) for table in body.get("RequestItems", {}).values()
    ),
    "TransactWriteItems": lambda body: len(body.get("TransactItems", [])),
    "TransactGetItems": lambda body: len(body.get("TransactItems", [])),
}


class EmulatorMissing(RuntimeError):
    """The AWS emulator needs moto: `pip install 'moto[server]'` (in `eventpro[dev]`)."""


class SerialCountingApp:
    """WSGI: one request at a time through moto, each counted by operation."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.calls: collections.Counter[str] = collections.Counter()
        self.items: collections.Counter[str] = collections.Counter()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == CALLS_PATH:
            return self._calls(environ, start_response)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        operation = target.rpartition(".")[2] or environ.get("QUERY_STRING", "") or "other"
        items = self._items(environ, operation)
        with self.lock:
            self.calls[operation] += 1
            self.items[operation] += items
            return list(self.app(environ, start_response))

    @staticmethod
    def _items(environ: dict[str, Any], operation: str) -> int:
        count = _ITEMS.get(operation)
        if count is None:
            return 0
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
        try:
            return count(json.loads(body))
        except ValueError:
            return 0

    def _calls(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with self.lock:
            items = {op: n for op, n in self.items.items() if n}
            body = json.dumps({"calls": dict(self.calls), "items": items}).encode()
            if environ.get("REQUEST_METHOD") == "DELETE":
                self.calls.clear()
                self.items.clear()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]


def serve(port: int) -> None:
    """Run the emulator in this process until it is killed."""
    # moto declares no exports, so its modules are reached by name (mypy --strict)
    handler = importlib.import_module("moto.moto_server.threaded_moto_server").MotoRequestHandler
    server = importlib.import_module("moto.server")
    from werkzeug.serving import run_simple

    os.environ.setdefault("MOTO_PORT", str(port))
    _copy_each_table_once_per_transaction()
    app = SerialCountingApp(server.DomainDispatcherApplication(server.create_backend_app))
    run_simple("127.0.0.1", port, app, threaded=True, request_handler=handler)


def _copy_each_table_once_per_transaction() -> None:
    """moto backs up a table before a `TransactWriteItems` by copying it once per action
    (100 copies of the table for 100 actions), and every copy stays in memory: moto's
    models record each instance made (`instances_tracked`), copies included, so a
    10,000-buyer run grew the emulator by about 25 MB a transaction, to 13 GB. The backup
    is taken before any action applies, so one copy per table serves, and nothing needs
    to track a backup; this gives moto both. Safe because the emulator serves one request
    at a time (`SerialCountingApp`)."""
    models = importlib.import_module("moto.dynamodb.models")
    tracked = importlib.import_module("moto.core.base_backend").model_data["dynamodb"]
    table_type, original = models.Table, models.DynamoDBBackend.transact_write_items
    namespace = vars(models)
    real_copy = namespace["copy"]

    def untracked_copy(table: Any) -> Any:
        lists = [model.instances_tracked for model in tracked.values()]
        before = [len(instances) for instances in lists]
        backup = real_copy.deepcopy(table)
        for instances, length in zip(lists, before, strict=True):
            del instances[length:]
        return backup

    def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
        copies: dict[int, Any] = {}

        def deepcopy(value: Any, memo: Any = None) -> Any:
            if isinstance(value, table_type):
                if id(value) not in copies:
                    copies[id(value)] = untracked_copy(value)
                return copies[id(value)]
            return real_copy.deepcopy(value, memo)

        namespace["copy"] = types.SimpleNamespace(deepcopy=deepcopy)
        try:
            original(backend, transact_items)
        finally:
            namespace["copy"] = real_copy

    models.DynamoDBBackend.transact_write_items = transact_write_items


@dataclass(frozen=True)
class Counts:
    """What the emulator served: calls by operation, and the items of batches and
    transactions by operation."""

    calls: dict[str, int]
    items: dict[str, int]

    def __sub__(self, before: Counts) -> Counts:
        def minus(now: dict[str, int], then: dict[str, int]) -> dict[str, int]:
            return {op: n - then.get(op, 0) for op, n in now.items() if n - then.get(op, 0)}

        return Counts(minus(self.calls, before.calls), minus(self.items, before.items))


def counts(endpoint: str, reset: bool = False) -> Counts:
    """The calls the emulator at `endpoint` served so far (and reset them if asked)."""
    request = urllib.request.Request(endpoint + CALLS_PATH, method="DELETE" if reset else "GET")
    with urllib.request.urlopen(request, timeout=5) as answer:
        body: dict[str, dict[str, int]] = json.loads(answer.read())
    return Counts(body["calls"], body["items"])


def calls(endpoint: str, reset: bool = False) -> dict[str, int]:
    """The AWS calls the emulator served so far, by operation (and reset them if asked)."""
    return counts(endpoint, reset).calls


@dataclass
class Emulator:
    """A running emulator process and its endpoint."""

    endpoint: str
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, timeout: float = 30.0) -> Emulator:
        """Start an emulator on a free loopback port; wait until it answers."""
        if importlib.util.find_spec("moto") is None:
            raise EmulatorMissing(EmulatorMissing.__doc__)
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "eventpro.loadtest.emulator", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **ENV},
        )
        emulator = cls(f"http://127.0.0.1:{port}", process)
        try:
            emulator._wait_until_up(timeout)
        except RuntimeError:
            emulator.stop()
            raise
        return emulator

    def url(self, prefix: str = "eventpro") -> str:
        """A `dynamodb://` URL of a table prefix on this emulator."""
        return f"dynamodb://{prefix}?region={REGION}&endpoint={self.endpoint}"

    def peak_rss_mib(self) -> float:
        return peak_rss_mib(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _wait_until_up(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the emulator exited with {self.process.returncode}")
            try:
                counts(self.endpoint)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the emulator did not answer at {self.endpoint} within {seconds} s")


ACCOUNT = "account"  # an endpoint that names the AWS account of the standard chain


@dataclass(frozen=True)
class Service:
    """Where the aws tier of a benchmark or a replay runs."""

    url: str  # dynamodb://eventpro?region=…[&endpoint=…]: the tier scopes its own prefix
    endpoint: str  # "" on the account
    emulator: Emulator | None  # the one this run started


@contextlib.contextmanager
def dynamodb_service(endpoint: str = "") -> Iterator[Service]:
    """An emulator started for the block (`endpoint` empty), one already running (its
    URL), or the account of the standard AWS chain (`account`)."""
    emulator = None
    if not endpoint:
        emulator = Emulator.start()
        endpoint = emulator.endpoint
        os.environ.update(ENV)  # dummy credentials: real ones never go to the emulator
    elif endpoint == ACCOUNT:
        endpoint = ""
    else:
        for name, value in ENV.items():
            os.environ.setdefault(name, value)
    region = os.environ.get("AWS_DEFAULT_REGION", REGION)
    url = f"dynamodb://eventpro?region={region}" + (f"&endpoint={endpoint}" if endpoint else "")
    try:
        yield Service(url, endpoint, emulator)
    finally:
        if emulator is not None:
            emulator.stop()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
