"""The WeChat HTTP API client: every request Tongzhi makes to WeChat goes through ``_request``.

One funnel means one place for the things that must never vary between calls:

* URLs are built from ``api_base`` (``WECHAT_API_BASE``), so the sandbox and WeChat are interchangeable.
* Separate connect and read timeouts. A POST is never retried by the transport once it was sent: a
  timed-out ``subscribe/send`` may still have been delivered (duplicates were reported with SDKs that
  retried automatically), so the adapter is mounted with ``max_retries=0``.
* What an answer means (status, body, lost answer, no connection) is decided by
  :func:`~dashboard.wechat.protocol.read_answer`, the same function the bulk funnel uses. Failures
  become :class:`~dashboard.wechat.errors.WeChatError` with that category; an answer lost after a
  non-idempotent request was sent is :class:`~dashboard.wechat.errors.WeChatUnknownOutcome`.
* The URL of a business call carries ``access_token=`` (and jscode2session carries the AppSecret), so
  neither the URL nor a ``requests`` exception text is ever logged or raised as is.

Business calls take their access token from a :class:`~dashboard.wechat.protocol.TokenSource` (the
shared token service in ``dashboard.wechat.token``) and, on 40001/40014/42001, invalidate that exact
token and retry once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from .bulk import BulkSender
from .errors import ErrorCategory, WeChatError, WeChatNotConfigured
from .protocol import (
    JSON_CONTENT_TYPE,
    SEND_PATH,
    HttpReply,
    LostAnswer,
    NeverSent,
    TokenSource,
    Verdict,
    build_send_body,
    encode_json,
    read_answer,
    scrubber,
)

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.weixin.qq.com"
DEFAULT_CONNECT_TIMEOUT = 3.05  # a little over a multiple of 3 s, the TCP retransmission window
DEFAULT_READ_TIMEOUT = 10.0

# Replies to addtemplate/deltemplate that mean "I could not read your body": try the other encoding.
_ENCODING_REJECTED = frozenset({44002, 47001, 40097, 200020})


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
        # Which body encoding addtemplate accepted last (docs/wechat-rules.md, "Templates"); form first.
        self._newtmpl_encoding = "form"
        self._scrub = scrubber(self._secret)

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

    def bulk_sender(self, concurrency: int, *, also_for: WeChatClient | None = None) -> BulkSender:
        """A :class:`~dashboard.wechat.bulk.BulkSender` for this account, sharing its token source.

        ``also_for``: another account whose requests go through the same funnel (the linked Official
        Account): its AppSecret is scrubbed from every text the funnel reports, like this one's."""
        if self.tokens is None:
            raise WeChatNotConfigured("No access-token source is configured for this WeChat client.")
        return BulkSender(
            self.api_base,
            self.tokens,
            concurrency=concurrency,
            connect_timeout=self.timeout[0],
            read_timeout=self.timeout[1],
            secret=self._secret,
            also_scrub=(also_for._secret,) if also_for is not None else (),
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

        The body encoding is disputed (docs/wechat-rules.md, "Templates"): form encoding with repeated ``kidList`` keys is
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
        duplicate a send. When no token can be had, the request never leaves: its verdict is
        :class:`~dashboard.wechat.protocol.NeverSent`, never ``unknown`` (even when the token call's
        own answer was lost).
        """
        if self.tokens is None:
            raise WeChatNotConfigured("No access-token source is configured for this WeChat client.")
        request = f"{method} {path}"

        def attempt(token: str) -> dict[str, Any]:
            return self._request(
                method,
                path,
                params={**(params or {}), "access_token": token},
                json_body=json_body,
                form_body=form_body,
                idempotent=idempotent,
            )

        token = self._token(request)
        try:
            return attempt(token)
        except WeChatError as error:
            if error.category is not ErrorCategory.TOKEN:
                raise
            log.info("WeChat %s: access token rejected (errcode %s); refreshing once", path, error.errcode)
            fresh = self._token(request, invalidate=token)
            if fresh == token:
                raise  # no newer token to be had; retrying would fail the same way
        return attempt(fresh)

    def _token(self, request: str, invalidate: str | None = None) -> str:
        """The current access token (after invalidating ``invalidate``); a failure means nothing was sent."""
        assert self.tokens is not None
        try:
            if invalidate is not None:
                self.tokens.invalidate(invalidate)
            return self.tokens.get_token()
        except WeChatError as error:
            verdict = read_answer(
                NeverSent(f"no access token for {request}", because=error),
                request=request,
                idempotent=True,
                scrub=self._scrub,
            )
            raise verdict.error() from None

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
        that may come after WeChat acted (lost, 5xx, unreadable) raises :class:`WeChatUnknownOutcome`.
        """
        url = self.api_base + path
        request = f"{method} {path}"
        headers: dict[str, str] = {}
        data: bytes | Sequence[tuple[str, str]] | None = None
        if json_body is not None:
            data = encode_json(json_body)
            headers["Content-Type"] = JSON_CONTENT_TYPE
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
            answer: HttpReply | NeverSent | LostAnswer = self._no_answer(exc, started)
        else:
            with response:
                answer = HttpReply(response.status_code, response.content)
        verdict = read_answer(answer, request=request, idempotent=idempotent, scrub=self._scrub)
        self._log(request, verdict, (time.monotonic() - started) * 1000)
        if not verdict.ok:
            raise verdict.error()
        return dict(verdict.reply)

    def _no_answer(self, exc: requests.RequestException, started: float) -> NeverSent | LostAnswer:
        elapsed_ms = (time.monotonic() - started) * 1000
        # Only the exception type and a scrubbed text: requests puts the full URL in its messages.
        detail = f"{type(exc).__name__} after {elapsed_ms:.0f} ms ({self._scrub(str(exc))})"
        if _failed_before_sending(exc):
            return NeverSent(detail)
        return LostAnswer(detail)

    @staticmethod
    def _log(request: str, verdict: Verdict, elapsed_ms: float) -> None:
        """One line per call; ``errmsg`` is scrubbed of secrets by ``read_answer``."""
        if verdict.ok:
            log.debug("WeChat %s: ok in %.0f ms", request, elapsed_ms)
        elif verdict.category is ErrorCategory.UNKNOWN:
            log.warning("WeChat %s: %s; outcome unknown", request, verdict.errmsg)
        elif verdict.errcode is not None:
            rid = WeChatError(verdict.errcode, verdict.errmsg).rid
            log.info(
                "WeChat %s: errcode %s (%s) rid %s in %.0f ms",
                request,
                verdict.errcode,
                verdict.category,
                rid,
                elapsed_ms,
            )
        else:
            log.info("WeChat %s: %s (%s)", request, verdict.errmsg, verdict.category)


def _failed_before_sending(exc: requests.RequestException) -> bool:
    """True when the connection was never established, so WeChat cannot have seen the request."""
    if isinstance(
        exc,
        (
            requests.ConnectTimeout,
            requests.exceptions.SSLError,
            requests.exceptions.InvalidURL,
            # urllib3 raises it only while the connection to the proxy (or the CONNECT tunnel through
            # it) is not yet made, e.g. a proxy answering CONNECT with 407: nothing was sent through it.
            requests.exceptions.ProxyError,
        ),
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
