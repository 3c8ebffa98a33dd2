"""A small HTTP/1.1 client for the bulk send funnel: pooled keep-alive connections on one asyncio loop.

It does what ``subscribeMessage.send`` needs and nothing else: POST a body, read one answer (framed by
Content-Length, chunked, or the end of the connection), keep the connection for the next request, over
TLS or plain TCP. aiohttp did the same at about 0.34 ms of CPU per request, more than the engine's
database work per message; this costs about 0.15 ms (``bench/http_client.py``, docs/benchmarks.md).

What the caller must be able to tell apart is *whether the request can have reached WeChat*:

* ``NotSent`` — no connection could be made (refused, unreachable, TLS handshake failed, connect
  timeout): nothing was written, a later retry cannot duplicate the message.
* ``AnswerLost`` — the request was written (or may have been) and no complete answer came back (read
  timeout, connection reset or closed mid-answer, a malformed answer): the message may have been
  delivered, so it must not be resent automatically.
"""

from __future__ import annotations

import asyncio
import select
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 4 * 1024 * 1024
IDLE_SECONDS = 15.0  # drop pooled connections idle longer than this: servers close them, and a write on
# a connection the server has just closed would make an otherwise clean send an unknown outcome


class SendError(Exception):
    """A request that got no complete answer."""


class NotSent(SendError):
    """No connection was made: the request cannot have reached the server."""


class AnswerLost(SendError):
    """The request was (or may have been) written, and no complete answer came back."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.closed = False
        self.idle_since = time.monotonic()
        self._waiter: asyncio.Future[Response] | None = None
        self._eof = False
        self._reset()

    def _reset(self) -> None:
        self._status: int | None = None
        self._length: int | None = None
        self._chunked = False
        self._chunks = bytearray()
        self.reusable = False

    # -- one exchange ------------------------------------------------------------------------------------

    def start(self, request: bytes, waiter: asyncio.Future[Response]) -> None:
        assert self.transport is not None
        self._reset()
        self._waiter = waiter
        self.transport.write(request)

    def fail(self, error: SendError) -> None:
        """Give up on the current answer (a timeout) and close: the connection's state is unknown."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # -- asyncio.Protocol ----------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: this connection cannot be trusted with another request
            return
        try:
            self._parse()
        except ValueError as exc:
            self.fail(AnswerLost(f"malformed HTTP answer ({exc})"))

    def eof_received(self) -> bool:
        self._eof = True
        if self._waiter is not None and not self._waiter.done():
            try:
                self._parse()
            except ValueError as exc:
                self.fail(AnswerLost(f"malformed HTTP answer ({exc})"))
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            why = f"{type(exc).__name__}" if exc else "closed by the server"
            self._waiter.set_exception(AnswerLost(f"connection {why} before a complete answer"))

    # -- parsing -----------------------------------------------------------------------------------------------

    def _parse(self) -> None:
        buffer = self.buffer
        while self._status is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD_BYTES:
                    raise ValueError("header block too large")
                return
            self._read_head(bytes(buffer[:end]))
            del buffer[: end + 4]
        if self._length is not None:
            if len(buffer) < self._length:
                return
            body = bytes(buffer[: self._length])
            del buffer[: self._length]
        elif self._chunked:
            body = self._read_chunks()
            if body is None:
                return
        else:  # no framing: the body is everything until the server closes
            if len(buffer) > MAX_BODY_BYTES:
                raise ValueError("answer too large")
            if not self._eof:
                return
            body = bytes(buffer)
            buffer.clear()
            self.reusable = False
        if buffer:
            self.reusable = False  # more bytes than one answer
        assert self._waiter is not None and self._status is not None
        self.idle_since = time.monotonic()
        self._waiter.set_result(Response(self._status, body))

    def _read_head(self, head: bytes) -> None:
        status_line, *lines = head.decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1.x status line: {status_line[:40]!r}")
        status = int(rest[:3])
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200:
            return  # an interim answer (100 Continue): the real one follows
        connection = headers.get("connection", "").lower()
        self.reusable = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._chunked = True
        elif "content-length" in headers:
            self._length = int(headers["content-length"])
            if not 0 <= self._length <= MAX_BODY_BYTES:
                raise ValueError("bad Content-Length")
        elif status in (204, 304):
            self._length = 0
        self._status = status

    def _read_chunks(self) -> bytes | None:
        buffer = self.buffer
        while True:
            line_end = buffer.find(b"\r\n")
            if line_end < 0:
                return None
            size = int(bytes(buffer[:line_end]).split(b";", 1)[0], 16)
            if size == 0:
                # Last chunk, then optional trailers, then an empty line.
                trailers_end = buffer.find(b"\r\n\r\n", line_end)
                if buffer[line_end : line_end + 4] == b"\r\n\r\n":
                    del buffer[: line_end + 4]
                elif trailers_end >= 0:
                    del buffer[: trailers_end + 4]
                else:
                    return None
                return bytes(self._chunks)
            if len(buffer) < line_end + 2 + size + 2:
                return None
            self._chunks += buffer[line_end + 2 : line_end + 2 + size]
            if len(self._chunks) > MAX_BODY_BYTES:
                raise ValueError("answer too large")
            del buffer[: line_end + 2 + size + 2]


def _readable(transport: asyncio.BaseTransport) -> bool:
    """Whether an idle connection has something to read: the server closed it (or sent bytes nobody
    asked for) and the loop has not processed that yet. Either way it must not carry the next request,
    which would otherwise be written into a dead socket and come back as a lost answer."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class KeepAlivePool:
    """At most ``limit`` connections to one origin, reused across requests; use from one event loop."""

    def __init__(
        self,
        base_url: str,
        *,
        limit: int,
        connect_timeout: float,
        read_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        default_port = self.port == (443 if self.tls else 80)
        host_header = self.host if ":" not in self.host else f"[{self.host}]"
        self.host_header = host_header if default_port else f"{host_header}:{self.port}"
        self.prefix = parts.path.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.ssl_context = (ssl_context or ssl.create_default_context()) if self.tls else None
        self._limit = limit
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[_Connection] = []

    async def post(self, target: str, body: bytes, content_type: str) -> Response:
        """POST ``body`` to ``prefix + target`` (path and query, already encoded); raises ``SendError``."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._limit)
        head = (
            f"POST {self.prefix}{target} HTTP/1.1\r\nHost: {self.host_header}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            "Accept: application/json\r\nUser-Agent: tongzhi\r\n\r\n"
        )
        request = head.encode("latin-1") + body
        async with self._slots:
            connection = await self._connection()
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[Response] = loop.create_future()
            try:
                connection.start(request, waiter)
            except (OSError, RuntimeError) as exc:
                connection.close()
                raise AnswerLost(f"{type(exc).__name__} while writing the request") from exc
            timer = loop.call_later(
                self.read_timeout,
                connection.fail,
                AnswerLost(f"no answer within {self.read_timeout:g} s"),
            )
            try:
                response = await waiter
            except BaseException:
                connection.close()
                raise
            finally:
                timer.cancel()
            if connection.reusable and not connection.closed:
                self._idle.append(connection)
            else:
                connection.close()
            return response

    async def _connection(self) -> _Connection:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            transport = connection.transport
            if connection.closed or transport is None or transport.is_closing():
                continue
            if now - connection.idle_since > IDLE_SECONDS or _readable(transport):
                connection.close()
                continue
            return connection
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    _Connection,
                    self.host,
                    self.port,
                    ssl=self.ssl_context,
                    server_hostname=self.host if self.tls else None,
                ),
                self.connect_timeout,
            )
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            raise NotSent(f"{type(exc).__name__}: could not connect") from exc
        return connection

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()
