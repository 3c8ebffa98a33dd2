"""What went wrong when Tongzhi talked to WeChat, classified so callers know what to do next.

Every failure of :class:`dashboard.wechat.client.WeChatClient` is a :class:`WeChatError` with an
``errcode`` (WeChat's, or ``None`` when WeChat never answered), an ``errmsg`` and a
:class:`ErrorCategory`. The category table below is the contract with the sending code; each code, its official source and what
the sender does with it are in docs/wechat-rules.md, "Error codes". A code not in the table is ``other``.

Messages never carry the AppSecret or an access token: WeChat's own text is scrubbed of anything that
looks like ``access_token=…`` / ``secret=…`` before it is stored here (see :func:`redact_query`).
"""

from __future__ import annotations

import re
from enum import StrEnum


class ErrorCategory(StrEnum):
    """What a failure means for the caller."""

    TOKEN = "token"  # noqa: S105 - the access token is stale or invalid: refresh it, retry once
    TRANSIENT = "transient"  # not processed; safe to try again later with backoff
    QUOTA = "quota"  # the daily quota is spent: pause until the next day
    NO_GRANT = "no_grant"  # the user holds no subscription credit: never retry
    RECIPIENT = "recipient"  # the openid is invalid or belongs to another mini program
    TEMPLATE = "template"  # the template is invalid, deleted or banned
    CONTENT = "content"  # a keyword value breaks its rule, or contains sensitive words
    PAGE = "page"  # the page is not in the published mini program
    # AppID/AppSecret/IP whitelist/account state, or an HTTP 3xx/4xx that is not WeChat's (a wrong
    # WECHAT_API_BASE, a proxy's 403/407): an admin must act; the request was not processed
    CONFIG = "config"
    # the request may have been processed and nothing readable says how (a lost answer, a 5xx): it may
    # have been delivered, so it is never retried automatically (dashboard.wechat.protocol)
    UNKNOWN = "unknown"
    OTHER = "other"  # a code this table does not know


CATEGORY_BY_CODE: dict[int, ErrorCategory] = {
    40001: ErrorCategory.TOKEN,
    40014: ErrorCategory.TOKEN,
    42001: ErrorCategory.TOKEN,
    -1: ErrorCategory.TRANSIENT,
    43108: ErrorCategory.TRANSIENT,  # concurrent sends to one user: serialise per openid, retry later
    45011: ErrorCategory.TRANSIENT,  # per-minute limit
    45009: ErrorCategory.QUOTA,
    43101: ErrorCategory.NO_GRANT,
    40003: ErrorCategory.RECIPIENT,  # also the Official Account's: an openid it does not know
    43004: ErrorCategory.RECIPIENT,  # the Official Account's: the user does not follow it (any more)
    40037: ErrorCategory.TEMPLATE,
    43107: ErrorCategory.TEMPLATE,
    47003: ErrorCategory.CONTENT,
    45168: ErrorCategory.CONTENT,
    41030: ErrorCategory.PAGE,
    40165: ErrorCategory.PAGE,  # the Official Account's: miniprogram.pagepath not in the published version
    40002: ErrorCategory.CONFIG,  # bad grant_type: our bug, but nothing a retry fixes
    40013: ErrorCategory.CONFIG,
    40125: ErrorCategory.CONFIG,
    40164: ErrorCategory.CONFIG,
    40243: ErrorCategory.CONFIG,
    41002: ErrorCategory.CONFIG,
    41004: ErrorCategory.CONFIG,
    50004: ErrorCategory.CONFIG,
    50007: ErrorCategory.CONFIG,
    48001: ErrorCategory.CONFIG,  # the account may not call this API (an OA not verified, or not linked)
    # An admin must confirm the caller's IP in the console (docs/wechat-rules.md, "Error codes").
    89503: ErrorCategory.CONFIG,
    89506: ErrorCategory.CONFIG,
    89507: ErrorCategory.CONFIG,
}

RETRYABLE = frozenset({ErrorCategory.TOKEN, ErrorCategory.TRANSIENT, ErrorCategory.QUOTA})
PERMANENT = frozenset(
    {
        ErrorCategory.NO_GRANT,
        ErrorCategory.RECIPIENT,
        ErrorCategory.TEMPLATE,
        ErrorCategory.CONTENT,
        ErrorCategory.PAGE,
        ErrorCategory.CONFIG,
    }
)

_RID = re.compile(r"\brid:\s*([0-9A-Za-z-]+)")
# Query parameters whose values are secrets: the token on business APIs, the AppSecret and the
# single-use login code on jscode2session.
_SECRET_QUERY = re.compile(r"((?:access_token|secret|js_code)=)[^&\s'\"]*", re.IGNORECASE)


def category_for(errcode: int | None) -> ErrorCategory:
    """The category of a WeChat ``errcode``; ``other`` for codes the table does not know."""
    if errcode is None:
        return ErrorCategory.OTHER
    return CATEGORY_BY_CODE.get(errcode, ErrorCategory.OTHER)


def redact_query(text: str) -> str:
    """``text`` with the values of ``access_token=``, ``secret=`` and ``js_code=`` replaced by ``***``."""
    return _SECRET_QUERY.sub(r"\1***", text)


class WeChatError(Exception):
    """A WeChat API call failed.

    :param errcode: WeChat's errcode, or ``None`` when no WeChat reply was read (network, HTTP status).
    :param errmsg: WeChat's errmsg (or our description); secrets in query form are scrubbed.
    :param category: defaults to the table entry for ``errcode``.

    ``rid`` is WeChat's request id parsed from ``errmsg`` (quote it in support tickets), or ``None``.
    ``retryable``: trying again later may succeed (token, transient, quota).
    ``permanent``: the same request will fail again until someone changes data or settings.
    ``unknown`` and ``other`` are neither: a person (or reconciliation) must decide.
    """

    def __init__(self, errcode: int | None, errmsg: str, category: ErrorCategory | None = None) -> None:
        self.errcode = errcode
        self.errmsg = redact_query(errmsg or "")
        self.category = ErrorCategory(category) if category is not None else category_for(errcode)
        match = _RID.search(self.errmsg)
        self.rid: str | None = match.group(1) if match else None
        super().__init__(self.errcode, self.errmsg, self.category)

    @property
    def retryable(self) -> bool:
        return self.category in RETRYABLE

    @property
    def permanent(self) -> bool:
        return self.category in PERMANENT

    def __str__(self) -> str:
        code = "no errcode" if self.errcode is None else f"errcode {self.errcode}"
        return f"WeChat {code} ({self.category.value}): {self.errmsg}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.errcode!r}, {self.errmsg!r}, {self.category.value!r})"


class WeChatUnknownOutcome(WeChatError):
    """A non-idempotent request was sent and no answer says what became of it (read timeout, dropped
    connection, a 5xx, a body that is not JSON; ``dashboard.wechat.protocol.read_answer`` decides).

    WeChat may have acted on it (a send may have been delivered): never retry blindly, reconcile.
    """

    def __init__(self, errmsg: str) -> None:
        super().__init__(None, errmsg, ErrorCategory.UNKNOWN)


class WeChatNotConfigured(WeChatError):
    """WECHAT_APPID or WECHAT_SECRET is not set, so no call can be made."""

    def __init__(self, errmsg: str = "WECHAT_APPID and WECHAT_SECRET must both be set.") -> None:
        super().__init__(None, errmsg, ErrorCategory.CONFIG)
