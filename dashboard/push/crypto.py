"""WeChat's message-push signatures and secure-mode encryption (docs/wechat-rules.md, "Push events").

* ``signature`` = sha1 of the lexicographically sorted, concatenated (token, timestamp, nonce);
* ``msg_signature`` = the same over (token, timestamp, nonce, Encrypt);
* ``Encrypt`` = base64(AES-256-CBC(16 random bytes ‖ 4-byte big-endian length ‖ message ‖ appid)),
  key = base64decode(EncodingAESKey + "="), IV = the key's first 16 bytes, PKCS#7 padding to 32 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeChat pads to 32-byte blocks, not AES's 16


class PushCryptoError(ValueError):
    """A secure-mode body that cannot be decrypted, or was encrypted for another AppID."""


def _sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()  # noqa: S324 - WeChat's scheme


def signature(token: str, timestamp: str, nonce: str) -> str:
    return _sha1(token, timestamp, nonce)


def msg_signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    return _sha1(token, timestamp, nonce, encrypted)


def same(expected: str, given: str | None) -> bool:
    """Constant-time comparison of two hex signatures."""
    return given is not None and hmac.compare_digest(expected.encode(), given.strip().lower().encode())


def aes_key(encoding_aes_key: str) -> bytes:
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error:
        raise PushCryptoError("EncodingAESKey is not base64") from None
    if len(key) != 32:
        raise PushCryptoError("EncodingAESKey must decode to 32 bytes")
    return key


def decrypt(encoding_aes_key: str, encrypted: str, appid: str) -> bytes:
    """The message inside ``Encrypt``.

    :raise PushCryptoError: not base64, not whole blocks, bad padding, a length that does not fit, or a
        trailing AppID other than ``appid``.
    """
    key = aes_key(encoding_aes_key)
    try:
        data = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError):
        raise PushCryptoError("Encrypt is not base64") from None
    if not data or len(data) % 16:
        raise PushCryptoError("Encrypt is not whole AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
        raise PushCryptoError("bad padding")
    plain = plain[:-pad]
    if len(plain) < 20:
        raise PushCryptoError("too short")
    (length,) = struct.unpack(">I", plain[16:20])
    if 20 + length > len(plain):
        raise PushCryptoError("length field does not fit")
    message, trailing = plain[20 : 20 + length], plain[20 + length :]
    if not hmac.compare_digest(trailing, appid.encode()):
        raise PushCryptoError("encrypted for another AppID")
    return message
