"""Display names for the product's state words.

The glossary fixes the words (``pending``, ``sent``...) for code, UI and API alike; the Chinese UI shows
a Chinese name beside the word, so an operator can match what they see with what the API returns.
"""

from flask import Flask
from flask_babel import lazy_gettext as _l

STATE_LABELS = {
    "pending": _l("pending"),
    "sending": _l("sending"),
    "sent": _l("sent"),
    "failed": _l("failed"),
    "skipped": _l("skipped"),
    "unknown": _l("unknown"),
    "retry_wait": _l("retry_wait"),
}
SOURCE_LABELS = {"campaign": _l("campaign"), "api": _l("api"), "test": _l("test")}


def state_label(state: str) -> str:
    return str(STATE_LABELS.get(state, state))


def source_label(source: str) -> str:
    return str(SOURCE_LABELS.get(source, source))


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(state_label=state_label, source_label=source_label)
