"""Settings, read from `EVENTPRO_*` environment variables (and CLI options that mirror them)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from eventpro.domain.model import Strategy

DEFAULT_DATABASE_URL = "sqlite:///eventpro.db"
PLACEHOLDER_TOKENS = frozenset(
    {"", "changeme", "change-me", "secret", "admin", "token", "password"}
)


class Settings(BaseSettings):
    """Every knob of a running EventPro process. Build it in an entry point, never at import."""

    model_config = SettingsConfigDict(env_prefix="EVENTPRO_", extra="ignore")

    database_url: str = Field(DEFAULT_DATABASE_URL, description="inventory store URL")
    queue_url: str | None = Field(None, description="purchase queue URL (default: the database)")
    admin_token: SecretStr = Field(SecretStr(""), description="bearer token of admin endpoints")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=0, le=64, description="in-process worker loops of `serve`")
    processes: int = Field(1, ge=1, le=64, description="API processes of `serve`")
    batch_size: int = Field(500, ge=1, le=10_000, description="requests a worker decides at once")
    visibility_timeout: float = Field(30.0, gt=0, description="seconds before a lease expires")
    max_attempts: int = Field(5, ge=1, le=100, description="deliveries before a dead letter")
    max_line: int = Field(1_000_000, ge=1, description="undecided requests per event before 429")
    retry_after: int = Field(1, ge=1, le=3600, description="seconds in Retry-After answers")
    max_streams: int = Field(20_000, ge=1, description="open live streams per API process")
    max_streams_per_client: int = Field(
        50, ge=1, description="open live streams per client address and API process"
    )
    stream_heartbeat: float = Field(
        15.0, gt=0, le=300, description="seconds between keep-alive comments of a quiet stream"
    )
    log_level: str = "info"
    strategy: Strategy = Field(
        Strategy.QUEUED, description="queued (the product) or a design it replaces, to measure"
    )
    pool_size: int = Field(
        150, ge=1, le=1000, description="database connections of a synchronous strategy"
    )
    pool_timeout: float = Field(
        10.0, gt=0, description="seconds a synchronous request waits for a connection"
    )

    head_timeout: float = Field(
        10.0, gt=0, le=300, description="seconds a client has to send a request's headers"
    )
    keep_alive: float = Field(
        5.0, gt=0, le=3600, description="seconds an idle kept-alive connection is kept open"
    )

    @field_validator("database_url", "queue_url")
    @classmethod
    def _has_scheme(cls, value: str | None) -> str | None:
        if value is not None and "://" not in value:
            raise ValueError(f"not a URL: {value!r} (expected e.g. sqlite:///eventpro.db)")
        return value

    def as_environment(self) -> dict[str, str]:
        """These settings as `EVENTPRO_*` variables, for child processes to read back."""
        values = self.model_dump(exclude_none=True)
        values["admin_token"] = self.admin_token.get_secret_value()
        return {f"EVENTPRO_{name.upper()}": str(value) for name, value in values.items()}

    @property
    def effective_queue_url(self) -> str:
        return self.queue_url or self.database_url

    def require_admin_token(self) -> str:
        """The admin token, refusing an empty or placeholder value."""
        token = self.admin_token.get_secret_value()
        if token.strip().lower() in PLACEHOLDER_TOKENS or len(token) < 16:
            raise ValueError(
                "EVENTPRO_ADMIN_TOKEN must be set to a random value of 16+ characters "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(24))'`)"
            )
        return token
