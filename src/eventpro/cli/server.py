"""`eventpro serve`'s process: the API under uvicorn (uvloop, httptools; the two hot
routes answered by the protocol itself, `api/direct.py`) and, beside it in
the same event loop, the in-process worker loops. The app factory knows nothing of
workers: this module, at the outer rim, puts the two together."""

from __future__ import annotations

import logging
import os
from contextlib import AbstractAsyncContextManager
from typing import Any

import uvicorn

from eventpro.api.app import HotPath, create_app
from eventpro.api.direct import DirectProtocol
from eventpro.api.metrics import Metrics
from eventpro.api.protocol import HEAD_TIMEOUT, raise_open_files_limit
from eventpro.bootstrap import Container, bootstrap, redact
from eventpro.cli.tuning import freeze_startup_objects, tune_interpreter
from eventpro.config import Settings
from eventpro.worker.loop import running

log = logging.getLogger("eventpro")
FILES_KEPT = 128  # open files kept for the stores, the queue, logs and the workers


def run_server(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT; in-process workers finish their batch first.

    With `processes > 1`, uvicorn starts that many processes, each building the app from
    the environment (`app_from_env`): the API is stateless, so any number can share the
    same store and queue.
    """
    print(
        f"eventpro: database={redact(settings.database_url)}"
        f" queue={redact(settings.effective_queue_url)} processes={settings.processes}"
        f" workers per process={settings.workers}",
        flush=True,
    )
    soft, _ = raise_open_files_limit()
    os.environ[HEAD_TIMEOUT] = str(settings.head_timeout)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": DirectProtocol,  # the hot routes answered without ASGI
        "access_log": False,
        "log_level": settings.log_level,
        "timeout_graceful_shutdown": 30,
        "timeout_keep_alive": settings.keep_alive,
        # past this many connections at once, new requests get 503 instead of the
        # process running out of file descriptors (each connection is one)
        "limit_concurrency": max(64, soft - FILES_KEPT),
    }
    if settings.processes > 1:
        os.environ.update(settings.as_environment())
        uvicorn.run(
            "eventpro.cli.server:app_from_env",
            factory=True,
            workers=settings.processes,
            **options,
        )
        return
    container = bootstrap(settings)
    durability = container.queue.durability_warning()
    if durability:
        log.warning("queue durability degraded: %s", durability)
    uvicorn.run(serving_app(container), **options)


def serving_app(container: Container) -> HotPath:
    """The API with `settings.workers` worker loops running beside it."""
    tune_interpreter()  # in each process of `serve --processes N` too
    metrics = Metrics()
    loops = container.settings.workers
    c = container

    def workers() -> AbstractAsyncContextManager[None]:
        return running(loops, c.store, c.queue, c.clock, c.policy, metrics.on_batch)

    app = create_app(container, metrics, workers if loops else None)
    freeze_startup_objects()
    return app


def app_from_env() -> HotPath:
    """The app of one of several `serve --processes N` processes, from EVENTPRO_* variables."""
    return serving_app(bootstrap(Settings()))
