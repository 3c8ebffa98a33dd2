"""The template catalog: the WeChat subscribe-message templates registered in Tongzhi.

A template's identity is WeChat's ``priTmplId`` (``template_id``). Its title, type and content are
WeChat's facts (they change only through a sync, or are typed in once for a manual registration);
the keyword schema's labels, enum values, defaults and fit policies, and the per-template send
settings, are Tongzhi's and are edited by marketers.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import JSON, Enum, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow


class TemplateKind(enum.StrEnum):
    """One-time (WeChat ``type`` 2: one credit per accept) or long-term (``type`` 3)."""

    one_time = "one_time"
    long_term = "long_term"

    @property
    def wechat_type(self) -> int:
        return 2 if self is TemplateKind.one_time else 3

    @classmethod
    def from_wechat_type(cls, value: object) -> TemplateKind:
        """``2`` → one-time, ``3`` → long-term; anything else is read as one-time (WeChat's default)."""
        return cls.long_term if str(value).strip() == "3" else cls.one_time


class TemplateSource(enum.StrEnum):
    """How the template came in: a sync from WeChat, the public library, or typed in by hand."""

    sync = "sync"
    library = "library"
    manual = "manual"


class Drift(enum.StrEnum):
    """Whether WeChat's template moved away from what Tongzhi registered.

    ``changed``: a sync found a new title, content, keywords, type or enum values; anything built on
    the old schema must be reviewed before it sends again. ``removed``: gone from the account; sends
    would fail with 40037.
    """

    none = "none"
    changed = "changed"
    removed = "removed"


class FitPolicy(enum.StrEnum):
    """What a send does with a keyword value that breaks its rule: refuse, or send the suggested fix."""

    reject = "reject"
    fix = "fix"


class KeywordSpec(TypedDict):
    """One entry of ``MessageTemplate.keywords`` (stored as JSON, in content order)."""

    key: str  # the data key, e.g. "thing2"
    type: str  # the value type, e.g. "thing"
    label: str  # Tongzhi's label; starts as the text before the placeholder in the content
    content_label: str  # the label as the content has it (what the user sees on the card)
    enum_values: list[str]
    default: str | None  # may contain user variables such as {{user.nickname}}
    fit: str  # a FitPolicy value


def _enum(kind: type[enum.Enum], length: int = 16) -> Enum:
    return Enum(kind, native_enum=False, length=length, validate_strings=True)


class MessageTemplate(db.Model):
    __tablename__ = "message_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[str] = mapped_column(String(64), unique=True)  # WeChat's priTmplId
    title: Mapped[str] = mapped_column(String(100))
    kind: Mapped[TemplateKind] = mapped_column(_enum(TemplateKind))
    content: Mapped[str] = mapped_column(Text)
    example: Mapped[str] = mapped_column(Text, default="")
    keywords: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    source: Mapped[TemplateSource] = mapped_column(_enum(TemplateSource))
    tid: Mapped[str | None] = mapped_column(String(32))  # public library title id, when known
    scene_desc: Mapped[str] = mapped_column(String(32), default="")  # addtemplate's sceneDesc

    # How sends of this template go out.
    page: Mapped[str] = mapped_column(String(512), default="")
    miniprogram_state: Mapped[str] = mapped_column(String(16), default="formal")
    lang: Mapped[str] = mapped_column(String(8), default="zh_CN")
    enabled: Mapped[bool] = mapped_column(default=True)
    # The business scene ("order_shipped") the API uses to pick this template; unique when set.
    scene: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Credits per user that only transactional (API) sends may spend: campaigns leave them alone, so
    # marketing cannot use up the grant an order notice needs (product glossary: credit budget).
    credit_budget: Mapped[int] = mapped_column(default=0)

    drift: Mapped[Drift] = mapped_column(_enum(Drift), default=Drift.none)
    drift_note: Mapped[str] = mapped_column(String(512), default="")
    drift_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The gettemplate row as WeChat last answered it, so a sync compares WeChat with WeChat and an
    # operator's edits (labels, enum values) are never mistaken for a change at WeChat.
    wechat_snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def is_removed(self) -> bool:
        return self.drift is Drift.removed

    @property
    def keyword_specs(self) -> list[KeywordSpec]:
        return [dict(spec) for spec in self.keywords or []]  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"<MessageTemplate {self.template_id} {self.title!r}>"
