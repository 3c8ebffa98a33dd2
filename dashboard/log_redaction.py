"""Log hygiene: secret values never reach a log line, whatever code logs them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .config import SECRET_SETTINGS, URL_SETTINGS, mask_url

MASK = "***"


class SecretRedactingFilter(logging.Filter):
    """Replaces every configured secret value (and URL passwords) in a record with ``***``."""

    def __init__(self, replacements: Mapping[str, str]):
        super().__init__()
        # Longest first so a secret that contains another is masked whole.
        self.replacements = sorted(replacements.items(), key=lambda item: -len(item[0]))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SecretRedactingFilter:
        replacements: dict[str, str] = {}
        for name in SECRET_SETTINGS:
            value = config.get(name)
            if value and len(str(value)) >= 4:
                replacements[str(value)] = MASK
        for name in URL_SETTINGS:
            value = config.get(name)
            masked = mask_url(value)
            if value and masked != value:
                replacements[str(value)] = str(masked)
        return cls(replacements)

    def add(self, secret: str) -> None:
        """Register a value learned at run time (an access token, say)."""
        if secret and len(secret) >= 4:
            self.replacements = sorted(
                [*self.replacements, (secret, MASK)], key=lambda item: -len(item[0])
            )

    def redact(self, text: str) -> str:
        for secret, replacement in self.replacements:
            if secret in text:
                text = text.replace(secret, replacement)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            redacted_exc = self.redact(text)
            if redacted_exc != text:
                record.exc_text = redacted_exc
        return True
