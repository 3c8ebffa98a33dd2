"""Message-push wire format (消息推送), per docs/wechat-rules.md, "Push events": signatures, AES, JSON/XML bodies.

Pure functions, no I/O; ``delivery.py`` does the HTTP. Nothing here imports product code, so a Tongzhi
callback that verifies and decrypts these bodies is checked against an independent implementation.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_BLOCK = 32  # WeChat pads to 32-byte blocks (PKCS#7 with k = 32), not AES's 16.

XML_WRAPPERS = {
    "subscribe_msg_popup_event": "SubscribeMsgPopupEvent",
    "subscribe_msg_change_event": "SubscribeMsgChangeEvent",
    "subscribe_msg_sent_event": "SubscribeMsgSentEvent",
}


@dataclass
class Event:
    """An event about one user; ``items`` become the ``List`` entries of a subscribe-message event,
    ``fields`` are top-level fields of the others (the Official Account's ``MsgID``, ``Status``,
    ``EventKey``). All values are strings."""

    name: str
    openid: str
    create_time: int
    items: list[dict[str, str]] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)


def signature(token: str, timestamp: str, nonce: str) -> str:
    """``signature`` query parameter: sha1 of the lexicographically sorted, concatenated strings."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()  # noqa: S324 - WeChat's scheme


def msg_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """``msg_signature`` of secure mode: the same sort-and-sha1 over four strings including ``Encrypt``."""
    joined = "".join(sorted([token, timestamp, nonce, encrypt]))
    return hashlib.sha1(joined.encode()).hexdigest()  # noqa: S324 - WeChat's scheme, not our choice


def _aes_key(encoding_aes_key: str) -> bytes:
    return base64.b64decode(encoding_aes_key + "=")


def encrypt(encoding_aes_key: str, appid: str, message: bytes) -> str:
    """Secure-mode ``Encrypt`` value: base64(AES-256-CBC(16 random ‖ len(msg) BE32 ‖ msg ‖ appid)).

    Key = base64decode(EncodingAESKey + "="), IV = first 16 key bytes, PKCS#7 padding to 32-byte blocks.
    """
    key = _aes_key(encoding_aes_key)
    plain = secrets.token_bytes(16) + struct.pack(">I", len(message)) + message + appid.encode()
    pad = _BLOCK - len(plain) % _BLOCK
    plain += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def decrypt(encoding_aes_key: str, encrypted: str) -> tuple[bytes, str]:
    """Inverse of ``encrypt``: returns (message, appid). Used by the sandbox's own round-trip checks."""
    key = _aes_key(encoding_aes_key)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()
    plain = plain[: -plain[-1]]
    (length,) = struct.unpack(">I", plain[16:20])
    return plain[20 : 20 + length], plain[20 + length :].decode()


def _cdata(value: str) -> str:
    # "]]>" cannot appear inside CDATA; split it across two sections.
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _xml_value(key: str, value: str) -> str:
    # The official samples write numbers bare and text in CDATA.
    body = value if value.isdigit() else _cdata(value)
    return f"<{key}>{body}</{key}>"


def event_json(event: Event, original_id: str) -> dict[str, Any]:
    """Plain JSON form. ``List`` is top level, an object for one item and an array for several."""
    body: dict[str, Any] = {
        "ToUserName": original_id,
        "FromUserName": event.openid,
        "CreateTime": str(event.create_time),
        "MsgType": "event",
        "Event": event.name,
        **event.fields,
    }
    if event.name in XML_WRAPPERS:
        body["List"] = event.items[0] if len(event.items) == 1 else list(event.items)
    return body


def event_xml(event: Event, original_id: str) -> str:
    """Plain XML form: ``List`` elements inside the event's wrapper element (SubscribeMsgPopupEvent, …)."""
    lists = "".join(
        "<List>" + "".join(_xml_value(k, v) for k, v in item.items()) + "</List>" for item in event.items
    )
    wrapper = XML_WRAPPERS.get(event.name)
    extra = "".join(_xml_value(k, v) for k, v in event.fields.items())
    return (
        "<xml>"
        f"<ToUserName>{_cdata(original_id)}</ToUserName>"
        f"<FromUserName>{_cdata(event.openid)}</FromUserName>"
        f"<CreateTime>{event.create_time}</CreateTime>"
        f"<MsgType>{_cdata('event')}</MsgType>"
        f"<Event>{_cdata(event.name)}</Event>"
        + (f"<{wrapper}>{lists}</{wrapper}>" if wrapper else "")
        + extra
        + "</xml>"
    )


@dataclass
class PushSettings:
    """Where and how to push; mirrors the console's 消息推送配置."""

    url: str
    fmt: str  # "json" | "xml"
    mode: str  # "plaintext" | "secure"
    token: str
    aes_key: str | None
    appid: str
    original_id: str


@dataclass
class Envelope:
    """A ready-to-send push: query parameters, body bytes and content type."""

    params: dict[str, str]
    body: bytes
    content_type: str


_nonce_counter = itertools.count()


def fresh_nonce() -> str:
    """A 10-digit nonce like WeChat's. A receiver refuses a (timestamp, nonce) it has seen, so the last
    4 digits count: any 10 000 pushes in a row of this process, far more than one second's, differ."""
    return f"{secrets.randbelow(10**6):06d}{next(_nonce_counter) % 10**4:04d}"


def build_envelope(
    event: Event, settings: PushSettings, *, timestamp: int | None = None, nonce: str | None = None
) -> Envelope:
    """Serialise, (in secure mode) encrypt, and sign ``event`` for ``settings``.

    The signed ``timestamp`` is the moment of sending (a receiver refuses stale ones), not the event's
    ``CreateTime``; it is wall-clock time even when the sandbox's clock is replaced. ``timestamp`` and
    ``nonce`` can be given to build a stale or repeated request on purpose.
    """
    if settings.fmt == "xml":
        plain = event_xml(event, settings.original_id).encode()
        content_type = "text/xml; charset=utf-8"
    else:
        plain = json.dumps(event_json(event, settings.original_id), ensure_ascii=False).encode()
        content_type = "application/json; charset=utf-8"
    signed_at = str(int(time.time()) if timestamp is None else timestamp)
    nonce = fresh_nonce() if nonce is None else nonce
    params = {
        "signature": signature(settings.token, signed_at, nonce),
        "timestamp": signed_at,
        "nonce": nonce,
    }
    if settings.mode != "secure":
        return Envelope(params=params, body=plain, content_type=content_type)
    if settings.aes_key is None:
        raise ValueError("secure mode needs an EncodingAESKey")
    encrypted = encrypt(settings.aes_key, settings.appid, plain)
    params["encrypt_type"] = "aes"
    params["msg_signature"] = msg_signature(settings.token, signed_at, nonce, encrypted)
    if settings.fmt == "xml":
        body = (
            f"<xml><ToUserName>{_cdata(settings.original_id)}</ToUserName>"
            f"<Encrypt>{_cdata(encrypted)}</Encrypt></xml>"
        ).encode()
    else:
        body = json.dumps({"ToUserName": settings.original_id, "Encrypt": encrypted}).encode()
    return Envelope(params=params, body=body, content_type=content_type)
