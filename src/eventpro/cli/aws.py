"""`eventpro aws provision`: create the DynamoDB tables the configured URLs name."""

from __future__ import annotations

from urllib.parse import urlsplit

import typer

from eventpro.cli.serve import DatabaseUrl, QueueUrl, settings_from
from eventpro.ports import Misconfigured

aws_app = typer.Typer(help="The AWS tier: provision its tables.", no_args_is_help=True)


def _roles(database_url: str, queue_url: str) -> list[tuple[str, str]]:
    """(URL, table role) for each configured URL on DynamoDB."""
    roles = [(database_url, "inventory"), (queue_url, "line")]
    return [(url, role) for url, role in roles if urlsplit(url).scheme == "dynamodb"]


@aws_app.command("provision")
def provision(database_url: DatabaseUrl = None, queue_url: QueueUrl = None) -> None:
    """Create the tables (and the TTL of idempotency keys) that the dynamodb:// URLs name.

    Idempotent: a table that exists is left as it is, so running it twice is safe.
    Credentials come from the standard AWS chain (environment, profile, role).
    """
    settings = settings_from(database_url=database_url, queue_url=queue_url)
    chosen = _roles(settings.database_url, settings.effective_queue_url)
    if not chosen:
        raise Misconfigured("neither EVENTPRO_DATABASE_URL nor EVENTPRO_QUEUE_URL is dynamodb://")
    try:
        from eventpro.adapters.dynamodb import Target
        from eventpro.adapters.dynamodb.schema import provision as provision_tables
    except ImportError as exc:
        raise Misconfigured("the AWS tier needs `pip install 'eventpro[aws]'`") from exc
    for url, role in chosen:
        for line in provision_tables(Target.from_url(url), (role,)):
            typer.echo(line)


def register(app: typer.Typer) -> None:
    app.add_typer(aws_app, name="aws")
