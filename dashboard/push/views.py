"""``/wechat/push``: where WeChat pushes subscribe events (消息推送). Authenticated by signature only.

GET is the console's URL check: a valid ``signature`` gets ``echostr`` back verbatim as text/plain.
POST carries an event in plaintext or secure mode (``encrypt_type=aes`` with ``msg_signature``), as JSON
or XML. Anything unsigned, wrongly signed or encrypted for another AppID gets 403 and changes nothing;
a verified push is applied in one transaction and acknowledged with ``success`` (a repeat of an applied
push too, so WeChat stops retrying). Processing is a few indexed writes, well inside WeChat's 5 s.

Note: in plaintext mode WeChat's ``signature`` covers only token, timestamp and nonce, not the body;
secure mode's ``msg_signature`` covers the body too. Use secure mode in production.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import OperationalError

from ..access import public
from ..extensions import csrf, db
from . import crypto
from .parsing import PushFormatError, detect_format, parse, parse_json, parse_xml
from .services import handle_push

bp = Blueprint("push", __name__)
csrf.exempt(bp)
log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


def _text(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/plain")


def _signed(token: str) -> bool:
    args = request.args
    timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
    return crypto.same(crypto.signature(token, timestamp, nonce), args.get("signature"))


@bp.route("/push", methods=["GET"])
@public
def verify() -> Response:
    token = current_app.config.get("WECHAT_PUSH_TOKEN")
    if not token or not _signed(token):
        return _text("forbidden", 403)
    return _text(request.args.get("echostr", ""))


@bp.route("/push", methods=["POST"])
@public
def receive() -> Response:
    config = current_app.config
    token = config.get("WECHAT_PUSH_TOKEN")
    if not token:
        log.warning("a push arrived but WECHAT_PUSH_TOKEN is not set: refused")
        return _text("forbidden", 403)
    if not _signed(token):
        return _text("forbidden", 403)
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return _text("too large", 413)
    request.max_content_length = MAX_BODY_BYTES + 1  # see dashboard.api.views.limit_requests
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BODY_BYTES:
        return _text("too large", 413)
    encrypted = request.args.get("encrypt_type", "").lower() == "aes"
    try:
        if encrypted:
            raw = _decrypt(raw, token)
            if raw is None:
                return _text("forbidden", 403)
        message = parse(raw)
        outcome = handle_push(message, encrypted=encrypted)
        db.session.commit()
    except PushFormatError as error:
        db.session.rollback()
        log.warning("push refused: %s", error)
        return _text("bad request", 400)
    except OperationalError:
        db.session.rollback()
        log.warning("push not applied: the database is busy; WeChat will retry")
        return _text("busy", 503)
    if outcome.ignored:
        log.debug("push of a %r event ignored", outcome.event)
    return _text("success")


def _decrypt(raw: bytes, token: str) -> bytes | None:
    """The plain message of a secure-mode body, or None when it is not ours (then: 403)."""
    aes_key = current_app.config.get("WECHAT_PUSH_AES_KEY")
    if not aes_key:
        log.warning("an encrypted push arrived but WECHAT_PUSH_AES_KEY is not set: refused")
        return None
    envelope = parse_xml(raw) if detect_format(raw) == "xml" else parse_json(raw)
    encrypted = str(envelope.fields.get("Encrypt") or "")
    args = request.args
    expected = crypto.msg_signature(token, args.get("timestamp", ""), args.get("nonce", ""), encrypted)
    if not encrypted or not crypto.same(expected, args.get("msg_signature")):
        return None
    try:
        return crypto.decrypt(aes_key, encrypted, current_app.config.get("WECHAT_APPID") or "")
    except crypto.PushCryptoError as error:
        log.warning("encrypted push refused: %s", error)
        return None
