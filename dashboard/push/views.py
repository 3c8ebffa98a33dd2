"""``/wechat/push``: where WeChat pushes subscribe events (消息推送). Authenticated by signature only.

GET is the console's URL check: a valid ``signature`` gets ``echostr`` back verbatim as text/plain.
POST carries an event as JSON or XML, in secure mode (``encrypt_type=aes`` with ``msg_signature``,
which covers the body) or, only when no ``WECHAT_PUSH_AES_KEY`` is configured, in plaintext (whose
``signature`` covers token, timestamp and nonce but not the body).

Every refusal is 403 and changes nothing: unsigned, wrongly signed, encrypted for another AppID,
plaintext while an AES key is set, a timestamp more than ``WECHAT_PUSH_MAX_AGE_SECONDS`` away from now
(either way), or a (timestamp, nonce) already used with another message. A verified push is applied in
one transaction and acknowledged with ``success``; so is a repeat, without being applied again (the
same signed request again, or the same event under a new signature), so WeChat stops retrying.
Processing is a few indexed writes, well inside WeChat's 5 s.

The Official Account's ``/wechat/oa-push`` (``dashboard.oa.views``) is verified by the same code
(``verify_url``, ``receive_verified`` with its own ``PushReceiver``). Both endpoints remember their
signatures' (timestamp, nonce) in the same table.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from ..access import public
from ..extensions import csrf, db
from . import crypto, replay
from .parsing import PushFormatError, PushMessage, detect_format, parse, parse_json, parse_xml
from .services import handle_push

bp = Blueprint("push", __name__)
csrf.exempt(bp)
log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


def _text(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/plain")


def _forbidden() -> Response:
    return _text("forbidden", 403)


@dataclass(frozen=True)
class PushReceiver:
    """One push endpoint's settings and what it does with a verified message.

    The mini-program's ``/wechat/push`` and the Official Account's ``/wechat/oa-push`` verify, decrypt,
    refuse replays and acknowledge the same way (``receive_verified``); they differ in their Token,
    EncodingAESKey and AppID settings and in ``handle(message, encrypted)``, which adds to the session
    and returns an object with ``ignored`` and ``event``.
    """

    name: str
    token_setting: str
    aes_key_setting: str
    appid_setting: str
    handle: Callable[[PushMessage, bool], Any]


def _signed(token: str) -> bool:
    args = request.args
    timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
    return crypto.same(crypto.signature(token, timestamp, nonce), args.get("signature"))


def verify_url(receiver: PushReceiver) -> Response:
    """The console's URL check (GET): a valid ``signature`` gets ``echostr`` back verbatim."""
    token = current_app.config.get(receiver.token_setting)
    if not token or not _signed(token):
        return _forbidden()
    return _text(request.args.get("echostr", ""))


def receive_verified(receiver: PushReceiver) -> Response:
    """A POSTed push: verify (signature, freshness, nonce, secure mode), decrypt, claim, apply."""
    config = current_app.config
    token = config.get(receiver.token_setting)
    if not token:
        log.warning("a push arrived at %s but %s is not set: refused", receiver.name, receiver.token_setting)
        return _forbidden()
    if not _signed(token):
        return _forbidden()
    max_age = config["WECHAT_PUSH_MAX_AGE_SECONDS"]
    timestamp = replay.fresh_timestamp(request.args.get("timestamp", ""), max_age, time.time())
    if timestamp is None:
        log.info("push refused: its timestamp is more than %d s away from now", max_age)
        return _forbidden()
    nonce = request.args.get("nonce", "")
    if not replay.usable_nonce(nonce):
        return _forbidden()
    encrypted = request.args.get("encrypt_type", "").lower() == "aes"
    if config.get(receiver.aes_key_setting) and not encrypted:
        log.warning(
            "a plaintext push to %s was refused: with %s set only secure mode is accepted "
            "(the console's 消息推送 must be set to secure mode)",
            receiver.name,
            receiver.aes_key_setting,
        )
        return _forbidden()
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return _text("too large", 413)
    request.max_content_length = MAX_BODY_BYTES + 1  # see dashboard.api.views.limit_requests
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BODY_BYTES:
        return _text("too large", 413)
    if encrypted:
        try:
            raw = _decrypt(raw, token, receiver)
        except PushFormatError as error:
            log.warning("push refused: %s", error)
            return _text("bad request", 400)
        if raw is None:
            return _forbidden()
    return _apply(raw, timestamp, nonce, encrypted, max_age, receiver)


MINI_PROGRAM = PushReceiver(
    name="/wechat/push",
    token_setting="WECHAT_PUSH_TOKEN",  # noqa: S106 (the setting's name, not its value)
    aes_key_setting="WECHAT_PUSH_AES_KEY",
    appid_setting="WECHAT_APPID",
    handle=lambda message, encrypted: handle_push(message, encrypted=encrypted),
)


@bp.route("/push", methods=["GET"])
@public
def verify() -> Response:
    return verify_url(MINI_PROGRAM)


@bp.route("/push", methods=["POST"])
@public
def receive() -> Response:
    return receive_verified(MINI_PROGRAM)


def _apply(
    message: bytes, timestamp: int, nonce: str, encrypted: bool, max_age: int, receiver: PushReceiver
) -> Response:
    """Claim the signature's (timestamp, nonce) and apply the message, in one transaction: if applying
    fails the claim goes too, so WeChat's retry of the same request is applied then."""
    message_digest = replay.digest(message)
    try:
        seen = replay.claim(timestamp, nonce, message_digest)
        if seen is replay.Seen.repeat:
            log.info("a push was received again under the same signature: acknowledged, not applied")
            return _text("success")
        if seen is replay.Seen.conflict:
            log.warning("push refused: its signature was used before with another body")
            return _forbidden()
        outcome = receiver.handle(parse(message), encrypted)
        db.session.commit()
    except PushFormatError as error:
        db.session.rollback()
        log.warning("push refused: %s", error)
        _spend_signature(timestamp, nonce, message_digest)
        return _text("bad request", 400)
    except OperationalError:
        db.session.rollback()
        log.warning("push not applied: the database is busy; WeChat will retry")
        return _text("busy", 503)
    if outcome.ignored:
        log.debug("push of a %r event ignored", outcome.event)
    _forget_expired_nonces(max_age)
    return _text("success")


def _spend_signature(timestamp: int, nonce: str, message_digest: str) -> None:
    """A signed request refused for its body still used its signature up: nobody may reuse it with a
    body of their own. Best effort: the refusal stands whatever happens here."""
    try:
        replay.claim(timestamp, nonce, message_digest)
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()


def _forget_expired_nonces(max_age: int) -> None:
    """After the push is committed, in a transaction of its own: a failure here costs nothing but a
    few rows kept until the next push."""
    try:
        replay.forget_expired(max_age, time.time())
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.debug("expired push nonces not deleted this time", exc_info=True)


def _decrypt(raw: bytes, token: str, receiver: PushReceiver) -> bytes | None:
    """The plain message of a secure-mode body, or None when it is not ours (then: 403).

    :raise PushFormatError: the envelope itself is neither JSON nor XML.
    """
    aes_key = current_app.config.get(receiver.aes_key_setting)
    if not aes_key:
        log.warning("an encrypted push arrived but %s is not set: refused", receiver.aes_key_setting)
        return None
    envelope = parse_xml(raw) if detect_format(raw) == "xml" else parse_json(raw)
    encrypted = str(envelope.fields.get("Encrypt") or "")
    args = request.args
    expected = crypto.msg_signature(token, args.get("timestamp", ""), args.get("nonce", ""), encrypted)
    if not encrypted or not crypto.same(expected, args.get("msg_signature")):
        return None
    try:
        return crypto.decrypt(aes_key, encrypted, current_app.config.get(receiver.appid_setting) or "")
    except crypto.PushCryptoError as error:
        log.warning("encrypted push refused: %s", error)
        return None
