"""The Typer app: one thin function per subcommand, each calling a service.

Every option mirrors an `EVENTPRO_*` environment variable. Errors print their cause
chain and exit 1; `-v` adds the traceback.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from eventpro.cli import audit as audit_commands
from eventpro.cli import aws as aws_commands
from eventpro.cli import dlq as dlq_commands
from eventpro.cli import events as event_commands
from eventpro.cli import loadtest as loadtest_commands
from eventpro.cli import replay as replay_commands
from eventpro.cli import serve as serve_commands
from eventpro.cli.bench import bench
from eventpro.cli.demo import demo

app = typer.Typer(
    name="eventpro",
    help="EventPro: sell a fixed stock of tickets under a flash-sale spike.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
state = {"verbose": False}


@app.callback()
def _root(
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="tracebacks and debug logs")
    ] = False,
) -> None:
    state["verbose"] = verbose
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


serve_commands.register(app)
event_commands.register(app)
dlq_commands.register(app)
audit_commands.register(app)
loadtest_commands.register(app)
replay_commands.register(app)
aws_commands.register(app)
app.command()(demo)
app.command()(bench)


def _cause_chain(exc: BaseException) -> str:
    parts, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return "\n  caused by ".join(parts)


def main() -> None:
    """Entry point of the `eventpro` command."""
    try:
        app()
    except SystemExit:
        raise
    except Exception as exc:
        if state["verbose"]:
            raise
        print(f"error: {_cause_chain(exc)}", file=sys.stderr)
        sys.exit(1)
