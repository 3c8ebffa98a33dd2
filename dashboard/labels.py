"""Display names for the product's codes: states, reasons, error classes, sources.

The glossary fixes the words (``pending``, ``sent``...) for code, UI and API alike; the Chinese UI shows
a Chinese name beside the state word, so an operator can match what they see with what the API returns.
Reasons and error classes are shown as words only (the code stays in the API and the CSV exports).

One place for these maps: the home page, the campaign report, the deliveries, template and user pages
all import from here, so a class or reason reads the same everywhere.
"""

from __future__ import annotations

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
# Campaign states (the campaign pages' badges and filters); ``missed`` is a run of a recurring campaign
# that never ran.
CAMPAIGN_STATE_LABELS = {
    "draft": _l("draft"),
    "scheduled": _l("scheduled"),
    "running": _l("running"),
    "paused": _l("paused"),
    "completed": _l("completed"),
    "cancelled": _l("cancelled"),
    "missed": _l("missed"),
}

# Error classes in words (dashboard/wechat/errors.py ErrorCategory, and the engine's "gave_up").
ERROR_CATEGORY_LABELS = {
    "token": _l("Access token refused"),
    "transient": _l("Temporary WeChat error"),
    "quota": _l("Daily quota used up"),
    "no_grant": _l("No subscription credit"),
    "recipient": _l("Invalid recipient"),
    "template": _l("Template invalid or removed"),
    "content": _l("Content breaks the rules"),
    "page": _l("Page not in the published mini-program"),
    "config": _l("Account or set-up problem"),
    "unknown": _l("Outcome unknown"),
    "other": _l("Other error"),
    "gave_up": _l("Given up after retries"),
}
# Why a delivery was skipped before WeChat was asked (the engine's and the campaign snapshot's reasons).
SKIP_REASON_LABELS = {
    "no_grant": _l("No credit left"),
    "budget": _l("Credit kept for transactional sends"),
    "invalid_value": _l("A value breaks its keyword rule"),
    "cancelled": _l("Campaign cancelled"),
    "frequency_cap": _l("Frequency cap reached"),
    # The channel's reasons (``dispatch.channels.choose``).
    "not_following": _l("Does not follow the Official Account"),
    "no_channel": _l("No credit, and does not follow the Official Account"),
    "no_oa_template": _l("No Official Account template given"),
}
# The channels a message may ask for and go out on (``models.delivery.Channel``).
CHANNEL_LABELS = {
    "mp_subscribe": _l("Subscribe message (mini-program)"),
    "oa_template": _l("Official Account template message"),
    "mp_subscribe_or_oa": _l("Subscribe message, else Official Account"),
}
# Why a delivery's outcome is unknown.
UNKNOWN_REASON_LABELS = {
    "unknown": _l("WeChat's answer was lost"),
    "lease_expired": _l("The worker was lost mid-send"),
}
# Where a grant event came from (the ledger's ``source``); GRANT_CREDIT_SOURCES names the first two.
GRANT_SOURCE_LABELS = {
    "client": _l("Mini-program report"),
    "popup_event": _l("Popup event"),
    "change_event": _l("Change event"),
    "send_result": _l("Send result"),
    "catalog": _l("Catalog"),
}
# Where the WeChat client found its access token (``TokenManager`` sources).
TOKEN_SOURCE_LABELS = {
    "memory": _l("this process's memory"),
    "database": _l("the database"),
    "redis": _l("Redis"),
    "wechat": _l("WeChat (fetched now)"),
}
ROLE_LABELS = {"admin": _l("Admin"), "marketer": _l("Marketer"), "viewer": _l("Viewer")}


def state_label(state: str) -> str:
    return str(STATE_LABELS.get(state, state))


def source_label(source: str) -> str:
    return str(SOURCE_LABELS.get(source, source))


def error_category_label(category: str | None) -> str:
    return str(ERROR_CATEGORY_LABELS.get(category or "other", ERROR_CATEGORY_LABELS["other"]))


def reason_label(state: str, reason: str | None) -> str:
    """Why a delivery is in its state, in words ("" when there is nothing to say)."""
    if not reason or state == "sent":
        return ""
    if state == "skipped" and reason in SKIP_REASON_LABELS:
        return str(SKIP_REASON_LABELS[reason])
    if state == "unknown":
        return str(UNKNOWN_REASON_LABELS.get(reason, UNKNOWN_REASON_LABELS["unknown"]))
    return error_category_label(reason if reason in ERROR_CATEGORY_LABELS else "other")


def errcode_label(errcode: int | None) -> str:
    """The error class of a WeChat errcode, in words ("" for no errcode or success)."""
    if not errcode:
        return ""
    from .wechat.errors import category_for

    return error_category_label(category_for(errcode).value)


def grant_source_label(source: str) -> str:
    return str(GRANT_SOURCE_LABELS.get(source, source))


def token_source_label(source: str | None) -> str:
    return str(TOKEN_SOURCE_LABELS.get(source or "", source or "—"))


def channel_label(channel: str | None) -> str:
    return str(CHANNEL_LABELS.get(channel or "mp_subscribe", channel or ""))


def role_label(role: str) -> str:
    return str(ROLE_LABELS.get(role, role))


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(
        state_label=state_label,
        source_label=source_label,
        error_category_label=error_category_label,
        reason_label=reason_label,
        errcode_label=errcode_label,
        grant_source_label=grant_source_label,
        token_source_label=token_source_label,
        role_label=role_label,
        channel_label=channel_label,
    )
