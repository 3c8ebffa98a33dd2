"""The WeChat HTTP API client: every request Tongzhi makes to WeChat goes through ``_request``.

One funnel means one place for the things that must never vary between calls:

* URLs are built from ``api_base`` (``WECHAT_API_BASE``), so the sandbox and WeChat are interchangeable.
* Separate connect and read timeouts. A POST is never retried by the transport once it was sent: a
  timed-out ``subscribe/send`` may still have been delivered (duplicates were reported with SDKs that
  retried automatically), so the adapter is mounted with ``max_retries=0``.
* Failures become :class:`~dashboard.wechat.errors.WeChatError` with a category. A connection that
  could not be opened is ``transient``; an answer lost after a non-idempotent request was sent is
  :class:`~dashboard.wechat.errors.WeChatUnknownOutcome`.
* The URL of a business call carries ``access_token=`` (and jscode2session carries the AppSecret), so
  neither the URL nor a ``requests`` exception text is ever logged or raised as is.

Business calls take their access token from a :class:`TokenSource` (the shared token service in
``dashboard.wechat.token``) and, on 40001/40014/42001, invalidate that exact token and retry once.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from .errors import ErrorCategory, WeChatError, WeChatNotConfigured, WeChatUnknownOutcome, redact_query

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.weixin.qq.com"
DEFAULT_CONNECT_TIMEOUT = 3.05  # a little over a multiple of 3 s, the TCP retransmission window
DEFAULT_READ_TIMEOUT = 10.0

SEND_PATH = "/cgi-bin/message/subscribe/send"
# Replies to addtemplate/deltemplate that mean "I could not read your body": try the other encoding.
_ENCODING_REJECTED = frozenset({44002, 47001, 40097, 200020})


class TokenSource(Protocol):
    """Where business calls get their access token (see ``dashboard.wechat.token.TokenService``)."""

    def get_token(self) -> str:
        """A token that is valid as far as the source knows."""
        ...

    def invalidate(self, failed_token: str) -> None:
        """WeChat rejected ``failed_token`` as stale/invalid: replace it if it is still the current one."""
        ...


@dataclass(frozen=True)
class StableToken:
    """A reply of ``/cgi-bin/stable_token``. The value is a secret: it is kept out of ``repr``."""

    access_token: str = field(repr=False)
    expires_in: int


@dataclass(frozen=True)
class LoginSession:
    """A reply of ``jscode2session``. ``session_key`` stays on the server and out of ``repr``."""

    openid: str
    session_key: str = field(repr=False)
    unionid: str | None = None


class WeChatClient:
    """A client for one mini program (AppID + AppSecret). Thread-safe; close it (or use ``with``).

    :param tokens: the token source for business calls; may be set later through the attribute.
    :param session: an injected ``requests.Session`` (tests); the client then does not mount its adapter.
    """

    def __init__(
        self,
        appid: str | None,
        secret: str | None,
        api_base: str = DEFAULT_API_BASE,
        *,
        tokens: TokenSource | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        session: requests.Session | None = None,
        pool_size: int = 16,
    ) -> None:
        self.appid = appid or ""
        self._secret = secret or ""
        self.api_base = api_base.rstrip("/")
        self.tokens = tokens
        self.timeout = (float(connect_timeout), float(read_timeout))
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(max_retries=0, pool_connections=1, pool_maxsize=pool_size)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self.session = session
        # Which body encoding addtemplate accepted last (facts §1.5: UNCERTAIN); form first.
        self._newtmpl_encoding = "form"

    def __repr__(self) -> str:
        return f"WeChatClient(appid={self.appid!r}, api_base={self.api_base!r})"

    def __enter__(self) -> WeChatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections (and the token source's, when it has any)."""
        self.session.close()
        close = getattr(self.tokens, "close", None)
        if callable(close):
            close()

    @property
    def configured(self) -> bool:
        return bool(self.appid and self._secret)

    def bulk_sender(self, concurrency: int):
        """A :class:`~dashboard.wechat.bulk.BulkSender` for this account, sharing its token source."""
        from .bulk import BulkSender

        if self.tokens is None:
            raise WeChatNotConfigured("No access-token source is configured for this WeChat client.")
        return BulkSender(
            self.api_base,
            self.tokens,
            concurrency=concurrency,
            connect_timeout=self.timeout[0],
            read_timeout=self.timeout[1],
            secret=self._secret,
        )

    # -- tokens and login ----------------------------------------------------------------------------

    def stable_token(self, force_refresh: bool = False) -> StableToken:
        """``POST /cgi-bin/stable_token``: the account's stable access token and its remaining lifetime.

        Normal mode returns the still-valid token; ``force_refresh`` rotates it (20 a day, 30 s apart):
        only the token service should ask for that.

        :raise WeChatError: e.g. 40125 (config) for a wrong AppSecret, 45009 (quota).
        """
        self._require_credentials()
        body = {
            "grant_type": "client_credential",
            "appid": self.appid,
            "secret": self._secret,
            "force_refresh": bool(force_refresh),
        }
        # A lost answer to a normal-mode call changes nothing at WeChat, so it is safe to call again.
        reply = self._request("POST", "/cgi-bin/stable_token", json_body=body, idempotent=not force_refresh)
        token = reply.get("access_token")
        if not isinstance(token, str) or not token:
            raise WeChatError(None, "stable_token replied without an access_token", ErrorCategory.TRANSIENT)
        return StableToken(token, int(reply.get("expires_in") or 0))

    def code2session(self, js_code: str) -> LoginSession:
        """``GET /sns/jscode2session``: exchange a ``wx.login`` code (single use, 5 minutes) for the openid.

        :raise WeChatError: 40029 (other) for an invalid or used code.
        """
        self._require_credentials()
        params = {
            "appid": self.appid,
            "secret": self._secret,
            "js_code": js_code,
            "grant_type": "authorization_code",
        }
        # The code is single-use: a lost answer cannot be replayed, so it counts as not idempotent.
        reply = self._request("GET", "/sns/jscode2session", params=params, idempotent=False)
        return LoginSession(
            openid=str(reply.get("openid") or ""),
            session_key=str(reply.get("session_key") or ""),
            unionid=reply.get("unionid") or None,
        )

    # -- sending -------------------------------------------------------------------------------------

    def send_subscribe_message(
        self,
        touser: str,
        template_id: str,
        data: Mapping[str, str],
        page: str | None = None,
        miniprogram_state: str = "formal",
        lang: str = "zh_CN",
    ) -> str:
        """``subscribeMessage.send``: deliver one message and return WeChat's ``msgid`` as a string.

        ``data`` is ``{key: value}`` (``{"thing1": "已发货"}``); it is wrapped as ``{key: {"value": v}}``.
        ``miniprogram_state`` and ``lang`` are always sent, since the docs mark them required.

        :raise WeChatError: categorised (no_grant 43101, content 47003, transient 43108 …).
        :raise WeChatUnknownOutcome: the request went out but its answer was lost; it may have been delivered.
        """
        body = build_send_body(touser, template_id, data, page, miniprogram_state, lang)
        reply = self._call("POST", SEND_PATH, json_body=body, idempotent=False)
        msgid = reply.get("msgid")
        return "" if msgid is None else str(msgid)

    # -- template management (/wxaapi/newtmpl/*) ------------------------------------------------------

    def get_category(self) -> list[dict[str, Any]]:
        """The account's categories: ``[{"id", "name"}]``."""
        return list(self._call("GET", "/wxaapi/newtmpl/getcategory").get("data") or [])

    def get_pub_template_titles(
        self, ids: Iterable[int | str] | str, start: int = 0, limit: int = 30
    ) -> dict[str, Any]:
        """Public titles of categories ``ids``: ``{"count": n, "data": [{tid, title, type, categoryId}]}``.

        ``limit`` is at most 30; ``start`` is 0-based.
        """
        joined = ids if isinstance(ids, str) else ",".join(str(i) for i in ids)
        params = {"ids": joined, "start": int(start), "limit": int(limit)}
        reply = self._call("GET", "/wxaapi/newtmpl/getpubtemplatetitles", params=params)
        return {"count": int(reply.get("count") or 0), "data": list(reply.get("data") or [])}

    def get_pub_template_keywords(self, tid: int | str) -> list[dict[str, Any]]:
        """Keywords of public title ``tid``: ``[{kid, name, example, rule}]``."""
        reply = self._call("GET", "/wxaapi/newtmpl/getpubtemplatekeywords", params={"tid": tid})
        return list(reply.get("data") or [])

    def add_template(self, tid: int | str, kid_list: Sequence[int], scene_desc: str = "") -> str:
        """Add public title ``tid`` with keywords ``kid_list`` (2-5, in content order); returns ``priTmplId``.

        The body encoding is UNCERTAIN (facts §1.5): form encoding with repeated ``kidList`` keys is
        tried first and JSON second when WeChat answers that it could not read the body; the encoding
        that worked is remembered for later calls.
        """
        form: list[tuple[str, str]] = [("tid", str(tid)), *(("kidList", str(int(k))) for k in kid_list)]
        if scene_desc:
            form.append(("sceneDesc", scene_desc))
        as_json = {"tid": str(tid), "kidList": [int(k) for k in kid_list], "sceneDesc": scene_desc}
        reply = self._newtmpl_post("/wxaapi/newtmpl/addtemplate", form, as_json)
        return str(reply.get("priTmplId") or "")

    def delete_template(self, pri_tmpl_id: str) -> None:
        """Delete the account's template ``pri_tmpl_id`` (same encoding rule as :meth:`add_template`)."""
        self._newtmpl_post(
            "/wxaapi/newtmpl/deltemplate", [("priTmplId", pri_tmpl_id)], {"priTmplId": pri_tmpl_id}
        )

    def get_templates(self) -> list[dict[str, Any]]:
        """The account's templates: ``[{priTmplId, title, content, example, type, keywordEnumValueList?}]``."""
        return list(self._call("GET", "/wxaapi/newtmpl/gettemplate").get("data") or [])

    def get_api_quota(self, cgi_path: str) -> dict[str, Any]:
        """getApiQuota for ``cgi_path``: the reply minus errcode/errmsg (``{"quota": {daily_limit, used,
        remain}, …}``; newer replies may add rate-limit fields, names UNCERTAIN)."""
        reply = self._call("POST", "/cgi-bin/openapi/quota/get", json_body={"cgi_path": cgi_path})
        return {k: v for k, v in reply.items() if k not in ("errcode", "errmsg")}

    # -- plumbing ------------------------------------------------------------------------------------

    def _newtmpl_post(
        self, path: str, form: list[tuple[str, str]], as_json: dict[str, Any]
    ) -> dict[str, Any]:
        order = ["form", "json"] if self._newtmpl_encoding == "form" else ["json", "form"]
        for attempt, encoding in enumerate(order):
            try:
                if encoding == "form":
                    reply = self._call("POST", path, form_body=form, idempotent=False)
                else:
                    reply = self._call("POST", path, json_body=as_json, idempotent=False)
            except WeChatError as error:
                if attempt == 0 and error.errcode in _ENCODING_REJECTED:
                    log.warning(
                        "WeChat %s rejected the %s body (errcode %s); trying the other",
                        path,
                        encoding,
                        error.errcode,
                    )
                    continue
                raise
            self._newtmpl_encoding = encoding
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    def _require_credentials(self) -> None:
        if not self.configured:
            raise WeChatNotConfigured()

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        form_body: Sequence[tuple[str, str]] | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """A business call: add the access token; on a token error replace it and retry exactly once.

        A token error means WeChat refused the request before acting on it, so the retry cannot
        duplicate a send.
        """
        if self.tokens is None:
            raise WeChatNotConfigured("No access-token source is configured for this WeChat client.")

        def attempt(token: str) -> dict[str, Any]:
            return self._request(
                method,
                path,
                params={**(params or {}), "access_token": token},
                json_body=json_body,
                form_body=form_body,
                idempotent=idempotent,
            )

        token = self.tokens.get_token()
        try:
            return attempt(token)
        except WeChatError as error:
            if error.category is not ErrorCategory.TOKEN:
                raise
            log.info("WeChat %s: access token rejected (errcode %s); refreshing once", path, error.errcode)
            self.tokens.invalidate(token)
            fresh = self.tokens.get_token()
            if fresh == token:
                raise  # no newer token to be had; retrying would fail the same way
        return attempt(fresh)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        form_body: Sequence[tuple[str, str]] | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """The only place that calls ``requests``. Returns WeChat's JSON reply when errcode is 0.

        ``idempotent`` says whether a lost answer is harmless to ask again for; when False, an answer
        lost after sending (read timeout, dropped connection, HTTP 5xx, unreadable body) raises
        :class:`WeChatUnknownOutcome` instead of a transient error.
        """
        url = self.api_base + path
        headers: dict[str, str] = {}
        data: bytes | Sequence[tuple[str, str]] | None = None
        if json_body is not None:
            # UTF-8 without \u escapes: WeChat shows escaped Chinese literally on some APIs (facts §1.1).
            data = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json; charset=utf-8"
        elif form_body is not None:
            data = list(form_body)
        started = time.monotonic()
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                data=data,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise self._transport_error(method, path, exc, idempotent, started) from None
        with response:
            elapsed_ms = (time.monotonic() - started) * 1000
            reply = self._decode(method, path, response, idempotent)
        error = error_from_reply(reply, self._scrub)
        if error is not None:
            log.info(
                "WeChat %s %s: errcode %s (%s) rid %s in %.0f ms",
                method,
                path,
                error.errcode,
                error.category.value,
                error.rid,
                elapsed_ms,
            )
            raise error
        log.debug("WeChat %s %s: ok in %.0f ms", method, path, elapsed_ms)
        return reply

    def _decode(
        self, method: str, path: str, response: requests.Response, idempotent: bool
    ) -> dict[str, Any]:
        status = response.status_code
        if status != 200:
            text = f"HTTP {status} from {method} {path}"
            if status >= 500 or status == 429:
                if idempotent or status == 429:
                    raise WeChatError(None, text, ErrorCategory.TRANSIENT)
                raise WeChatUnknownOutcome(f"{text}: the request may have been processed")
            # 3xx/4xx: the base URL or a proxy is wrong, not WeChat's verdict on the request.
            raise WeChatError(None, f"{text}; check WECHAT_API_BASE", ErrorCategory.CONFIG)
        try:
            reply = response.json()
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            text = f"{method} {path} answered with something other than a JSON object"
            if idempotent:
                raise WeChatError(None, text, ErrorCategory.TRANSIENT)
            raise WeChatUnknownOutcome(f"{text}: the request may have been processed")
        return reply

    def _transport_error(
        self, method: str, path: str, exc: requests.RequestException, idempotent: bool, started: float
    ) -> WeChatError:
        elapsed_ms = (time.monotonic() - started) * 1000
        # Only the exception type and a scrubbed text: requests puts the full URL in its messages.
        description = f"{type(exc).__name__} on {method} {path} after {elapsed_ms:.0f} ms"
        detail = self._scrub(str(exc))
        if _failed_before_sending(exc):
            log.info("WeChat %s: could not connect (%s)", path, type(exc).__name__)
            return WeChatError(None, f"{description}: {detail}", ErrorCategory.TRANSIENT)
        if idempotent:
            log.info("WeChat %s: no answer (%s); safe to retry", path, type(exc).__name__)
            return WeChatError(None, f"{description}: {detail}", ErrorCategory.TRANSIENT)
        log.warning("WeChat %s: sent but no answer (%s); outcome unknown", path, type(exc).__name__)
        return WeChatUnknownOutcome(f"{description}: the request was sent, its outcome is unknown ({detail})")

    def _scrub(self, text: str) -> str:
        text = redact_query(text)
        if self._secret and self._secret in text:
            text = text.replace(self._secret, "***")
        return text


def build_send_body(
    touser: str,
    template_id: str,
    data: Mapping[str, str],
    page: str | None = None,
    miniprogram_state: str = "formal",
    lang: str = "zh_CN",
) -> dict[str, Any]:
    """The JSON body of ``subscribeMessage.send`` (shared by this client and the bulk sender)."""
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


def error_from_reply(reply: Mapping[str, Any], scrub: Callable[[str], str]) -> WeChatError | None:
    """WeChat's verdict in a JSON reply: None for errcode 0, else the categorised error."""
    errcode = reply.get("errcode", 0)
    if not isinstance(errcode, int):
        errcode = int(errcode) if str(errcode).lstrip("-").isdigit() else -1
    if errcode == 0:
        return None
    return WeChatError(errcode, scrub(str(reply.get("errmsg") or "")))


def _failed_before_sending(exc: requests.RequestException) -> bool:
    """True when the connection was never established, so WeChat cannot have seen the request."""
    if isinstance(
        exc, (requests.ConnectTimeout, requests.exceptions.SSLError, requests.exceptions.InvalidURL)
    ):
        return True
    if isinstance(exc, requests.ConnectionError):
        reason: object = exc.args[0] if exc.args else None
        if isinstance(reason, urllib3.exceptions.MaxRetryError):
            reason = reason.reason
        # NewConnectionError (refused, unreachable; NameResolutionError is a subclass) happens in connect().
        return isinstance(
            reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)
        )
    return False
