"""The operator's session for the pages: a signed cookie, and a CSRF token per session.

The admin token is typed once into the login form and never travels in a URL. The cookie
holds `issued.nonce.signature`, signed with HMAC-SHA256 under a key derived from the admin
token: every API process of a deployment shares the token, so a session made by one
process is good on all of them, and changing the token ends every session. The CSRF token
of a session is an HMAC of its nonce, checked on every form that changes something.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

COOKIE = "eventpro_session"
LIFETIME = 12 * 3600  # seconds a session lasts


@dataclass(frozen=True, slots=True)
class Session:
    nonce: str
    csrf: str


class Sessions:
    """Issues and checks operator sessions for one admin token."""

    def __init__(self, admin_token: bytes) -> None:
        self._token = admin_token
        self._key = hmac.new(admin_token, b"eventpro pages session v1", hashlib.sha256).digest()

    def login(self, typed: str) -> str | None:
        """A new session's cookie value if `typed` is the admin token, else None."""
        if not self._token or not hmac.compare_digest(typed.encode(), self._token):
            return None
        payload = f"{int(time.time())}.{secrets.token_urlsafe(16)}"
        return f"{payload}.{self._sign(payload.encode())}"

    def check(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session a cookie value carries, or None if it is missing, forged or old."""
        if not self._token or not cookie or cookie.count(".") != 2:
            return None  # no usable admin token: no session (its key would be public)
        issued, nonce, signature = cookie.split(".")
        if not hmac.compare_digest(signature, self._sign(f"{issued}.{nonce}".encode())):
            return None
        age = (now if now is not None else time.time()) - int(issued) if issued.isdigit() else -1
        if not 0 <= age <= LIFETIME:
            return None
        return Session(nonce, self._sign(b"csrf " + nonce.encode()))

    def csrf_ok(self, session: Session, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(sent, session.csrf)

    def _sign(self, payload: bytes) -> str:
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()
