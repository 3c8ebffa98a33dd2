"""The Official Account (服务号) linked to the mini-program: its API calls, through the same funnel.

An :class:`OfficialAccountClient` is a :class:`~dashboard.wechat.client.WeChatClient` for the OA's
AppID and AppSecret: every request goes through the same ``_request`` (timeouts, no transport retry,
``read_answer``), and its access token comes from the same shared stable-token service, keyed by the
OA's AppID (one call per expiry for every process). What it adds are the OA's own APIs:

* ``GET /cgi-bin/user/get?next_openid=`` — the followers' openids, up to 10,000 a page;
* ``POST /cgi-bin/user/info/batchget`` — up to 100 followers' profiles (``subscribe``,
  ``subscribe_time``, ``unionid``);
* ``GET /cgi-bin/template/get_all_private_template`` — the account's template messages;
* ``POST /cgi-bin/message/template/send`` — one template message (``miniprogram {appid, pagepath}``,
  ``client_msg_id``: WeChat's de-dup key per openid for 10 minutes).

``get_oa_client()`` is the way in, like ``dashboard.wechat.get_client()`` for the mini-program.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app

from .client import WeChatClient
from .errors import WeChatNotConfigured

OA_SEND_PATH = "/cgi-bin/message/template/send"
FOLLOWERS_PATH = "/cgi-bin/user/get"
BATCHGET_PATH = "/cgi-bin/user/info/batchget"
TEMPLATES_PATH = "/cgi-bin/template/get_all_private_template"
BATCHGET_MAX = 100  # user/info/batchget takes at most 100 openids a call
CLIENT_MSG_ID_MAX = 64

_build_lock = threading.Lock()
# {{first.DATA}}, {{keyword1.DATA}}, {{thing3.DATA}}: the key is what comes before ".DATA".
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+\d*)\.DATA\s*\}\}")


@dataclass(frozen=True)
class FollowerPage:
    """One page of ``user/get``: ``next_openid`` is "" after the last page."""

    total: int
    openids: list[str]
    next_openid: str


@dataclass(frozen=True)
class FollowerInfo:
    """One row of ``user/info/batchget``. ``subscribe`` False: the openid no longer follows (WeChat
    then says nothing else about it)."""

    openid: str
    subscribe: bool
    subscribe_time: int | None = None
    unionid: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class OaTemplate:
    """One row of ``get_all_private_template``; ``keys`` are the content's placeholders in order."""

    template_id: str
    title: str
    content: str
    example: str
    primary_industry: str = ""
    deputy_industry: str = ""

    @property
    def keys(self) -> list[str]:
        return template_keys(self.content)


def template_keys(content: str) -> list[str]:
    """Placeholder keys of an OA template's content, in order, without duplicates.

    ``"{{first.DATA}}\\n订单号：{{keyword1.DATA}}"`` → ``["first", "keyword1"]``; the typed form
    (``{{thing3.DATA}}``) parses the same way.
    """
    return list(dict.fromkeys(_PLACEHOLDER.findall(content or "")))


def build_template_send_body(
    touser: str,
    template_id: str,
    data: Mapping[str, str],
    *,
    miniprogram_appid: str | None = None,
    pagepath: str | None = None,
    url: str | None = None,
    client_msg_id: str | None = None,
) -> dict[str, Any]:
    """The JSON body of ``/cgi-bin/message/template/send``.

    ``data`` is ``{key: value}`` and goes out as ``{key: {"value": value}}``. With ``miniprogram_appid``
    the card opens the mini-program (at ``pagepath``); WeChat prefers it to ``url`` when both are given.
    """
    body: dict[str, Any] = {
        "touser": touser,
        "template_id": template_id,
        "data": {key: {"value": str(value)} for key, value in data.items()},
    }
    if url:
        body["url"] = url
    if miniprogram_appid:
        mini: dict[str, str] = {"appid": miniprogram_appid}
        if pagepath:
            mini["pagepath"] = pagepath
        body["miniprogram"] = mini
    if client_msg_id:
        body["client_msg_id"] = client_msg_id[:CLIENT_MSG_ID_MAX]
    return body


class OfficialAccountClient(WeChatClient):
    """A client for the Official Account. Same funnel, token service and errors as the mini-program's."""

    def __repr__(self) -> str:
        return f"OfficialAccountClient(appid={self.appid!r}, api_base={self.api_base!r})"

    def _require_credentials(self) -> None:
        if not self.configured:
            raise WeChatNotConfigured(
                "WECHAT_OA_APPID and WECHAT_OA_SECRET must both be set: the Official Account channel is off."
            )

    def get_followers(self, next_openid: str = "") -> FollowerPage:
        """``user/get``: one page of followers' openids, starting after ``next_openid`` ("" = the first)."""
        params = {"next_openid": next_openid} if next_openid else {}
        reply = self._call("GET", FOLLOWERS_PATH, params=params)
        data = reply.get("data") or {}
        openids = [str(o) for o in (data.get("openid") or []) if o] if isinstance(data, dict) else []
        return FollowerPage(
            total=int(reply.get("total") or 0),
            openids=openids,
            next_openid=str(reply.get("next_openid") or "") if openids else "",
        )

    def get_followers_info(self, openids: Sequence[str], lang: str = "zh_CN") -> list[FollowerInfo]:
        """``user/info/batchget`` for at most 100 openids (a read: a lost answer is safe to ask again)."""
        if len(openids) > BATCHGET_MAX:
            raise ValueError(f"user/info/batchget takes at most {BATCHGET_MAX} openids, not {len(openids)}")
        if not openids:
            return []
        body = {"user_list": [{"openid": openid, "lang": lang} for openid in openids]}
        reply = self._call("POST", BATCHGET_PATH, json_body=body, idempotent=True)
        rows = []
        for row in reply.get("user_info_list") or []:
            if not isinstance(row, dict) or not row.get("openid"):
                continue
            subscribed = str(row.get("subscribe", 0)) == "1"
            raw_time = row.get("subscribe_time")
            rows.append(
                FollowerInfo(
                    openid=str(row["openid"]),
                    subscribe=subscribed,
                    subscribe_time=int(raw_time) if subscribed and str(raw_time or "").isdigit() else None,
                    unionid=str(row["unionid"]) if row.get("unionid") else None,
                    extra={k: v for k, v in row.items() if k not in ("openid", "subscribe", "unionid")},
                )
            )
        return rows

    def get_oa_templates(self) -> list[OaTemplate]:
        """``get_all_private_template``: the account's template messages."""
        reply = self._call("GET", TEMPLATES_PATH)
        return [
            OaTemplate(
                template_id=str(row.get("template_id") or ""),
                title=str(row.get("title") or ""),
                content=str(row.get("content") or ""),
                example=str(row.get("example") or ""),
                primary_industry=str(row.get("primary_industry") or ""),
                deputy_industry=str(row.get("deputy_industry") or ""),
            )
            for row in reply.get("template_list") or []
            if isinstance(row, dict) and row.get("template_id")
        ]

    def send_template_message(
        self,
        touser: str,
        template_id: str,
        data: Mapping[str, str],
        *,
        miniprogram_appid: str | None = None,
        pagepath: str | None = None,
        url: str | None = None,
        client_msg_id: str | None = None,
    ) -> str:
        """``message/template/send``: one OA template message; returns WeChat's ``msgid`` as a string.

        :raise WeChatError: categorised (43004 the user does not follow, 40003, 40037, 47003 …).
        :raise WeChatUnknownOutcome: the request went out and its answer was lost; with the same
            ``client_msg_id`` a resend within 10 minutes is not delivered twice.
        """
        body = build_template_send_body(
            touser,
            template_id,
            data,
            miniprogram_appid=miniprogram_appid,
            pagepath=pagepath,
            url=url,
            client_msg_id=client_msg_id,
        )
        reply = self._call("POST", OA_SEND_PATH, json_body=body, idempotent=False)
        msgid = reply.get("msgid")
        return "" if msgid is None else str(msgid)


def get_oa_client(app: Flask | None = None) -> OfficialAccountClient:
    """The app's Official Account client (``current_app`` by default), created on first use.

    When the channel is off (no ``WECHAT_OA_APPID``) the client exists but is not ``configured``: every
    call fails with ``WeChatNotConfigured`` (category ``config``) before anything is sent.
    """
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    client = app.extensions.get("wechat_oa")
    if client is None:
        with _build_lock:
            client = app.extensions.get("wechat_oa")
            if client is None:
                client = app.extensions["wechat_oa"] = _build(app)
    return client


def _build(app: Flask) -> OfficialAccountClient:
    from . import build_client

    # The same shared token service as the mini-program's, keyed by the OA's AppID.
    config = app.config
    return build_client(
        app, OfficialAccountClient, config.get("WECHAT_OA_APPID"), config.get("WECHAT_OA_SECRET")
    )
