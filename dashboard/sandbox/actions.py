"""What a simulated user does: log in, answer a subscribe prompt, turn a template off.

The JSON inspection API and the human page both call these functions, so the two can never disagree. Each
action updates the sandbox's own grant ledger, queues the event push WeChat would send, and calls the
reporting hook for Tongzhi's mini-program API.
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass
from typing import Any

import requests
from flask import current_app

from .delivery import Pusher
from .push import Event
from .state import LONG_TERM, SandboxState, SimUser

log = logging.getLogger(__name__)

ACCEPTING = ("accept", "acceptWithAudio", "acceptWithAlert")
STATUSES = (*ACCEPTING, "reject", "ban", "filter")


@dataclass
class Sandbox:
    """The running sandbox as the routes see it: state plus the push worker."""

    state: SandboxState
    pusher: Pusher
    oa_pusher: Pusher | None = None  # the linked Official Account's pushes (OA_PUSH_URL)


def get_sandbox() -> Sandbox:
    """The Sandbox of the current Flask app."""
    return current_app.extensions["sandbox"]


class PromptError(Exception):
    """``wx.requestSubscribeMessage`` would call ``fail`` with this errCode/errMsg."""

    def __init__(self, err_code: int, err_msg: str) -> None:
        super().__init__(err_msg)
        self.err_code = err_code
        self.err_msg = err_msg

    def to_json(self) -> dict[str, Any]:
        return {"errMsg": f"requestSubscribeMessage:fail {self.err_msg}", "errCode": self.err_code}


def mint_login_code(state: SandboxState, openid: str) -> str | None:
    """A fresh single-use ``wx.login`` code for ``openid`` (None for an unknown user)."""
    with state.lock:
        if openid not in state.users:
            return None
        code = secrets.token_hex(16)
        state.codes[code] = (openid, state.now() + float(state.config["CODE_TTL"]))
        return code


def redeem_login_code(state: SandboxState, code: str | None) -> SimUser | None:
    """Consume ``code``: the user it was minted for, or None when unknown, used or expired."""
    with state.lock:
        entry = state.codes.pop(code or "", None)
        if entry is None:
            return None
        openid, expires_at = entry
        if state.now() >= expires_at:
            return None
        return state.users.get(openid)


def answer_prompt(sb: Sandbox, openid: str, answers: dict[str, str], scene: int = 0) -> dict[str, str]:
    """The user answers a subscribe popup; returns the exact ``wx.requestSubscribeMessage`` success object.

    accept (or acceptWithAudio/acceptWithAlert) adds one credit to a one-time template and switches a
    long-term one on; reject switches a long-term one off and leaves one-time credits alone; ban/filter
    change nothing. Pushes ``subscribe_msg_popup_event`` with the accept/reject items.

    :raise KeyError: unknown openid.
    :raise PromptError: what the mini-program's ``fail`` callback would get (empty list, unknown id,
        mixed types, too many ids).
    :raise ValueError: a status the simulation does not know.
    """
    state = sb.state
    with state.lock:
        if openid not in state.users:
            raise KeyError(openid)
        if not answers:
            raise PromptError(10001, "TmplIds can't be empty")
        if len(answers) > int(state.config["PROMPT_MAX_TEMPLATES"]):
            raise PromptError(20003, "Templates count out of max bounds")
        templates = [state.private.get(tid) for tid in answers]
        if any(t is None for t in templates):
            raise PromptError(20001, "No template data return, verify the template id exist")
        if len({t.type for t in templates if t is not None}) > 1:
            raise PromptError(20002, "Templates type must be same")
        bad = [s for s in answers.values() if s not in STATUSES]
        if bad:
            raise ValueError(f"unknown status {bad[0]!r}; use one of {', '.join(STATUSES)}")
        now = state.now()
        items: list[dict[str, str]] = []
        for tid, status in answers.items():
            template = state.private[tid]
            entry = state.grant(openid, tid)
            if status in ACCEPTING:
                if template.type == LONG_TERM:
                    entry.active = True
                else:
                    entry.credits += 1
                entry.accepts += 1
            elif status == "reject" and template.type == LONG_TERM:
                entry.active = False
            entry.updated_at = now
            if status in ACCEPTING or status == "reject":
                word = "accept" if status in ACCEPTING else "reject"
                items.append({"TemplateId": tid, "SubscribeStatusString": word, "PopupScene": str(scene)})
    result = {"errMsg": "requestSubscribeMessage:ok", **answers}
    if items:
        sb.pusher.submit(Event("subscribe_msg_popup_event", openid, int(now), items))
    report_prompt_result(sb, openid, result)
    return result


def turn_off(sb: Sandbox, openid: str, template_id: str) -> None:
    """The user turns a template off in settings: credits to zero, long-term off, push a change event.

    :raise KeyError: unknown openid or template.
    """
    state = sb.state
    with state.lock:
        if openid not in state.users:
            raise KeyError(openid)
        if template_id not in state.private:
            raise KeyError(template_id)
        entry = state.grant(openid, template_id)
        entry.credits = 0
        entry.active = False
        entry.updated_at = now = state.now()
    item = {"TemplateId": template_id, "SubscribeStatusString": "reject"}
    sb.pusher.submit(Event("subscribe_msg_change_event", openid, int(now), [item]))


def report_prompt_result(sb: Sandbox, openid: str, result: dict[str, str]) -> None:
    """Hook: tell Tongzhi's mini-program API (MP_API_BASE) what the front end got from the prompt.

    A no-op while MP_API_BASE is unset. Otherwise it does what the mini-program would: log the user in
    (``POST {MP_API_BASE}/session`` with a wx.login code minted here; the token is kept per user and
    renewed on 401), then forward the success object to ``POST {MP_API_BASE}/grants`` with an
    Idempotency-Key. MP_API_BASE is the API's base URL, e.g. ``http://127.0.0.1:5000/api/mp``.
    Only plain HTTP with ``requests``: the sandbox knows Tongzhi's contract, never its code. A failure
    is logged and never raised: the user's answer stands in the sandbox either way.
    """
    base = str(sb.state.config.get("MP_API_BASE") or "").rstrip("/")
    if not base:
        return
    key = secrets.token_hex(16)
    timeout = float(sb.state.config.get("PUSH_TIMEOUT", 5.0))
    try:
        for attempt in (1, 2):
            token = _mp_token(sb, base, openid, renew=attempt == 2)
            if token is None:
                return
            response = requests.post(
                f"{base}/grants",
                json=result,
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
                timeout=timeout,
            )
            if response.status_code != 401:
                break
        if response.status_code != 200:
            log.warning("reporting a prompt result to %s failed: HTTP %s", base, response.status_code)
    except requests.RequestException as exc:
        log.warning("reporting a prompt result to %s failed: %s", base, type(exc).__name__)


_mp_tokens: dict[tuple[str, str], str] = {}
_mp_tokens_lock = threading.Lock()


def _mp_token(sb: Sandbox, base: str, openid: str, renew: bool = False) -> str | None:
    """A session token of Tongzhi's API for ``openid``, logging in when there is none (or ``renew``)."""
    with _mp_tokens_lock:
        token = None if renew else _mp_tokens.get((base, openid))
    if token:
        return token
    code = mint_login_code(sb.state, openid)
    if code is None:
        return None
    response = requests.post(
        f"{base}/session", json={"code": code}, timeout=float(sb.state.config.get("PUSH_TIMEOUT", 5.0))
    )
    if response.status_code != 200:
        log.warning("logging %s in at %s failed: HTTP %s", openid, base, response.status_code)
        return None
    token = response.json().get("token")
    with _mp_tokens_lock:
        _mp_tokens[(base, openid)] = token
    return token


def credits_view(
    state: SandboxState, openid: str | None = None, template_id: str | None = None
) -> list[dict[str, Any]]:
    """Ledger rows for ``GET /sandbox/api/credits``; deleted templates are shown with type None."""
    with state.lock:
        rows = []
        for (oid, tid), entry in state.ledger.items():
            if (openid and oid != openid) or (template_id and tid != template_id):
                continue
            template = state.private.get(tid)
            rows.append(
                {
                    "openid": oid,
                    "template_id": tid,
                    "type": template.type if template else None,
                    "credits": entry.credits,
                    "active": entry.active,
                    "accepts": entry.accepts,
                    "updated_at": entry.updated_at,
                }
            )
        return rows
