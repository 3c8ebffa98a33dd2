"""State Tongzhi keeps about its WeChat account: the shared access-token cache."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime


class AccessTokenCache(db.Model):
    """The current access token of one AppID, shared by every process (``dashboard.wechat.token``).

    Only the token service writes here, under its lock, on its own connection. ``token`` is a
    secret: never show it. ``force_refreshed_at`` remembers the last force refresh (WeChat allows
    20 a day), so no process can force-refresh in a loop.
    """

    __tablename__ = "wechat_access_token"

    appid: Mapped[str] = mapped_column(String(64), primary_key=True)
    # WeChat asks for at least 512 characters of storage.
    token: Mapped[str] = mapped_column(String(1024))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)
    force_refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<AccessTokenCache {self.appid} expires_at={self.expires_at.isoformat()}>"
