"""``subscribe/send``: the order of checks, the grant ledger, faults, and the per-openid in-flight marker.

Check order (imitating WeChat): token → daily quota (45009) → injected -1 → touser (40003) → template_id
(40037) → page (41030) → miniprogram_state / lang → data values (47003) → grant (43101) → concurrency
(43108) → deliver. Every call that got past parsing is written to the message log.

Concurrency is real rather than random: each send increments ``state.in_flight[openid]`` for its whole
duration (including LATENCY_MS), so a second send to the same user that overlaps it answers 43108.
CONCURRENCY_WINDOW_MS additionally keeps a user "busy" that long after a delivered send.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from . import rules, tokens
from .errors import wx_error, wx_ok
from .state import LONG_TERM, MessageRecord, SandboxState

SEND_PATH = "/cgi-bin/message/subscribe/send"
MINIPROGRAM_STATES = ("developer", "trial", "formal")
LANGS = ("zh_CN", "en_US", "zh_HK", "zh_TW")


@dataclass
class SendOutcome:
    """Reply body, the log record, and whether to drop the connection instead of answering."""

    reply: dict[str, Any]
    record: MessageRecord | None
    drop: bool = False


HOLD_MAX_SECONDS = 60.0


def wait_while_held(state: SandboxState) -> None:
    """HOLD_SENDS: wait (without the lock) until the fault is set back to 0, at most HOLD_MAX_SECONDS."""
    deadline = time.monotonic() + HOLD_MAX_SECONDS
    while state.faults.HOLD_SENDS and time.monotonic() < deadline:
        time.sleep(0.02)


def sleep_latency(state: SandboxState) -> None:
    """Injected latency (LATENCY_MS); sleeps without holding the lock."""
    delay = state.faults.LATENCY_MS
    if delay > 0:
        time.sleep(delay / 1000)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _log(
    state: SandboxState, body: dict[str, Any], reply: dict[str, Any], msgid: int | None = None
) -> MessageRecord:
    return state.log_message(
        openid=str(body.get("touser") or ""),
        template_id=str(body.get("template_id") or ""),
        data=body.get("data"),
        page=_str_or_none(body.get("page")),
        miniprogram_state=_str_or_none(body.get("miniprogram_state")),
        lang=_str_or_none(body.get("lang")),
        errcode=reply["errcode"],
        errmsg=reply["errmsg"],
        msgid=msgid,
    )


def _validate(state: SandboxState, body: dict[str, Any]) -> dict[str, Any] | None:
    """The request-shape checks 40003 … 47003; None when the message itself is acceptable."""
    openid = body.get("touser")
    if not isinstance(openid, str) or openid not in state.users:
        return wx_error(40003)
    template = state.private.get(str(body.get("template_id") or ""))
    if template is None:
        return wx_error(40037)
    page = body.get("page")
    if page not in (None, ""):
        # Only the path counts; a query string (pages/order/detail?id=42) is the page's business.
        path = str(page).split("?", 1)[0].lstrip("/")
        if path not in state.config["PAGES"]:
            return wx_error(41030)
    mp_state = body.get("miniprogram_state")
    if mp_state is not None and mp_state not in MINIPROGRAM_STATES:
        return wx_error(47003, "argument invalid! invalid miniprogram_state")
    lang = body.get("lang")
    if lang is not None and lang not in LANGS:
        return wx_error(47003, "argument invalid! invalid lang")
    if not isinstance(body.get("data"), dict) or not body["data"]:
        return wx_error(47003, "argument invalid! data is empty")
    problem = rules.find_problem(template.keys(), body["data"], template.enum_values)
    if problem is not None:
        key, kind = problem
        text = "is empty" if kind == "empty" else "invalid"
        return wx_error(47003, f"argument invalid! data.{key}.value {text}")
    return None


def _has_grant(state: SandboxState, openid: str, template_id: str) -> bool:
    template = state.private[template_id]
    entry = state.ledger.get((openid, template_id))
    if entry is None:
        return False
    return entry.active if template.type == LONG_TERM else entry.credits > 0


def send(state: SandboxState, access_token: str | None, body: dict[str, Any]) -> SendOutcome:
    """Judge and (maybe) deliver one send. Never raises for bad input; see the module doc for order."""
    code = tokens.check_token(state, access_token)
    if code:
        reply = wx_error(code)
        return SendOutcome(reply, _log(state, body, reply))

    openid = str(body.get("touser") or "")
    with state.lock:
        state.api_calls[SEND_PATH] += 1
        quota = state.faults.QUOTA_AFTER
        if quota is not None and state.api_calls[SEND_PATH] > quota:
            # A refused call does not use up quota.
            state.api_calls[SEND_PATH] -= 1
            reply = wx_error(45009)
            return SendOutcome(reply, _log(state, body, reply))
        overlapping = state.in_flight[openid] > 0 or state.busy_until.get(openid, 0.0) > state.now()
        state.in_flight[openid] += 1
    try:
        sleep_latency(state)
        wait_while_held(state)
        with state.lock:
            if state.random.random() < state.faults.ERROR_RATE:
                reply = wx_error(-1)
                return SendOutcome(reply, _log(state, body, reply))
            reply = _validate(state, body)
            if reply is None and not _has_grant(state, openid, str(body["template_id"])):
                reply = wx_error(43101)
            if reply is None and overlapping:
                reply = wx_error(43108)
            if reply is not None:
                return SendOutcome(reply, _log(state, body, reply))
            return _deliver(state, body, openid)
    finally:
        with state.lock:
            state.in_flight[openid] -= 1
            if state.in_flight[openid] <= 0:
                del state.in_flight[openid]


def _deliver(state: SandboxState, body: dict[str, Any], openid: str) -> SendOutcome:
    """Spend the grant and log the delivery. Caller holds the lock."""
    template_id = str(body["template_id"])
    template = state.private[template_id]
    entry = state.grant(openid, template_id)
    if template.type != LONG_TERM:
        entry.credits -= 1
    entry.updated_at = state.now()
    window = state.faults.CONCURRENCY_WINDOW_MS
    if window > 0:
        state.busy_until[openid] = state.now() + window / 1000
    msgid = state.next_msgid()
    reply = wx_ok(msgid=msgid)
    record = _log(state, body, reply, msgid)
    # The "unknown outcome" fault: delivered and charged, but the caller never hears about it.
    if state.random.random() < state.faults.DROP_AFTER_READ_RATE:
        record.dropped = True
        return SendOutcome(reply, record, drop=True)
    return SendOutcome(reply, record)
