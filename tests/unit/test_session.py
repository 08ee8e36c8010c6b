"""Operator sessions: signed with a key derived from the admin token, expiring, CSRF-bound."""

from __future__ import annotations

import time

from eventpro.api.session import LIFETIME, Sessions

TOKEN = b"a-long-random-admin-token-for-tests"


def test_only_the_admin_token_opens_a_session() -> None:
    sessions = Sessions(TOKEN)
    assert sessions.login("wrong") is None
    cookie = sessions.login(TOKEN.decode())
    assert cookie is not None and TOKEN.decode() not in cookie
    session = sessions.check(cookie)
    assert session is not None and sessions.csrf_ok(session, session.csrf)
    assert not sessions.csrf_ok(session, None) and not sessions.csrf_ok(session, "forged")


def test_a_forged_expired_or_foreign_cookie_is_refused() -> None:
    sessions = Sessions(TOKEN)
    cookie = sessions.login(TOKEN.decode())
    assert cookie is not None
    issued, nonce, signature = cookie.split(".")
    assert sessions.check(f"{issued}.{nonce}x.{signature}") is None
    assert sessions.check(f"{int(issued) + 1}.{nonce}.{signature}") is None
    assert sessions.check(cookie, now=time.time() + LIFETIME + 1) is None
    assert Sessions(b"another-admin-token-entirely").check(cookie) is None
    assert sessions.check(None) is None and sessions.check("a.b") is None


def test_every_process_with_the_same_token_accepts_the_session() -> None:
    cookie = Sessions(TOKEN).login(TOKEN.decode())
    other = Sessions(TOKEN).check(cookie)
    assert other is not None and other.csrf == Sessions(TOKEN).check(cookie).csrf  # type: ignore[union-attr]
    assert Sessions(b"").login("") is None
