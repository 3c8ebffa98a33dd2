"""Creating, checking and revoking API keys."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..audit.services import record
from ..extensions import db
from ..models import ApiKey, utcnow
from ..models.api_key import SCOPES

KEY_PREFIX = "tz_"
# Writing last_used_at on every request would make every API call a write; once a minute is enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyError(ValueError):
    """A key cannot be created as asked; the message is for people."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def list_keys() -> list[ApiKey]:
    return list(db.session.scalars(select(ApiKey).order_by(ApiKey.revoked_at.is_not(None), ApiKey.name)))


def create_key(name: str, scopes: list[str], created_by_id: int | None = None) -> tuple[ApiKey, str]:
    """Add a key to the session and return it with the plaintext, which is never stored or shown again."""
    name = name.strip()
    scopes = [scope for scope in SCOPES if scope in scopes]
    if not name:
        raise ApiKeyError(_l("A key needs a name."))
    if not scopes:
        raise ApiKeyError(_l("Choose at least one scope."))
    if db.session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise ApiKeyError(_l("A key named %(name)s already exists.", name=name))
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=name,
        prefix=plaintext[:10],
        key_hash=hash_key(plaintext),
        scopes=" ".join(scopes),
        created_by_id=created_by_id,
    )
    db.session.add(key)
    db.session.flush()
    record("api_key.created", key, name=name, scopes=key.scopes)
    return key, plaintext


def revoke_key(key: ApiKey) -> None:
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        record("api_key.revoked", key, name=key.name)


def authenticate(authorization: str | None) -> ApiKey | None:
    """The active key named by an ``Authorization: Bearer <key>`` header, or None. Updates last use."""
    if not authorization or not authorization.startswith("Bearer "):
        return None
    presented = authorization[len("Bearer ") :].strip()
    if not presented.startswith(KEY_PREFIX) or len(presented) > 100:
        return None
    key = db.session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(presented)))
    if key is None or not key.is_active:
        return None
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        key.last_used_at = now
        db.session.commit()
    return key
