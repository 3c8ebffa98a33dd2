"""The bulk send funnel: many send calls in flight from one asyncio loop.

The synchronous client (``client.py``) costs about a millisecond of CPU per call through requests;
a campaign needs hundreds of calls in flight at a fraction of that (docs/benchmarks.md). This module
builds the same request and reads the answer with the same function as the synchronous client
(``protocol.build_send_body``, ``protocol.read_answer``), takes tokens from the same shared token
service, and never retries a send whose request may have left. The connections are
``keepalive.KeepAlivePool``'s, which says whether a failed request can have reached WeChat.

One batch may mix accounts: a :class:`SendRequest` is the mini-program's ``subscribeMessage.send``
with the funnel's own token source; a :class:`JsonRequest` names its path, its body and its token
source (the linked Official Account's ``message/template/send`` with the OA's token). Each token source
is asked once per batch, and a token refusal is retried once with that source's fresh token.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote

from .errors import ErrorCategory, WeChatError
from .keepalive import AnswerLost, KeepAlivePool, NotSent
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


@dataclass(frozen=True)
class SendRequest:
    """A subscribe message (``subscribeMessage.send``), with the funnel's own token source."""

    key: Any  # the caller's handle (a delivery claim), returned with the outcome
    touser: str
    template_id: str
    data: dict[str, str]
    page: str | None = None
    miniprogram_state: str = "formal"
    lang: str = "zh_CN"

    path: ClassVar[str] = SEND_PATH
    tokens: ClassVar[TokenSource | None] = None

    def body(self) -> Mapping[str, Any]:
        return build_send_body(
            self.touser, self.template_id, self.data, self.page, self.miniprogram_state, self.lang
        )


@dataclass(frozen=True)
class JsonRequest:
    """Any send whose body is built by the caller: ``path`` on the same API base, with the access token of
    ``tokens`` (another account's, e.g. the Official Account's; None: the funnel's own)."""

    key: Any
    touser: str
    path: str
    payload: Mapping[str, Any]
    tokens: TokenSource | None = None

    def body(self) -> Mapping[str, Any]:
        return self.payload


BulkRequest = SendRequest | JsonRequest


@dataclass(frozen=True)
class SendOutcome:
    key: Any
    started_at: datetime
    finished_at: datetime
    msgid: str | None = None
    errcode: int | None = None
    errmsg: str = ""
    category: str = ""  # "" on success, else an ErrorCategory value

    @property
    def ok(self) -> bool:
        return not self.category


class _Once:
    """Counts one request down the first time it is called (it is called again, harmlessly, at the end)."""

    __slots__ = ("countdown", "done")

    def __init__(self, countdown: _Countdown) -> None:
        self.countdown, self.done = countdown, False

    def __call__(self) -> None:
        if not self.done:
            self.done = True
            self.countdown.down()


class _Countdown:
    """A batch's requests not yet handed to a connection; ``event`` is set when none is left. Only the
    loop's thread counts down; the caller's thread waits on the event."""

    def __init__(self, count: int, event: threading.Event) -> None:
        self.left, self.event = count, event
        if count == 0:
            event.set()

    def one(self) -> _Once:
        return _Once(self)

    def down(self) -> None:
        self.left -= 1
        if self.left == 0:
            self.event.set()


class BulkSender:
    """Owns an event loop thread and a pool of at most ``concurrency`` keep-alive connections.

    ``send(requests)`` is called from ordinary (worker) threads and blocks until every request in the
    batch has an outcome; ``submit`` returns a concurrent future instead, so a caller can claim the
    next batch while this one is in flight.
    """

    def __init__(
        self,
        api_base: str,
        tokens: TokenSource,
        *,
        concurrency: int = 64,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        secret: str | None = None,
        also_scrub: Sequence[str | None] = (),
    ) -> None:
        self.tokens = tokens
        self.concurrency = concurrency
        self._pool = KeepAlivePool(
            api_base, limit=concurrency, connect_timeout=connect_timeout, read_timeout=read_timeout
        )
        self._scrub = scrubber(secret, *also_scrub)
        self._targets: dict[tuple[str, str], str] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tongzhi-bulk-send", daemon=True)
        self._thread.start()

    # -- public ----------------------------------------------------------------------------------

    def submit(self, requests: Sequence[BulkRequest], written: threading.Event | None = None):
        """Send ``requests`` from the loop; returns a concurrent future of their outcomes. ``written`` is
        set once every request has been handed to its connection or given up before that."""
        countdown = _Countdown(len(requests), written or threading.Event())
        return asyncio.run_coroutine_threadsafe(self._send_all(list(requests), countdown), self._loop)

    def send(self, requests: Sequence[BulkRequest]) -> list[SendOutcome]:
        return self.submit(requests).result()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._pool.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    # -- inside the loop -------------------------------------------------------------------------

    async def _send_all(self, requests: list[BulkRequest], countdown: _Countdown) -> list[SendOutcome]:
        # The token services may touch the database: ask each once per batch, off the loop.
        started = datetime.now(UTC)
        sources: dict[int, TokenSource] = {}
        for request in requests:
            source = self._source(request)
            sources.setdefault(id(source), source)
        tokens: dict[int, str | WeChatError] = {}
        for key, source in sources.items():
            try:
                tokens[key] = await asyncio.to_thread(source.get_token)
            except WeChatError as error:
                # Nothing of this account can leave without a token: each gets the same not-sent verdict.
                tokens[key] = error
        return list(
            await asyncio.gather(
                *(
                    self._send_one(request, tokens[id(self._source(request))], started, countdown.one())
                    for request in requests
                )
            )
        )

    def _source(self, request: BulkRequest) -> TokenSource:
        return request.tokens or self.tokens

    async def _send_one(
        self, request: BulkRequest, token: str | WeChatError, batch_started: datetime, written: _Once
    ) -> SendOutcome:
        try:
            return await self._send_counted(request, token, batch_started, written)
        finally:
            written()  # given up before writing (no token, no connection): it counts as done too

    async def _send_counted(
        self, request: BulkRequest, token: str | WeChatError, batch_started: datetime, written: _Once
    ) -> SendOutcome:
        if isinstance(token, WeChatError):
            return self._outcome(request, batch_started, self._never_sent(token, request.path))
        source = self._source(request)
        body = encode_json(request.body())
        started = datetime.now(UTC)
        verdict = await self._post(request.path, body, token, written)
        if verdict.category is ErrorCategory.TOKEN:
            # Refused before acting on it, so one retry with a fresh token cannot duplicate the send.
            try:
                await asyncio.to_thread(source.invalidate, token)
                fresh = await asyncio.to_thread(source.get_token)
            except WeChatError as error:
                verdict = self._never_sent(error, request.path)
            else:
                if fresh != token:
                    verdict = await self._post(request.path, body, fresh)
        if verdict.category is ErrorCategory.UNKNOWN:
            log.warning("WeChat send to %s: %s", request.touser, verdict.errmsg)
        return self._outcome(request, started, verdict)

    async def _post(
        self, path: str, body: bytes, token: str, written: Callable[[], None] | None = None
    ) -> Verdict:
        target = self._targets.get((path, token))
        if target is None:
            # A token lives for hours: keep the targets of the current ones only.
            self._targets = {k: v for k, v in self._targets.items() if k[0] != path}
            target = self._targets[(path, token)] = f"{path}?access_token={quote(token, safe='')}"
        answer: HttpReply | NeverSent | LostAnswer
        try:
            response = await self._pool.post(target, body, JSON_CONTENT_TYPE, on_written=written)
        except NotSent as exc:
            answer = NeverSent(str(exc))
        except AnswerLost as exc:
            answer = LostAnswer(str(exc))
        else:
            answer = HttpReply(response.status, response.body)
        return read_answer(answer, request=f"POST {path}", idempotent=False, scrub=self._scrub)

    def _never_sent(self, error: WeChatError, path: str) -> Verdict:
        return read_answer(
            NeverSent("no access token", because=error),
            request=f"POST {path}",
            idempotent=False,
            scrub=self._scrub,
        )

    @staticmethod
    def _outcome(request: BulkRequest, started: datetime, verdict: Verdict) -> SendOutcome:
        return SendOutcome(
            request.key,
            started,
            datetime.now(UTC),
            msgid=verdict.msgid,
            errcode=verdict.errcode,
            errmsg=verdict.errmsg,
            category="" if verdict.category is None else verdict.category.value,
        )
