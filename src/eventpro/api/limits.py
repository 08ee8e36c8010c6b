"""A pure ASGI middleware that refuses bodies over the contract's 16 KiB.

One request may be larger: an admin's `POST /v1/events` (an event of up to 100,000 seats
is about 1.5 MB of JSON), and only with the valid admin token, checked before a byte of
the body is read.
"""

from __future__ import annotations

import hmac

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventpro.api.errors import error_response
from eventpro.api.protocol import REFUSED

MAX_BODY = 16 * 1024
MAX_EVENT_BODY = 4 * 1024 * 1024
LARGE = ("POST", "/v1/events")  # the one request that may carry MAX_EVENT_BODY


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Checks Content-Length up front and counts streamed bytes for chunked bodies."""

    def __init__(self, app: ASGIApp, admin_token: bytes = b"", max_body: int = MAX_BODY) -> None:
        self.app = app
        self.admin_token = admin_token
        self.max_body = max_body

    def _limit(self, scope: Scope) -> int:
        if (scope["method"], scope["path"]) != LARGE or not self.admin_token:
            return self.max_body
        authorization = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = authorization.partition(b" ")
        admin = scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.admin_token)
        return MAX_EVENT_BODY if admin else self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        if declared_too_large(dict(scope["headers"]).get(b"content-length"), limit):
            await self._refuse(scope, receive, send, limit)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except BodyTooLarge:
            await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        await refuse_body(limit)(scope, receive, send)


def declared_too_large(length: bytes | None, limit: int) -> bool:
    """Whether a Content-Length header refuses the body before it is read: over `limit`,
    or not a number."""
    return length is not None and (not length.isdigit() or int(length) > limit)


def refuse_body(limit: int) -> Response:
    """The 413 of a body over `limit` bytes, counted in `/metrics`."""
    REFUSED["body_too_large"] += 1
    return error_response(413, "body_too_large", f"the body is over {limit // 1024} KiB")
