"""The HTTP API: the public contract of `docs/http-api.md`, served by FastAPI."""

from __future__ import annotations
