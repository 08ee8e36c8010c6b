"""`run_server`: serve the API with uvicorn (uvloop, httptools), as `eventpro serve` does."""

from __future__ import annotations

import logging
import os
from typing import Any

import uvicorn

from eventpro.api.app import HotPath, create_app
from eventpro.bootstrap import bootstrap, redact
from eventpro.config import Settings

log = logging.getLogger("eventpro")


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
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": False,
        "log_level": settings.log_level,
        "timeout_graceful_shutdown": 30,
    }
    if settings.processes > 1:
        os.environ.update(settings.as_environment())
        uvicorn.run(
            "eventpro.api.server:app_from_env",
            factory=True,
            workers=settings.processes,
            **options,
        )
        return
    container = bootstrap(settings)
    durability = container.queue.durability_warning()
    if durability:
        log.warning("queue durability degraded: %s", durability)
    uvicorn.run(create_app(container), **options)


def app_from_env() -> HotPath:
    """The app of one of several `serve --processes N` processes, from EVENTPRO_* variables."""
    return create_app(bootstrap(Settings()))
