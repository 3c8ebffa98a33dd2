"""A small HTTP/1.1 client for the bulk send funnel: pooled keep-alive connections on one asyncio loop.

It does what ``subscribeMessage.send`` needs and nothing else: POST a body, read one answer, keep the
connection for the next request, over TLS or plain TCP, directly or through an HTTP proxy's CONNECT
tunnel. aiohttp did the same at about 0.34 ms of CPU per request, more than the engine's database work
per message; this costs about 0.15 ms (``bench/http_client.py``, docs/benchmarks.md).

Framing is llhttp's (through ``httptools``), the parser Node.js uses, which applies RFC 9112 strictly:
conflicting or malformed ``Content-Length``, ``Transfer-Encoding`` with ``Content-Length``, chunk sizes
that are not plain hex, chunk data not followed by CRLF are all refused, and ``Connection`` is read as a
list of tokens (``keep-alive, close`` closes). What is left to this module is the decision RFC 9112
§6.3 gives the client: a refused answer closes the connection, which is never reused.

What the caller must be able to tell apart is *whether the request can have reached WeChat*:

* ``NotSent`` — no connection could be made (refused, unreachable, TLS handshake failed, connect
  timeout, the proxy refused the tunnel): nothing was written, a later retry cannot duplicate the
  message.
* ``AnswerLost`` — the request was written (or may have been) and no complete answer came back (read
  timeout, connection reset or closed mid-answer, a malformed answer): the message may have been
  delivered, so it must not be resent automatically.

Proxy and trust come from the environment the same way the synchronous client (requests) takes them,
so both paths reach WeChat the same way: ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` (lower case
first) unless ``NO_PROXY`` names the host, and ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` for the CAs to
trust instead of the system's.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import select
import ssl
import time
from base64 import b64encode
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import httptools

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


class _Refused(Exception):
    """Raised inside a parser callback: an answer llhttp accepts but this client must not."""


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection carrying one request at a time; llhttp frames its answers."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = False
        self.idle_since = time.monotonic()
        self._waiter: asyncio.Future[Response] | None = None
        # One parser for the connection's life: after a complete answer llhttp is ready for the next.
        self._parser = httptools.HttpResponseParser(self)
        self._begin_exchange()

    def _begin_exchange(self) -> None:
        self._answered = False  # the final answer of the current exchange is complete
        self._head_bytes = 0
        self._begin_message()

    def _begin_message(self) -> None:
        self._in_head = True
        self._status = 0
        self._has_length = False
        self._codings = b""
        self._close = False  # "close" among the Connection options
        self._until_close = False  # the body is everything until the server closes
        self._body = bytearray()

    # -- one exchange ------------------------------------------------------------------------------------

    def start(self, request: bytes, waiter: asyncio.Future[Response]) -> None:
        assert self.transport is not None
        self._begin_exchange()
        self.reusable = False
        self._waiter = waiter
        self.transport.write(request)

    def fail(self, error: SendError) -> None:
        """Give up on the current answer (a timeout, a malformed answer) and close: the connection's
        state is unknown, so it never carries another request."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        self.close()

    def close(self) -> None:
        self.closed = True
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()

    def _answer(self, keep_alive: bool) -> None:
        if self._answered:
            self.reusable = False  # a second whole answer to one request: the connection is done
            return
        self._answered = True
        self.reusable = keep_alive
        self.idle_since = time.monotonic()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(Response(self._status, bytes(self._body)))

    # -- asyncio.Protocol ----------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: this connection cannot be trusted with another request
            return
        if self._in_head:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._malformed("a 101 answer to a request that asked for no upgrade")
            return
        except httptools.HttpParserError as exc:
            refused = exc.__context__
            self._malformed(str(refused if isinstance(refused, _Refused) else exc))
            return
        if self._in_head and self._head_bytes > MAX_HEAD_BYTES:
            self._malformed("header block too large")

    def eof_received(self) -> bool:
        if (
            self._waiter is not None
            and not self._waiter.done()
            and not self._in_head
            and self._until_close
            and not self._answered
        ):
            self._answer(keep_alive=False)  # the end of the connection is the end of this body
        return False  # close the transport; connection_lost reports an answer cut short

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self._waiter is not None and not self._waiter.done():
            why = f"{type(exc).__name__}" if exc else "closed by the server"
            self._waiter.set_exception(AnswerLost(f"connection {why} before a complete answer"))

    def _malformed(self, reason: str) -> None:
        if self._answered:
            self.close()  # the answer was whole; what followed it makes the connection unusable
        else:
            self.fail(AnswerLost(f"malformed HTTP answer ({reason})"))

    # -- llhttp callbacks (httptools) ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._answered:
            self.reusable = False  # bytes after the answer: not ours to read, the connection is done

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_head:
            return  # a trailer field of a chunked body
        name = name.lower()
        if name == b"content-length":
            self._has_length = True
            if value.isdigit() and int(value) > MAX_BODY_BYTES:
                raise _Refused("answer too large")
        elif name == b"transfer-encoding":
            self._codings += b"," + value
        elif name == b"connection" and b"close" in value.lower():
            # llhttp lets HTTP/1.0's keep-alive outweigh close; RFC 9112 §9.3 checks close first.
            self._close = self._close or any(t.strip() == b"close" for t in value.lower().split(b","))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._status = status = self._parser.get_status_code()
        if self._parser.get_http_version() not in ("1.0", "1.1"):
            raise _Refused(f"not an HTTP/1.x answer (HTTP/{self._parser.get_http_version()})")
        if status < 200:
            return  # an interim answer (100 Continue): no body, the real answer follows
        # RFC 9112 §6.3: chunked when it is the final transfer coding; otherwise a length, or no body
        # (204, 304), or (rule 7) everything until the server closes. llhttp frames it the same way.
        chunked = self._codings.rsplit(b",", 1)[-1].strip().lower() == b"chunked"
        self._until_close = not (chunked or self._has_length or status in (204, 304))

    def on_body(self, body: bytes) -> None:
        self._body += body
        if len(self._body) > MAX_BODY_BYTES:
            raise _Refused("answer too large")

    def on_message_complete(self) -> None:
        if self._status < 200:
            self._begin_message()  # the interim answer is done; the final one is next
            return
        self._answer(self._parser.should_keep_alive() and not self._close)


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


# -- the environment: proxy and trust, read as requests reads them -------------------------------------------


def environment_proxies(env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """``{scheme: (variable, proxy URL)}`` from ``*_proxy`` variables, lower case winning (``urllib``'s
    ``getproxies_environment``, which requests uses); the key ``"no"`` is ``NO_PROXY``."""
    proxies: dict[str, tuple[str, str]] = {}
    for name, value in env.items():
        if value and name.lower().endswith("_proxy"):
            proxies[name.lower()[:-6]] = (name, value)
    if "REQUEST_METHOD" in env:
        proxies.pop("http", None)  # under CGI, HTTP_PROXY may be a client's Proxy: header (httpoxy)
    for name, value in env.items():
        if name.endswith("_proxy") and name == name.lower():
            if value:
                proxies[name[:-6]] = (name, value)
            else:
                proxies.pop(name[:-6], None)
    return proxies


def _bypassed(host: str, port: int | None, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` names the host: requests' rules (IPv4 addresses and CIDR ranges exactly,
    names by suffix, with or without the port) and urllib's ``*``."""
    entries = [entry for entry in no_proxy.replace(" ", "").split(",") if entry]
    if "*" in entries:
        return True
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        address = None
    if address is not None:
        for entry in entries:
            if "/" in entry:
                try:
                    if address in ipaddress.IPv4Network(entry, strict=False):
                        return True
                except ValueError:
                    continue
            elif entry == host:
                return True
        return False
    with_port = f"{host}:{port}" if port else host
    for entry in entries:
        entry = entry.lstrip(".").lower()
        if entry in (host, with_port) or host.endswith("." + entry) or with_port.endswith("." + entry):
            return True
    return False


def proxy_for(url: str, env: Mapping[str, str]) -> tuple[str, str] | None:
    """``(variable, proxy URL)`` that a request to ``url`` goes through, or None for a direct connection."""
    parts = urlsplit(url)
    proxies = environment_proxies(env)
    no_proxy = proxies.pop("no", ("", ""))[1]
    if not parts.hostname or _bypassed(parts.hostname.lower(), parts.port, no_proxy):
        return None
    return proxies.get(parts.scheme) or proxies.get("all")


@dataclass(frozen=True)
class Proxy:
    """An ``http://`` proxy to open CONNECT tunnels through."""

    host: str
    port: int
    authorization: str | None  # the Proxy-Authorization value, from the URL's user and password

    @classmethod
    def parse(cls, variable: str, url: str) -> Proxy:
        """:raise ValueError: naming ``variable`` (never the value: it may carry a password)."""
        if "://" not in url:
            url = "http://" + url  # as requests does
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(
                f"{variable} names a {parts.scheme}:// proxy; Tongzhi's bulk sender tunnels through "
                "http:// proxies only (HTTP CONNECT). Set it to http://host:port, or name WeChat's "
                "host in NO_PROXY to connect directly."
            )
        try:
            port = parts.port or 80
        except ValueError:
            raise ValueError(f"{variable} has a port that is not a number.") from None
        authorization = None
        if parts.username is not None:
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + b64encode(credentials.encode("latin-1")).decode("ascii")
        return cls(parts.hostname, port, authorization)

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def tls_context(env: Mapping[str, str]) -> ssl.SSLContext:
    """The CAs the synchronous client trusts: ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` (a file or a
    directory), else the system's.

    :raise ValueError: naming the variable when its CAs cannot be loaded.
    """
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        path = env.get(variable)
        if path:
            try:
                if os.path.isdir(path):
                    return ssl.create_default_context(capath=path)
                return ssl.create_default_context(cafile=path)
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"{variable} names no readable CA bundle ({type(exc).__name__}).") from None
    return ssl.create_default_context()


def check_environment(base_url: str, env: Mapping[str, str]) -> None:
    """Refuse, before anything is sent, a proxy or CA bundle the pool for ``base_url`` could not use.

    :raise ValueError: naming the variable.
    """
    chosen = proxy_for(base_url, env)
    if chosen is not None:
        Proxy.parse(*chosen)
    if base_url.startswith("https:"):
        tls_context(env)


_CONNECT_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})")


class _Tunnel(asyncio.Protocol):
    """A connection to the proxy until it answers CONNECT; then the pool's connection takes it over."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.answered.done():
            return
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                self._refuse("an answer to CONNECT too large")
            return
        match = _CONNECT_STATUS.match(self.buffer)
        if match is None:
            self._refuse("an answer to CONNECT that is not HTTP/1.x")
        elif not match.group(1).startswith(b"2"):
            line = bytes(self.buffer[: self.buffer.find(b"\r\n")]).decode("latin-1")[:80]
            self._refuse(f"{line!r} to CONNECT")
        elif len(self.buffer) > end + 4:
            # RFC 9110 §9.3.6: a 2xx to CONNECT has no body; the tunnel starts after its head, and
            # neither WeChat (TLS) nor any HTTP server speaks first.
            self._refuse("bytes after its answer to CONNECT")
        else:
            self.answered.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._refuse("the connection closed before its answer to CONNECT")

    def _refuse(self, what: str) -> None:
        if not self.answered.done():
            self.answered.set_exception(NotSent(f"the proxy {self.proxy.address} sent {what}"))


class KeepAlivePool:
    """At most ``limit`` connections to one origin, reused across requests; use from one event loop.

    ``env`` (default ``os.environ``, read once here) gives the proxy and, unless ``ssl_context`` is
    given, the CAs to trust. :raise ValueError: for a URL or proxy the pool cannot use.
    """

    def __init__(
        self,
        base_url: str,
        *,
        limit: int,
        connect_timeout: float,
        read_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        env = os.environ if env is None else env
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        default_port = self.port == (443 if self.tls else 80)
        host_header = self.host if ":" not in self.host else f"[{self.host}]"
        self.host_header = host_header if default_port else f"{host_header}:{self.port}"
        self.prefix = parts.path.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.ssl_context = (ssl_context or tls_context(env)) if self.tls else None
        chosen = proxy_for(base_url, env)
        self.proxy = Proxy.parse(*chosen) if chosen else None
        self._limit = limit
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[_Connection] = []

    async def post(
        self,
        target: str,
        body: bytes,
        content_type: str,
        on_written: Callable[[], None] | None = None,
    ) -> Response:
        """POST ``body`` to ``prefix + target`` (path and query, already encoded); raises ``SendError``.

        ``on_written``: called once the request is handed to its connection, before the answer is awaited.
        """
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
            if on_written is not None:
                on_written()
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
        try:
            return await asyncio.wait_for(self._open(), self.connect_timeout)
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            raise NotSent(f"{type(exc).__name__}: could not connect") from exc

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        server_hostname = self.host if self.tls else None
        if self.proxy is None:
            _, connection = await loop.create_connection(
                _Connection, self.host, self.port, ssl=self.ssl_context, server_hostname=server_hostname
            )
            return connection
        proxy = self.proxy
        transport, tunnel = await loop.create_connection(lambda: _Tunnel(proxy), proxy.host, proxy.port)
        try:
            authority = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
            head = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
            if proxy.authorization:
                head += f"Proxy-Authorization: {proxy.authorization}\r\n"
            transport.write((head + "\r\n").encode("latin-1"))
            await tunnel.answered
            connection = _Connection()
            if self.ssl_context is not None:
                tls = await loop.start_tls(
                    transport, connection, self.ssl_context, server_hostname=server_hostname
                )
                assert tls is not None
                transport = tls
            else:
                transport.set_protocol(connection)
            connection.connection_made(transport)
            return connection
        except BaseException:
            tunnel.answered.cancel()  # a timeout while waiting: the abort below must not set it unread
            transport.abort()
            raise

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()
