"""The Official Account's template messages (模板消息) in the catalog, beside the mini-program's.

Synced from ``template/get_all_private_template`` (``flask sync-templates``, the Templates page's
Official Account tab). Like the mini-program catalog a template gone from WeChat is kept with its
history and flagged ``removed``, and one whose title or content moved is flagged ``changed`` until an
operator marks it reviewed (:class:`~dashboard.models.catalog.Drift`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .catalog import Drift
from .types import UTCDateTime, utcnow


class OaTemplate(db.Model):
    """One template message of the Official Account.

    ``keywords``: the content's keys in order, ``[{"key", "type", "label"}]`` (``first``, ``keyword1``,
    ``remark`` for classic templates; ``thing3``, ``amount5`` … for category ones). ``wechat_snapshot``:
    the row as WeChat last answered it, so a sync compares WeChat with WeChat.
    """

    __tablename__ = "oa_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(100))
    primary_industry: Mapped[str] = mapped_column(String(64), default="")
    deputy_industry: Mapped[str] = mapped_column(String(64), default="")
    content: Mapped[str] = mapped_column(Text)
    example: Mapped[str] = mapped_column(Text, default="")
    keywords: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    drift: Mapped[Drift] = mapped_column(
        Enum(Drift, native_enum=False, length=16, validate_strings=True), default=Drift.none
    )
    drift_note: Mapped[str] = mapped_column(String(512), default="")
    drift_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    wechat_snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def is_removed(self) -> bool:
        return self.drift is Drift.removed

    def __repr__(self) -> str:
        return f"<OaTemplate {self.template_id} {self.title!r}>"
