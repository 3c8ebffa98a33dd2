"""What both send paths say to WeChat and how they read what comes back.

The synchronous client (``client.py``, requests) and the bulk funnel (``bulk.py``, the keep-alive pool)
move bytes differently but must agree on everything else: the token source, the request body, and
above all what an answer means. A send whose answer one path calls ``unknown`` (credit spent, never
resent) and the other ``transient`` (credit released, retried) would spend credits or message users
twice depending on which path carried it. So both build the body here and hand what came back to
:func:`read_answer`, the one place that turns an answer into an :class:`~.errors.ErrorCategory`; the
dispatch engine's ``decide()`` turns that category into a delivery state and a ledger action.

What an answer can be (the three inputs of :func:`read_answer`):

* :class:`HttpReply` — a complete HTTP answer: a status and a body.
* :class:`NeverSent` — no request left: no connection could be made, or no access token could be had.
  WeChat cannot have acted on it, so trying again later cannot duplicate anything.
* :class:`LostAnswer` — the request left (or may have) and no complete answer came back.

How a status is read, and why (at most once matters more than anything: a send that may have been
processed is ``unknown`` and is never retried automatically):

* 2xx — the body decides. WeChat answers every call with a JSON object; ``errcode`` 0 (or none) is
  success, any other code is categorised by ``errors.CATEGORY_BY_CODE``. A body that is not a JSON
  object cannot tell whether the send happened: ``unknown``.
* 3xx and 4xx — ``config``. WeChat's API neither redirects nor answers 4xx to a request it processed;
  such an answer comes from a wrong ``WECHAT_API_BASE`` or from a proxy (403, 407) that refused the
  request before passing it on. Nothing was sent, so the credit is released and the row retried later
  (``decide()``), giving an admin time to fix the setting instead of burning a campaign's credits.
  Two 4xx are ``transient`` instead, since they say the request was refused for now: 408 (the server
  did not receive the whole request) and 429 (a rate limiter refused it).
* 5xx — ambiguous, hence ``unknown`` for a send. A gateway answers 502/504 after passing the request
  on, and 503 is not safe either: some proxies (Envoy) answer 503 when the upstream connection reset
  after the request was written. 500 may come from a handler that acted before failing. The only 5xx
  read as ``config`` are those whose definition is a refusal of the request's form, given before
  acting on it: 501 (method not implemented), 505 (HTTP version refused) and 511 (a captive portal
  wants a network login) — RFC 9110 §15.6 and RFC 6585 §6.
* An idempotent call (a read, a normal-mode token fetch) changes nothing at WeChat, so wherever a send
  would be ``unknown`` a read is ``transient``: asking again is harmless.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import ErrorCategory, WeChatError, WeChatUnknownOutcome, category_for, redact_query

SEND_PATH = "/cgi-bin/message/subscribe/send"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"

# 4xx that refuse the request for now rather than for what it is: the request was not handled.
_REFUSED_FOR_NOW = frozenset({408, 429})
# 5xx that refuse the request for its form, before any handler acts on it.
_REFUSED_BEFORE_HANDLING = frozenset({501, 505, 511})
# What stopped a request from leaving, when that says more than "try again": an admin must act, or the
# day's quota is spent. Any other reason (a lost token answer, a code we do not know) is transient.
_KEPT_WHEN_NEVER_SENT = frozenset(
    {ErrorCategory.CONFIG, ErrorCategory.QUOTA, ErrorCategory.TRANSIENT, ErrorCategory.TOKEN}
)


class TokenSource(Protocol):
    """Where business calls get their access token (see ``dashboard.wechat.token.TokenService``)."""

    def get_token(self) -> str:
        """A token that is valid as far as the source knows."""
        ...

    def invalidate(self, failed_token: str) -> None:
        """WeChat rejected ``failed_token`` as stale/invalid: replace it if it is still the current one."""
        ...


def build_send_body(
    touser: str,
    template_id: str,
    data: Mapping[str, str],
    page: str | None = None,
    miniprogram_state: str = "formal",
    lang: str = "zh_CN",
) -> dict[str, Any]:
    """The JSON body of ``subscribeMessage.send``.

    ``data`` is ``{key: value}`` and goes out as ``{key: {"value": value}}``. ``miniprogram_state`` and
    ``lang`` are always sent, since WeChat's docs mark them required.
    """
    body: dict[str, Any] = {
        "touser": touser,
        "template_id": template_id,
        "data": {key: {"value": str(value)} for key, value in data.items()},
        "miniprogram_state": miniprogram_state,
        "lang": lang,
    }
    if page:
        body["page"] = page
    return body


def encode_json(body: Any) -> bytes:
    """UTF-8 JSON without ``\\u`` escapes: WeChat shows escaped Chinese literally on some APIs."""
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def scrubber(*secrets: str | None) -> Callable[[str], str]:
    """A function that removes query secrets (token, AppSecret, login code) and each of ``secrets`` from
    a text (the bulk funnel carries two accounts' requests, so it knows both AppSecrets)."""
    known = [secret for secret in secrets if secret]

    def scrub(text: str) -> str:
        text = redact_query(text)
        for secret in known:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    return scrub


# -- what came back ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpReply:
    """A complete HTTP answer."""

    status: int
    body: bytes


@dataclass(frozen=True)
class NeverSent:
    """The request did not leave: ``because`` is the token source's error when that is why."""

    detail: str
    because: WeChatError | None = None


@dataclass(frozen=True)
class LostAnswer:
    """The request left (or may have), and no complete answer came back."""

    detail: str


Answer = HttpReply | NeverSent | LostAnswer


@dataclass(frozen=True)
class Verdict:
    """What an answer means. ``category`` None: WeChat accepted the call, and ``reply`` is its JSON."""

    category: ErrorCategory | None
    errcode: int | None = None
    errmsg: str = ""
    reply: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.category is None

    @property
    def msgid(self) -> str | None:
        msgid = self.reply.get("msgid")
        return None if msgid is None else str(msgid)

    def error(self) -> WeChatError:
        """The failure as an exception (``WeChatUnknownOutcome`` for ``unknown``)."""
        assert self.category is not None, "an accepted call is not an error"
        if self.category is ErrorCategory.UNKNOWN:
            return WeChatUnknownOutcome(self.errmsg)
        return WeChatError(self.errcode, self.errmsg, self.category)


def read_answer(
    answer: Answer,
    *,
    request: str,
    idempotent: bool,
    scrub: Callable[[str], str] = redact_query,
) -> Verdict:
    """What ``answer`` to ``request`` (e.g. ``"POST /cgi-bin/message/subscribe/send"``) means.

    ``idempotent``: whether the call may be asked again without effect (reads, normal-mode token
    fetches). Where a send would be ``unknown``, an idempotent call is ``transient``. The module's
    docstring says why each answer gets its category. ``scrub`` removes secrets from texts that
    WeChat or a transport wrote.
    """
    maybe_processed = ErrorCategory.TRANSIENT if idempotent else ErrorCategory.UNKNOWN
    if isinstance(answer, NeverSent):
        because = answer.because
        if because is not None and because.category in _KEPT_WHEN_NEVER_SENT:
            return Verdict(because.category, because.errcode, scrub(f"{answer.detail}: {because.errmsg}"))
        return Verdict(ErrorCategory.TRANSIENT, None, scrub(f"{answer.detail}; it was not sent"))
    if isinstance(answer, LostAnswer):
        tail = "asking again is safe" if idempotent else "it may have been processed"
        return Verdict(maybe_processed, None, scrub(f"{answer.detail} after {request} was sent; {tail}"))
    status = answer.status
    if not 200 <= status < 300:
        text = f"HTTP {status} from {request}"
        if status in _REFUSED_FOR_NOW:
            return Verdict(ErrorCategory.TRANSIENT, None, f"{text}: refused for now, not processed")
        if 300 <= status < 500 or status in _REFUSED_BEFORE_HANDLING:
            return Verdict(
                ErrorCategory.CONFIG,
                None,
                f"{text}: not WeChat's answer; check WECHAT_API_BASE and any proxy in between",
            )
        tail = "asking again is safe" if idempotent else "the request may have been processed"
        return Verdict(maybe_processed, None, f"{text}: {tail}")
    try:
        reply = json.loads(answer.body)
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        tail = "asking again is safe" if idempotent else "the request may have been processed"
        return Verdict(
            maybe_processed, None, f"{request} answered with something other than a JSON object; {tail}"
        )
    errcode = _errcode(reply.get("errcode", 0))
    if errcode == 0:
        return Verdict(None, 0, str(reply.get("errmsg") or "ok"), reply)
    return Verdict(category_for(errcode), errcode, scrub(str(reply.get("errmsg") or "")), reply)


def _errcode(raw: Any) -> int:
    """WeChat's errcode as an int; a code that is not a number is read as -1 (system error)."""
    if isinstance(raw, bool):
        return -1
    if isinstance(raw, int):
        return raw
    text = str(raw).strip()
    return int(text) if text.lstrip("-").isdigit() else -1
