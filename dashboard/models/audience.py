"""The people Tongzhi may message: mini-program users, known by their openid."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow

# Tags and attributes are JSONB on PostgreSQL (migration 0017), JSON text on SQLite.
SEGMENT_JSON = JSON().with_variant(JSONB(), "postgresql")

# The longest tag and attribute key/value a segment filter can name (``dashboard.audience.segments``
# refuses longer ones), so the longest the segment index below needs to hold.
INDEXED_TAG_LENGTH = 32
INDEXED_KEY_LENGTH = 40
INDEXED_VALUE_LENGTH = 256


class WechatUser(db.Model):
    """One user of the mini-program. ``openid`` is WeChat's id for them within this AppID.

    ``attributes`` holds operator-defined key/values (from CSV import or the API); ``tags`` a list
    of strings. Both feed segments. The WeChat ``session_key`` is never stored here or anywhere
    it could be shown.

    ``main_switch`` and ``item_settings`` are what the mini-program last reported from
    ``wx.getSetting({withSubscriptions: true})`` (``None``: never reported): the main switch, and the
    templates for which the user ticked "always keep this choice" with that choice.
    """

    __tablename__ = "wechat_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), unique=True)
    unionid: Mapped[str | None] = mapped_column(String(64), index=True)
    nickname: Mapped[str] = mapped_column(String(64), default="")
    tags: Mapped[list[str]] = mapped_column(SEGMENT_JSON, default=list)
    attributes: Mapped[dict[str, Any]] = mapped_column(SEGMENT_JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    main_switch: Mapped[bool | None] = mapped_column()
    item_settings: Mapped[dict[str, str] | None] = mapped_column(JSON)
    settings_reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<WechatUser {self.openid}>"


# -- the segment index (PostgreSQL) -----------------------------------------------------------------------
# A segment's "has tag vip" and "city is 上海" over a million users must be answered without reading the
# users' rows: on PostgreSQL reading 100,000 scattered rows' JSONB was most of a count's time, and GIN
# results always go back to the row (docs/benchmarks.md, segments). So each (tag, user) and each
# (attribute key, value as text, user) is also a row of a narrow table whose primary key answers the
# condition by an index-only scan. Triggers on ``wechat_user`` (migration 0019) keep them in step with
# every INSERT, UPDATE, upsert, DELETE and TRUNCATE, however the user was written (login, CSV import,
# the API, psql). There is no foreign key to wechat_user: its per-row check doubled the cost of writing
# users. Values longer than a filter may name are not indexed: no filter can match them. SQLite has the tables but no triggers, so they stay empty: its
# segment SQL reads the JSON itself and meets its target without them.


class UserTag(db.Model):
    """One tag of one user, kept by a trigger from ``wechat_user.tags`` (PostgreSQL only)."""

    __tablename__ = "user_tag"

    tag: Mapped[str] = mapped_column(String(INDEXED_TAG_LENGTH), primary_key=True)
    user_id: Mapped[int] = mapped_column(primary_key=True, index=True)


class UserAttributeValue(db.Model):
    """One attribute of one user as its text (``attributes ->> key``), kept by a trigger (PostgreSQL only)."""

    __tablename__ = "user_attribute_value"

    key: Mapped[str] = mapped_column(String(INDEXED_KEY_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(String(INDEXED_VALUE_LENGTH), primary_key=True)
    user_id: Mapped[int] = mapped_column(primary_key=True, index=True)
