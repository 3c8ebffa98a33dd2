"""Log hygiene: secret values never reach a log line, whichever logger or handler carries them.

Redaction happens where records are made (a LogRecord factory), so it covers every logger in the
process and handlers added later, such as gunicorn's. Two kinds of value are masked: the configured
secrets (and ones learned at run time, such as access tokens), and the signed query parameters of
WeChat's pushes (``signature``, ``msg_signature``, ``nonce``, ``timestamp``, ``echostr``), which an access
log line (werkzeug's, gunicorn's ``%(r)s``/``%(q)s``) would otherwise keep for anyone who reads it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from typing import Any

from .config import SECRET_SETTINGS, URL_SETTINGS, mask_url

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words

_lock = threading.Lock()
_replacements: dict[str, str] = {}
_ordered: list[tuple[str, str]] = []
_installed = False

# A signed parameter's value in a query string. The name must not be the end of a longer one (so
# "msg_signature" is matched whole, never as "signature", and "x_nonce" is left alone).
SIGNED_QUERY_RE = re.compile(
    r"(?<![A-Za-z0-9_.-])(signature|msg_signature|nonce|timestamp|echostr)=[^&\s\"'#]*", re.IGNORECASE
)


def redact_signed_query(text: str) -> str:
    if "=" not in text:
        return text
    return SIGNED_QUERY_RE.sub(lambda match: f"{match.group(1)}={MASK}", text)


def redact(text: str) -> str:
    for secret, replacement in _ordered:
        if secret in text:
            text = text.replace(secret, replacement)
    return redact_signed_query(text)


class SecretRedactor:
    """The app's handle on the process-wide list of values to mask (``app.extensions["secret_redactor"]``)."""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SecretRedactor:
        redactor = cls()
        for name in SECRET_SETTINGS:
            if config.get(name):
                redactor.add(str(config[name]))
        for name in URL_SETTINGS:
            value = config.get(name)
            masked = mask_url(value)
            if value and masked != value:
                redactor.add(str(value), str(masked))
        _install()
        return redactor

    def add(self, secret: str, replacement: str = MASK) -> None:
        """Register a value learned at run time too (an access token, say)."""
        global _ordered
        if not secret or len(secret) < MIN_SECRET_LENGTH:
            return
        with _lock:
            _replacements[secret] = replacement
            # Longest first, so a secret that contains another is masked whole.
            _ordered = sorted(_replacements.items(), key=lambda item: -len(item[0]))

    redact = staticmethod(redact)


def _install() -> None:
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            message = record.getMessage()
            redacted = redact(message)
            if redacted != message:
                record.msg, record.args = redacted, None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            return record

        logging.setLogRecordFactory(make_record)
        _installed = True
