"""`eventpro aws provision`: create the DynamoDB tables the configured URLs name."""

from __future__ import annotations

from urllib.parse import urlsplit

import typer

from eventpro import bootstrap
from eventpro.cli.serve import DatabaseUrl, QueueUrl, settings_from
from eventpro.ports import Misconfigured

aws_app = typer.Typer(help="The AWS tier: provision its tables.", no_args_is_help=True)


def _dynamodb_urls(*urls: str) -> list[str]:
    """The configured URLs on DynamoDB, each once."""
    return list(dict.fromkeys(url for url in urls if urlsplit(url).scheme == "dynamodb"))


@aws_app.command("provision")
def provision(database_url: DatabaseUrl = None, queue_url: QueueUrl = None) -> None:
    """Create the tables (and the TTL of idempotency keys) that the dynamodb:// URLs name.

    Both tables of each table prefix named (PREFIX-inventory, PREFIX-line). Idempotent:
    a table that exists is left as it is, so running it twice is safe.
    Credentials come from the standard AWS chain (environment, profile, role).
    """
    settings = settings_from(database_url=database_url, queue_url=queue_url)
    urls = _dynamodb_urls(settings.database_url, settings.effective_queue_url)
    if not urls:
        raise Misconfigured("neither EVENTPRO_DATABASE_URL nor EVENTPRO_QUEUE_URL is dynamodb://")
    for url in urls:
        for line in bootstrap.provision(url):
            typer.echo(line)


def register(app: typer.Typer) -> None:
    app.add_typer(aws_app, name="aws")
