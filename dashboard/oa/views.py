"""``/wechat/oa-push``: where the Official Account pushes its events, verified exactly as ``/wechat/push``.

Same signature, freshness, nonce and secure-mode rules (``dashboard.push.views.receive_verified``), with
the OA's own settings: ``WECHAT_OA_PUSH_TOKEN``, ``WECHAT_OA_PUSH_AES_KEY`` and ``WECHAT_OA_APPID``.
"""

from __future__ import annotations

from flask import Blueprint, Response

from ..access import public
from ..extensions import csrf
from ..push.views import PushReceiver, receive_verified, verify_url
from .push import handle_oa_push

bp = Blueprint("oa_push", __name__)
csrf.exempt(bp)

OFFICIAL_ACCOUNT = PushReceiver(
    name="/wechat/oa-push",
    token_setting="WECHAT_OA_PUSH_TOKEN",  # noqa: S106 (the setting's name, not its value)
    aes_key_setting="WECHAT_OA_PUSH_AES_KEY",
    appid_setting="WECHAT_OA_APPID",
    handle=lambda message, encrypted: handle_oa_push(message, encrypted=encrypted),
)


@bp.route("/oa-push", methods=["GET"])
@public
def verify() -> Response:
    return verify_url(OFFICIAL_ACCOUNT)


@bp.route("/oa-push", methods=["POST"])
@public
def receive() -> Response:
    return receive_verified(OFFICIAL_ACCOUNT)
