"""The people Tongzhi may message: mini-program users, known by their openid."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, false
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow

# Tags and attributes are JSONB on PostgreSQL (migration 0017): a segment's tag and attribute conditions are
# containment tests (``@>``) answered by GIN indexes, without parsing every candidate row's JSON text.
SEGMENT_JSON = JSON().with_variant(JSONB(), "postgresql")


def _gin(name: str, column: str) -> Index:
    """A GIN index on PostgreSQL; on SQLite, which has no use for it, an index that holds no row."""
    return Index(
        name,
        column,
        postgresql_using="gin",
        postgresql_ops={column: "jsonb_path_ops"},
        sqlite_where=false(),
    )


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
    __table_args__ = (_gin("ix_wechat_user_tags", "tags"), _gin("ix_wechat_user_attributes", "attributes"))

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
