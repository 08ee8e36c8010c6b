"""`eventpro serve`, `eventpro worker` and `eventpro migrate`: the long-running processes."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from eventpro.bootstrap import Container, bootstrap
from eventpro.config import Settings
from eventpro.domain.model import Strategy
from eventpro.ports import Unavailable


def settings_from(**overrides: object) -> Settings:
    """Settings from the environment, with the options given on the command line on top."""
    values = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**values)  # type: ignore[arg-type]


DatabaseUrl = Annotated[
    str | None, typer.Option(envvar="EVENTPRO_DATABASE_URL", help="inventory store URL")
]
QueueUrl = Annotated[
    str | None, typer.Option(envvar="EVENTPRO_QUEUE_URL", help="queue URL (default: database)")
]


def serve(
    database_url: DatabaseUrl = None,
    queue_url: QueueUrl = None,
    host: Annotated[str, typer.Option(envvar="EVENTPRO_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="EVENTPRO_PORT")] = 8000,
    workers: Annotated[
        int, typer.Option(envvar="EVENTPRO_WORKERS", help="in-process worker loops (0: API only)")
    ] = 1,
    processes: Annotated[
        int, typer.Option(envvar="EVENTPRO_PROCESSES", help="API processes (stateless)")
    ] = 1,
    strategy: Annotated[
        Strategy,
        typer.Option(
            envvar="EVENTPRO_STRATEGY",
            help="queued (the product); naive, locking, conditional: the designs it replaces,"
            " decided inside the request (201/409), for `eventpro replay`",
        ),
    ] = Strategy.QUEUED,
    pool_size: Annotated[
        int, typer.Option(envvar="EVENTPRO_POOL_SIZE", help="connections of a synchronous strategy")
    ] = 150,
) -> None:
    """Run the HTTP API, with in-process workers deciding the line."""
    from eventpro.cli.server import run_server

    settings = settings_from(
        database_url=database_url,
        queue_url=queue_url,
        host=host,
        port=port,
        workers=workers,
        processes=processes,
        strategy=strategy,
        pool_size=pool_size,
    )
    settings.require_admin_token()
    run_server(settings)


def worker(
    database_url: DatabaseUrl = None,
    queue_url: QueueUrl = None,
    batch_size: Annotated[int, typer.Option(envvar="EVENTPRO_BATCH_SIZE")] = 500,
    concurrency: Annotated[
        int, typer.Option(envvar="EVENTPRO_CONCURRENCY", min=1, max=64, help="worker loops")
    ] = 1,
) -> None:
    """Run standalone worker loops: lease batches, decide them, until SIGTERM or SIGINT.

    On SIGTERM each loop finishes the batch it holds; a batch cut short by SIGKILL is
    delivered again once its lease expires.
    """
    from eventpro.worker.loop import run_blocking

    settings = settings_from(database_url=database_url, queue_url=queue_url, batch_size=batch_size)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    container = _bootstrap_when_available(settings, stop)
    if container is None:
        return
    typer.echo(f"worker: {concurrency} loop(s) deciding batches of {settings.batch_size}")
    args = (container.store, container.queue, container.clock, container.policy, stop)
    loops = [threading.Thread(target=run_blocking, args=args) for _ in range(concurrency)]
    try:
        for loop in loops:
            loop.start()
        while any(loop.is_alive() for loop in loops):
            stop.wait(0.5)
        for loop in loops:
            loop.join()
    finally:
        container.close()


def _bootstrap_when_available(settings: Settings, stop: threading.Event) -> Container | None:
    """Connect to the backends, waiting while one is down: a worker started during an
    outage waits for it instead of exiting. None when stopped before it connected."""
    from eventpro.worker.loop import ERROR_SLEEP, Backoff

    backoff = Backoff(*ERROR_SLEEP)
    while not stop.is_set():
        try:
            return bootstrap(settings)
        except Unavailable as exc:
            typer.echo(f"worker: backend unavailable, backing off: {exc}", err=True)
            stop.wait(backoff.next())
    return None


def migrate(database_url: DatabaseUrl = None, queue_url: QueueUrl = None) -> None:
    """Create or upgrade the schema of the configured backends (safe to run twice)."""
    settings = settings_from(database_url=database_url, queue_url=queue_url)
    container = bootstrap(settings)
    container.close()
    typer.echo("schema up to date")


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(worker)
    app.command()(migrate)
