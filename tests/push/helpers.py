"""Shared by the push tests: building signed pushes the way WeChat (here: the sandbox) does, and reading
what they left in the database."""

from __future__ import annotations

from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models import WechatUser
from dashboard.models.grants import GrantBalance
from dashboard.sandbox.push import Event, PushSettings, build_envelope
from tests.api.live import AES_KEY, PUSH_TOKEN

APPID = "wxpushtest00000000"
OPENID = "oPushUser0000000000000000001"


def settings(fmt="json", mode="plaintext", token=PUSH_TOKEN, appid=APPID):
    return PushSettings(
        url="", fmt=fmt, mode=mode, token=token, aes_key=AES_KEY, appid=appid, original_id="gh_t"
    )


def post(client, envelope, *, params=None, body=None):
    return client.post(
        "/wechat/push",
        query_string=envelope.params if params is None else params,
        data=envelope.body if body is None else body,
        headers={"Content-Type": envelope.content_type},
    )


def configure_for(app, mode: str) -> None:
    """Set the app up as the console would be for ``mode``: an EncodingAESKey exactly in secure mode
    (with a key set, plaintext pushes are refused)."""
    app.config["WECHAT_PUSH_AES_KEY"] = AES_KEY if mode == "secure" else None


def push(client, event, *, timestamp=None, nonce=None, **kw):
    """Send ``event`` signed (and in secure mode encrypted), the app configured for that mode."""
    configure_for(client.application, kw.get("mode", "plaintext"))
    return post(client, build_envelope(event, settings(**kw), timestamp=timestamp, nonce=nonce))


def popup(*items, when=1_790_000_000, openid=OPENID, name="subscribe_msg_popup_event"):
    return Event(
        name,
        openid,
        when,
        [{"TemplateId": t, "SubscribeStatusString": s, "PopupScene": "0"} for t, s in items],
    )


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def credits(app, template_id, openid=OPENID):
    with app.app_context():
        return db.session.scalar(
            select(GrantBalance.credits)
            .join(WechatUser, WechatUser.id == GrantBalance.user_id)
            .where(WechatUser.openid == openid, GrantBalance.template_id == template_id)
        )
