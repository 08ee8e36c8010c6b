"""`run_server`: serve the API with uvicorn (uvloop, httptools), as `eventpro serve` does."""

from __future__ import annotations

import logging

import uvicorn

from eventpro.api.app import create_app
from eventpro.bootstrap import bootstrap, redact
from eventpro.config import Settings

log = logging.getLogger("eventpro")


def run_server(settings: Settings) -> None:
    """Open the backends, then serve until SIGTERM or SIGINT (workers finish their batch)."""
    container = bootstrap(settings)
    app = create_app(container)
    print(
        f"eventpro: database={redact(settings.database_url)}"
        f" queue={redact(settings.effective_queue_url)} workers={settings.workers}",
        flush=True,
    )
    print(f"eventpro: listening on http://{settings.host}:{settings.port}", flush=True)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=30,
    )
