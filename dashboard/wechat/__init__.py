"""Everything Tongzhi says to WeChat goes through this package.

``get_client()`` is the way in: one :class:`~dashboard.wechat.client.WeChatClient` per app, built
from the app's settings and wired to the shared access-token service.
"""

from __future__ import annotations

import threading
import weakref

from flask import Flask, current_app

from .client import WeChatClient

_build_lock = threading.Lock()


def get_client(app: Flask | None = None) -> WeChatClient:
    """The app's WeChat client (``current_app`` by default), created on first use.

    Settings read: WECHAT_APPID, WECHAT_SECRET, WECHAT_API_BASE, WECHAT_CONNECT_TIMEOUT,
    WECHAT_READ_TIMEOUT, and those of ``dashboard.wechat.token.token_service_for``.
    """
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    client = app.extensions.get("wechat")
    if client is None:
        with _build_lock:
            client = app.extensions.get("wechat")
            if client is None:
                client = app.extensions["wechat"] = _build(app)
    return client


def _build(app: Flask) -> WeChatClient:
    return build_client(app, WeChatClient, app.config.get("WECHAT_APPID"), app.config.get("WECHAT_SECRET"))


def build_client(app: Flask, cls: type, appid: str | None, secret: str | None):
    """A ``cls`` client for one account (the mini-program's, or the Official Account's), with the app's
    base URL and timeouts and the shared token service keyed by its AppID."""
    from .token import token_service_for

    config = app.config
    client = cls(
        appid,
        secret,
        config.get("WECHAT_API_BASE") or "https://api.weixin.qq.com",
        connect_timeout=float(config.get("WECHAT_CONNECT_TIMEOUT", 3.05)),
        read_timeout=float(config.get("WECHAT_READ_TIMEOUT", 10.0)),
    )
    client.tokens = token_service_for(app, client.stable_token, client.appid)
    # Pooled sockets are closed when the app goes away (or at exit), not left to the garbage collector.
    weakref.finalize(app, client.close)
    return client
