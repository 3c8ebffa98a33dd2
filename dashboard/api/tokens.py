"""Session tokens of the mini-program API: opaque to the client, signed here, bound to one openid.

A token is an ``itsdangerous`` timed signature (keyed by ``SECRET_KEY`` with its own salt, so it can
never be confused with a session cookie or a CSRF token) over the user's id, openid and the AppID it was
issued for. It expires after ``MP_TOKEN_TTL_SECONDS``; the mini-program then logs in again. WeChat's
``session_key`` is not in it and is not stored anywhere: nothing in Tongzhi needs it.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from ..extensions import db
from ..models import WechatUser
from .errors import ApiError

SALT = "tongzhi.mp-session.v1"
_users = WechatUser.__table__.c
# Built once: the grant report, the ingest path, asks it on every request (issue 13).
_USER_STILL_THERE = sa.select(_users.id).where(
    _users.id == sa.bindparam("user_id"), _users.openid == sa.bindparam("openid")
)


@dataclass(frozen=True)
class TokenUser:
    """Who a valid token stands for: enough for every mini-program endpoint but the settings report,
    which loads the row (``load``). Not an ORM object, so checking a token costs one narrow query."""

    id: int
    openid: str

    def load(self) -> WechatUser:
        user = db.session.get(WechatUser, self.id)
        if user is None:  # deleted since the token was checked, in the same request
            raise user_gone()
        return user


def _serializer(now: float | None = None) -> URLSafeTimedSerializer:
    if now is None:
        return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)

    class IssuedAt(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(now)

    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT, signer=IssuedAt)


def token_ttl() -> int:
    return int(current_app.config["MP_TOKEN_TTL_SECONDS"])


def issue_token(user: WechatUser, *, now: float | None = None) -> str:
    """A token for ``user`` (``now``: the issue time, for tests of expiry)."""
    payload = {"u": user.id, "o": user.openid, "a": current_app.config.get("WECHAT_APPID") or ""}
    return _serializer(now).dumps(payload)


def authenticate(header: str | None) -> TokenUser:
    """The user a ``Authorization: Bearer <token>`` header stands for, still in the database.

    :raise ApiError: 401 ``token_missing`` / ``token_invalid`` / ``token_expired``; 403
        ``token_wrong_app`` for a genuine token issued for another mini-program (AppID).
    """
    user = verify(header)
    if not db.session.execute(_USER_STILL_THERE, {"user_id": user.id, "openid": user.openid}).first():
        raise user_gone()
    return user


def user_gone() -> ApiError:
    """A genuine token whose user is no longer there (deleted, or the openid changed)."""
    return ApiError(401, "token_invalid", "The session token is not valid: log in again.")


def verify(header: str | None) -> TokenUser:
    """The user a ``Authorization: Bearer <token>`` header names, by the token's signature alone.

    The caller must then check that the user is still there, as :func:`authenticate` does; the grant
    report does it inside the one query it reads everything with (issue 13).

    :raise ApiError: as :func:`authenticate`.
    """
    if not header:
        raise ApiError(401, "token_missing", "Send Authorization: Bearer <token> from POST /api/mp/session.")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 1024:
        raise ApiError(401, "token_invalid", "The Authorization header must be: Bearer <token>.")
    try:
        payload = _serializer().loads(token, max_age=token_ttl())
    except SignatureExpired:
        raise ApiError(401, "token_expired", "The session token has expired: log in again.") from None
    except (BadSignature, ValueError, TypeError, UnicodeError):
        raise ApiError(401, "token_invalid", "The session token is not valid: log in again.") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("u"), int):
        raise ApiError(401, "token_invalid", "The session token is not valid: log in again.")
    if payload.get("a") != (current_app.config.get("WECHAT_APPID") or ""):
        raise ApiError(403, "token_wrong_app", "This token was issued for another mini-program.")
    openid = payload.get("o")
    if not isinstance(openid, str):
        raise user_gone()
    return TokenUser(payload["u"], openid)
