"""KeepAlivePool against scripted HTTP servers on loopback: framing, reuse, limits and the two failure kinds.

Every test starts an asyncio server on 127.0.0.1 whose handler writes exact bytes, so the framing the
pool must cope with (Content-Length, chunked, close-delimited, interim 100 answers, garbage, framing
RFC 9112 refuses) is ours to choose. The server counts what it sees (connections, requests, what was
open at once), which is how a test tells whether the pool reused a connection or opened a new one.
The same server speaks TLS with a certificate from a throwaway CA (``local_tls``), and a small CONNECT
proxy on loopback carries the pool's tunnels when the environment names a proxy.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from dashboard.wechat import keepalive
from dashboard.wechat.keepalive import AnswerLost, KeepAlivePool, NotSent, Response

from .local_tls import LocalCA, local_ca

T = TypeVar("T")

OK = b'{"errcode":0,"errmsg":"ok"}'


def run(coroutine: Awaitable[T]) -> T:
    """``asyncio.run`` on a thread of its own: in a whole-suite run the browser tests' Playwright keeps an
    event loop running on the main thread, where ``asyncio.run`` refuses to start another."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # re-raised on the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# -- the scripted server --------------------------------------------------------------------------------


@dataclass
class Request:
    line: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Connection:
    """What the server saw on one accepted connection."""

    index: int
    requests: list[Request] = field(default_factory=list)
    client_closed: bool = False  # the server read an end of stream (or a reset) from the client
    finished: asyncio.Event = field(default_factory=asyncio.Event)


Handler = Callable[["Scripted", Connection, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Scripted:
    """A loopback server running ``handler`` for each connection, counting what it sees."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.connections: list[Connection] = []
        self.open = 0
        self.max_open = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._tasks: set[asyncio.Task] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def accepted(self) -> int:
        return len(self.connections)

    @property
    def requests(self) -> list[Request]:
        return [request for connection in self.connections for request in connection.requests]

    def url(self, path: str = "") -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        pending = [task for task in self._tasks if not task.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        connection = Connection(len(self.connections))
        self.connections.append(connection)
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        try:
            await self.handler(self, connection, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            connection.client_closed = True
        finally:
            self.open -= 1
            writer.close()
            with suppress(ConnectionError):
                await writer.wait_closed()
            connection.finished.set()

    async def read_request(self, connection: Connection, reader: asyncio.StreamReader) -> Request | None:
        """The next request on the connection, or None when the client closed it."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise
            connection.client_closed = True
            return None
        line, *lines = head[:-4].decode("latin-1").split("\r\n")
        headers = {}
        for header in lines:
            name, _, value = header.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        request = Request(line, headers, body)
        connection.requests.append(request)
        return request

    async def wait_closed_by_client(self, index: int, timeout: float = 2.0) -> bool:
        connection = self.connections[index]
        with suppress(TimeoutError):
            await asyncio.wait_for(connection.finished.wait(), timeout)
        return connection.client_closed


@asynccontextmanager
async def serving(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[Scripted]:
    server = Scripted(handler, tls)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@asynccontextmanager
async def pool_for(url: str, **options) -> AsyncIterator[KeepAlivePool]:
    # No proxy or CA bundle from the machine's environment unless a test gives its own ``env``.
    settings = {"limit": 4, "connect_timeout": 2.0, "read_timeout": 2.0, "env": {}, **options}
    pool = KeepAlivePool(url, **settings)
    try:
        yield pool
    finally:
        pool.close()
        await asyncio.sleep(0.01)  # let the aborted transports run connection_lost and close their sockets


def answer(body: bytes, status: str = "200 OK", *headers: str, version: str = "HTTP/1.1") -> bytes:
    head = [f"{version} {status}", "Content-Type: application/json", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


async def write_script(writer: asyncio.StreamWriter, script: list[bytes | float]) -> None:
    """Write each bytes piece and drain; a float is a pause between pieces."""
    for piece in script:
        if isinstance(piece, float):
            await asyncio.sleep(piece)
        else:
            writer.write(piece)
            await writer.drain()


def keep_alive(
    make: Callable[[Scripted, Connection, Request], list[bytes | float]],
) -> Handler:
    """A handler answering every request on the connection with ``make(...)``'s script, until EOF."""

    async def handler(server, connection, reader, writer):
        while (request := await server.read_request(connection, reader)) is not None:
            await write_script(writer, make(server, connection, request))

    return handler


def post(pool: KeepAlivePool, body: bytes = b"{}", target: str = "/send") -> Awaitable[Response]:
    return pool.post(target, body, "application/json")


# -- answers framed by Content-Length ---------------------------------------------------------------------


def test_two_posts_share_one_connection_and_the_request_is_exact():
    bodies = [b'{"touser":"o1","data":{"k":"\xe4\xb8\xad"}}', b'{"touser":"o2"}']

    def make(server, connection, request):
        number = len(connection.requests)
        return [answer(b'{"errcode":0,"n":%d}' % number, "200 OK")]

    async def scenario():
        async with serving(keep_alive(make)) as server, pool_for(server.url("/prefix/")) as pool:
            first = await pool.post("/target?x=1", bodies[0], "application/json; charset=utf-8")
            second = await pool.post("/target?x=1", bodies[1], "application/json; charset=utf-8")
            return server, first, second

    server, first, second = run(scenario())
    assert first == Response(200, b'{"errcode":0,"n":1}')
    assert second == Response(200, b'{"errcode":0,"n":2}')
    assert server.accepted == 1
    assert len(server.connections[0].requests) == 2
    for request, body in zip(server.requests, bodies, strict=True):
        assert request.line == "POST /prefix/target?x=1 HTTP/1.1"
        assert request.headers["host"] == f"127.0.0.1:{server.port}"
        assert request.headers["content-length"] == str(len(body))
        assert request.headers["content-type"] == "application/json; charset=utf-8"
        assert request.body == body


def test_status_and_body_are_the_servers():
    def make(server, connection, request):
        return [answer(b"upstream says no", "502 Bad Gateway")]

    async def scenario():
        async with serving(keep_alive(make)) as server, pool_for(server.url()) as pool:
            return await post(pool)

    assert run(scenario()) == Response(502, b"upstream says no")


def test_a_204_without_length_has_an_empty_body_and_keeps_the_connection():
    def make(server, connection, request):
        return [b"HTTP/1.1 204 No Content\r\nServer: scripted\r\n\r\n"]

    async def scenario():
        async with serving(keep_alive(make)) as server, pool_for(server.url()) as pool:
            return server, [await post(pool), await post(pool)]

    server, responses = run(scenario())
    assert responses == [Response(204, b""), Response(204, b"")]
    assert server.accepted == 1


@pytest.mark.parametrize(
    ("base_url", "host_header", "prefix"),
    [
        ("http://api.example.com", "api.example.com", ""),
        ("http://api.example.com:80/", "api.example.com", ""),
        ("https://api.example.com/cgi-bin/", "api.example.com", "/cgi-bin"),
        ("https://api.example.com:8443/x", "api.example.com:8443", "/x"),
        ("http://api.example.com:443", "api.example.com:443", ""),
        ("http://[::1]:8080/", "[::1]:8080", ""),
    ],
)
def test_host_header_names_the_port_only_when_it_is_not_the_default(base_url, host_header, prefix):
    pool = KeepAlivePool(base_url, limit=1, connect_timeout=1, read_timeout=1)
    assert (pool.host_header, pool.prefix) == (host_header, prefix)


@pytest.mark.parametrize("base_url", ["ftp://example.com", "example.com", "http:///nohost"])
def test_a_base_url_that_is_not_http_is_refused(base_url):
    with pytest.raises(ValueError, match="not an http"):
        KeepAlivePool(base_url, limit=1, connect_timeout=1, read_timeout=1)


# -- chunked answers -----------------------------------------------------------------------------------


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
CHUNKED_SCRIPTS = {
    "extensions and a trailer": [
        CHUNKED_HEAD + b"5;name=va",
        0.02,
        b'lue\r\n{"e',
        0.02,
        b"rr\r",
        0.02,
        b"\n1",
        0.02,
        b'5\r\ncode":0,"msgid":"m1"}\r\n0\r\nX-Checksum: abc\r\n',
        0.02,
        b"\r\n",
    ],
    "head split, last chunk split": [
        b"HTTP/1.1 200 OK\r\nTransfer-En",
        0.02,
        b"coding: chunked\r\n\r",
        0.02,
        b'\n1A\r\n{"errcode":0,"msgid":"m1"}\r\n',
        0.02,
        b"0\r\n",
        0.02,
        b"\r",
        0.02,
        b"\n",
    ],
    "one byte at a time": [
        piece
        for byte in CHUNKED_HEAD + b'3\r\n{"e\r\n17;x\r\nrrcode":0,"msgid":"m1"}\r\n0\r\n\r\n'
        for piece in (bytes([byte]), 0.001)
    ],
}


@pytest.mark.parametrize("script", CHUNKED_SCRIPTS.values(), ids=CHUNKED_SCRIPTS.keys())
def test_a_chunked_answer_in_many_writes_is_reassembled_and_the_connection_reused(script):
    def make(server, connection, request):
        if len(connection.requests) == 1:
            return script
        return [answer(b"second")]

    async def scenario():
        async with serving(keep_alive(make)) as server, pool_for(server.url()) as pool:
            return server, await post(pool), await post(pool)

    server, first, second = run(scenario())
    assert first == Response(200, b'{"errcode":0,"msgid":"m1"}')
    assert second == Response(200, b"second")  # the chunked framing left no byte behind
    assert server.accepted == 1


# -- answers that end with the connection -----------------------------------------------------------------


@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/1.1"])
def test_an_answer_without_length_ends_with_the_connection_which_is_not_reused(version):
    async def handler(server, connection, reader, writer):
        await server.read_request(connection, reader)
        head = f"{version} 200 OK\r\nContent-Type: application/json\r\n\r\n".encode()
        await write_script(writer, [head + b'{"errcode":0,', 0.05, b'"n":%d}' % connection.index])
        # returning closes the connection: the end of the body

    async def scenario():
        async with serving(handler) as server, pool_for(server.url()) as pool:
            return server, await post(pool), await post(pool)

    server, first, second = run(scenario())
    assert first == Response(200, b'{"errcode":0,"n":0}')
    assert second == Response(200, b'{"errcode":0,"n":1}')
    assert server.accepted == 2
    assert [len(c.requests) for c in server.connections] == [1, 1]


@pytest.mark.parametrize(
    ("version", "connection_header", "reused"),
    [
        ("HTTP/1.1", None, True),
        ("HTTP/1.1", "Connection: keep-alive", True),
        ("HTTP/1.1", "Connection: close", False),
        ("HTTP/1.1", "Connection: Close", False),
        ("HTTP/1.0", None, False),
        ("HTTP/1.0", "Connection: keep-alive", True),
        # RFC 9110 §7.6.1: Connection is a comma-separated list of options; "close" among them closes.
        ("HTTP/1.1", "Connection: keep-alive, close", False),
        ("HTTP/1.1", "Connection: Close, Keep-Alive", False),
        ("HTTP/1.1", "Connection: close\r\nConnection: x-trace", False),
        ("HTTP/1.0", "Connection: keep-alive, close", False),
        ("HTTP/1.1", "Connection: x-trace, closed", True),
    ],
)
def test_the_connection_header_decides_reuse(version, connection_header, reused):
    def make(server, connection, request):
        headers = [connection_header] if connection_header else []
        return [answer(b"c%d" % connection.index, "200 OK", *headers, version=version)]

    async def scenario():
        # The server never closes: only the client's decision ends a connection.
        async with serving(keep_alive(make)) as server, pool_for(server.url()) as pool:
            responses = [await post(pool), await post(pool)]
            first_closed = await server.wait_closed_by_client(0, timeout=0.1 if reused else 2.0)
            return server, responses, first_closed

    server, responses, first_closed = run(scenario())
    if reused:
        assert server.accepted == 1
        assert responses == [Response(200, b"c0"), Response(200, b"c0")]
        assert not first_closed
    else:
        assert server.accepted == 2
        assert responses == [Response(200, b"c0"), Response(200, b"c1")]
        assert [len(c.requests) for c in server.connections] == [1, 1]
        assert first_closed, "the pool left a connection it would not reuse open"


def test_bytes_after_the_answer_make_the_connection_unusable():
    def make(server, connection, request):
        return [answer(b"c%d" % connection.index) + b"HTTP/1.1 200 OK\r\n"]

    async def scenario():
        async with serving(keep_alive(make)) as server, pool_for(server.url()) as pool:
            responses = [await post(pool), await post(pool)]
            return server, responses, await server.wait_closed_by_client(0)

    server, responses, first_closed = run(scenario())
    assert responses == [Response(200, b"c0"), Response(200, b"c1")]
    assert server.accepted == 2
    assert first_closed


def test_a_second_whole_answer_to_one_request_makes_the_connection_unusable():
    def make(server, connection, request):
        return [answer(b"c%d" % connection.index) + answer(b"unasked")]

    async def scenario():
        async with serving(keep_alive(make)) as server, pool_for(server.url()) as pool:
            responses = [await post(pool), await post(pool)]
            return server, responses, await server.wait_closed_by_client(0)

    server, responses, first_closed = run(scenario())
    assert responses == [Response(200, b"c0"), Response(200, b"c1")]
    assert server.accepted == 2
    assert first_closed


def test_bytes_on_an_idle_connection_make_the_pool_drop_it():
    async def handler(server, connection, reader, writer):
        while await server.read_request(connection, reader) is not None:
            writer.write(answer(b"c%d" % connection.index))
            if connection.index == 0:
                await asyncio.sleep(0.05)
                writer.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")

    async def scenario():
        async with serving(handler) as server, pool_for(server.url()) as pool:
            first = await post(pool)
            await asyncio.sleep(0.15)
            second = await post(pool)
            return server, first, second

    server, first, second = run(scenario())
    assert (first, second) == (Response(200, b"c0"), Response(200, b"c1"))
    assert server.accepted == 2


# -- interim answers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("together", [False, True], ids=["separate writes", "one write"])
def test_a_100_continue_is_skipped_for_the_real_answer(together):
    interim = b"HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n"

    def make(server, connection, request):
        final = answer(b'{"errcode":0}', "200 OK")
        return [interim + final] if together else [interim, 0.05, final]

    async def scenario():
        async with serving(keep_alive(make)) as server, pool_for(server.url()) as pool:
            return server, await post(pool), await post(pool)

    server, first, second = run(scenario())
    assert first == second == Response(200, b'{"errcode":0}')
    assert server.accepted == 1


# -- NotSent: no connection ------------------------------------------------------------------------------


def test_a_refused_connection_is_not_sent():
    # A bound socket that does not listen: the kernel refuses connections to its port.
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]

        async def scenario():
            async with pool_for(f"http://127.0.0.1:{port}") as pool:
                await post(pool)

        with pytest.raises(NotSent) as caught:
            run(scenario())
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


def test_a_connect_timeout_is_not_sent():
    # A listening socket that never accepts, with its backlog full: Linux drops further SYNs, so a connect
    # hangs until the client gives up.
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            with suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.05)
        with socket.socket() as probe:
            probe.settimeout(0.2)
            try:
                probe.connect(("127.0.0.1", port))
            except TimeoutError:
                pass
            else:
                pytest.skip(
                    "this kernel accepts connections beyond a full backlog: no way to stall a connect"
                )

        elapsed = []

        async def scenario():
            async with pool_for(f"http://127.0.0.1:{port}", connect_timeout=0.2, read_timeout=30.0) as pool:
                started = time.monotonic()
                try:
                    await post(pool)
                finally:
                    elapsed.append(time.monotonic() - started)

        with pytest.raises(NotSent) as caught:
            run(scenario())
        assert isinstance(caught.value.__cause__, TimeoutError)
        assert 0.18 <= elapsed[0] < 10
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_a_refused_connection_holds_no_slot():
    """NotSent releases the pool's slot: with limit=1, every later post still fails fast, none waits."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]

        async def scenario():
            async with pool_for(f"http://127.0.0.1:{port}", limit=1) as pool:
                for _ in range(3):
                    with pytest.raises(NotSent):
                        await asyncio.wait_for(post(pool), 1.0)

        run(scenario())


# -- AnswerLost: the request left, no complete answer came back -------------------------------------------


def test_a_server_that_reads_and_closes_loses_the_answer():
    async def handler(server, connection, reader, writer):
        await server.read_request(connection, reader)

    async def scenario():
        async with serving(handler) as server, pool_for(server.url()) as pool:
            try:
                await post(pool, b'{"touser":"o1"}')
            finally:
                assert [r.body for r in server.requests] == [b'{"touser":"o1"}']

    with pytest.raises(AnswerLost, match="before a complete answer"):
        run(scenario())


def test_a_server_that_never_answers_loses_the_answer_after_the_read_timeout():
    async def handler(server, connection, reader, writer):
        await server.read_request(connection, reader)
        assert await reader.read() == b""  # wait for the client to give up
        connection.client_closed = True

    outcome = {}

    async def scenario():
        async with serving(handler) as server, pool_for(server.url(), read_timeout=0.2) as pool:
            started = time.monotonic()
            try:
                await asyncio.wait_for(post(pool), 3.0)
            finally:
                outcome["elapsed"] = time.monotonic() - started
                outcome["closed"] = await server.wait_closed_by_client(0)

    with pytest.raises(AnswerLost, match="no answer within 0.2 s"):
        run(scenario())
    assert 0.18 <= outcome["elapsed"] < 10
    assert outcome["closed"], "the timed-out connection was left open"


GARBAGE = {
    "not http": b"FOO\r\n\r\n",
    "not http, with a status": b"ICY 200 OK\r\nContent-Length: 0\r\n\r\n",
    "http/2 status line": b"HTTP/2 200\r\ncontent-length: 0\r\n\r\n",
    "no status code": b"HTTP/1.1 OK\r\nContent-Length: 0\r\n\r\n",
    "bad content-length": b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n0123456789",
    "negative content-length": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    "bad chunk size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE.keys())
def test_a_garbage_answer_is_lost_and_its_connection_dropped(garbage):
    def make(server, connection, request):
        return [garbage] if connection.index == 0 else [answer(b"fine")]

    async def scenario():
        async with serving(keep_alive(make)) as server, pool_for(server.url()) as pool:
            with pytest.raises(AnswerLost, match="malformed HTTP answer"):
                await post(pool)
            after = await post(pool)
            return server, after, await server.wait_closed_by_client(0)

    server, after, first_closed = run(scenario())
    assert after == Response(200, b"fine")
    assert server.accepted == 2  # the broken connection was not reused
    assert first_closed


# Answers RFC 9112 says a client must not take as framed (§6.3: an invalid Content-Length, or both
# Transfer-Encoding and Content-Length, is an error, the connection is closed and the answer discarded;
# §7.1: chunk-size is 1*HEXDIG and chunk data ends with CRLF). The request has left, so each is a lost
# answer, and the connection, whose framing is no longer known, is never reused.
RFC_9112_REFUSED = {
    "conflicting content-length": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 26\r\nContent-Length: 2\r\n\r\n" + b'{"errcode":0,"msgid":"m1"}'
    ),
    "content-length with a sign": b'HTTP/1.1 200 OK\r\nContent-Length: +26\r\n\r\n{"errcode":0,"msgid":"m1"}',
    "content-length as a list": b'HTTP/1.1 200 OK\r\nContent-Length: 26, 26\r\n\r\n{"errcode":0,"msgid":"m1"}',
    "transfer-encoding and content-length": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 26\r\n\r\n"
        b'1A\r\n{"errcode":0,"msgid":"m1"}\r\n0\r\n\r\n'
    ),
    "0x chunk size": CHUNKED_HEAD + b'0x1A\r\n{"errcode":0,"msgid":"m1"}\r\n0\r\n\r\n',
    "chunk size with a sign": CHUNKED_HEAD + b'+1A\r\n{"errcode":0,"msgid":"m1"}\r\n0\r\n\r\n',
    "chunk size with an underscore": CHUNKED_HEAD + b'1_A\r\n{"errcode":0,"msgid":"m1"}\r\n0\r\n\r\n',
    "chunk data without CRLF": CHUNKED_HEAD + b'1A\r\n{"errcode":0,"msgid":"m1"}XX0\r\n\r\n',
    "an HTTP/2.0 status line": b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    "a 101 nobody asked for": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n",
}


@pytest.mark.parametrize("refused", RFC_9112_REFUSED.values(), ids=RFC_9112_REFUSED.keys())
def test_framing_rfc_9112_refuses_is_a_lost_answer_and_the_connection_is_closed(refused):
    def make(server, connection, request):
        return [refused] if connection.index == 0 else [answer(b"fine")]

    async def scenario():
        # The server keeps the connection open: only the client's decision closes it.
        async with serving(keep_alive(make)) as server, pool_for(server.url()) as pool:
            with pytest.raises(AnswerLost, match="malformed HTTP answer"):
                await post(pool)
            after = await post(pool)
            return server, after, await server.wait_closed_by_client(0)

    server, after, first_closed = run(scenario())
    assert after == Response(200, b"fine")
    assert server.accepted == 2  # the connection with the refused answer was not reused
    assert [len(c.requests) for c in server.connections] == [1, 1]
    assert first_closed, "the pool left a connection with unknown framing open"


def test_a_body_larger_than_the_limit_is_refused(monkeypatch):
    monkeypatch.setattr(keepalive, "MAX_BODY_BYTES", 16)

    def make(server, connection, request):
        if connection.index == 0:
            return [CHUNKED_HEAD + b"10\r\n" + b"x" * 16 + b"\r\n1\r\ny\r\n0\r\n\r\n"]
        return [answer(b"x" * 17)]

    async def scenario():
        async with serving(keep_alive(make)) as server, pool_for(server.url()) as pool:
            for _ in range(2):
                with pytest.raises(AnswerLost, match=r"malformed HTTP answer \(answer too large\)"):
                    await post(pool)
            return server

    assert run(scenario()).accepted == 2


TRUNCATED = {
    "half a content-length body": [answer(b'{"errcode":0,"msgid":"m1"}')[:-10]],
    "half a chunk": [CHUNKED_HEAD + b'1A\r\n{"errcode":0,', 0.02, b'"msgid"'],
    "chunked without the last chunk": [CHUNKED_HEAD + b'1A\r\n{"errcode":0,"msgid":"m1"}\r\n'],
    "the last chunk without its empty line": [CHUNKED_HEAD + b'1A\r\n{"errcode":0,"msgid":"m1"}\r\n0\r\n'],
    "half a head": [b"HTTP/1.1 200 OK\r\nContent-Len"],
    "only a 100 continue": [b"HTTP/1.1 100 Continue\r\n\r\n"],
}


@pytest.mark.parametrize("script", TRUNCATED.values(), ids=TRUNCATED.keys())
def test_an_answer_cut_by_the_server_closing_is_lost(script):
    async def handler(server, connection, reader, writer):
        await server.read_request(connection, reader)
        await write_script(writer, script)
        # returning closes the connection mid-answer

    async def scenario():
        async with serving(handler) as server, pool_for(server.url()) as pool:
            await post(pool)

    with pytest.raises(AnswerLost, match="closed by the server before a complete answer"):
        run(scenario())


def test_a_reset_connection_loses_the_answer():
    async def handler(server, connection, reader, writer):
        await server.read_request(connection, reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()
        writer.transport.abort()  # a reset, not an orderly close

    async def scenario():
        async with serving(handler) as server, pool_for(server.url()) as pool:
            await post(pool)

    with pytest.raises(AnswerLost):
        run(scenario())


# -- the limit --------------------------------------------------------------------------------------------


def test_no_more_than_limit_connections_or_requests_at_once():
    async def handler(server, connection, reader, writer):
        while (request := await server.read_request(connection, reader)) is not None:
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
            await asyncio.sleep(0.1)
            server.in_flight -= 1
            writer.write(answer(b"echo:" + request.body))

    async def scenario():
        async with serving(handler) as server, pool_for(server.url(), limit=2) as pool:
            started = time.monotonic()
            bodies = [b"%d" % n for n in range(6)]
            responses = await asyncio.gather(*(post(pool, body) for body in bodies))
            return server, bodies, responses, time.monotonic() - started

    server, bodies, responses, elapsed = run(scenario())
    assert [r.body for r in responses] == [b"echo:" + body for body in bodies]  # no answer mixed up
    assert server.max_open <= 2
    assert server.max_in_flight == 2  # the two slots were used in parallel...
    assert server.accepted == 2  # ...on two connections, reused for the other four requests
    assert len(server.requests) == 6
    assert elapsed >= 0.29  # three rounds of 0.1 s


# -- connections left in the pool ----------------------------------------------------------------------


def test_a_connection_idle_longer_than_idle_seconds_is_not_reused(monkeypatch):
    monkeypatch.setattr(keepalive, "IDLE_SECONDS", 0.1)

    def make(server, connection, request):
        return [answer(b"c%d" % connection.index)]

    async def scenario():
        async with serving(keep_alive(make)) as server, pool_for(server.url()) as pool:
            responses = [await post(pool), await post(pool)]  # back to back: reused
            await asyncio.sleep(0.2)
            responses.append(await post(pool))  # after the idle limit: a new connection
            return server, responses, await server.wait_closed_by_client(0)

    server, responses, first_closed = run(scenario())
    assert responses == [Response(200, b"c0"), Response(200, b"c0"), Response(200, b"c1")]
    assert server.accepted == 2
    assert first_closed, "the expired connection was dropped from the pool but left open"


def test_a_connection_the_server_closed_while_idle_is_not_reused():
    async def handler(server, connection, reader, writer):
        await server.read_request(connection, reader)
        writer.write(answer(b"c%d" % connection.index))  # no Connection: close, then close anyway

    async def scenario():
        async with serving(handler) as server, pool_for(server.url()) as pool:
            first = await post(pool)
            await asyncio.sleep(0.05)  # the pool sees the server's close while the connection is idle
            second = await post(pool)
            return server, first, second

    server, first, second = run(scenario())
    assert (first, second) == (Response(200, b"c0"), Response(200, b"c1"))
    assert server.accepted == 2


def test_a_connection_the_server_closed_right_after_answering_is_not_reused():
    """The server answers (no Connection: close) and closes at once; the caller posts again at once.

    The pool must not write the next request into that dead connection (its end of stream is read
    only on the loop's next pass): the request would come back AnswerLost, for the bulk sender an
    unknown outcome never resent, although WeChat cannot have received it.
    """

    async def handler(server, connection, reader, writer):
        await server.read_request(connection, reader)
        writer.write(answer(b"c%d" % connection.index))

    async def scenario():
        async with serving(handler) as server, pool_for(server.url()) as pool:
            first = await post(pool)
            second = await post(pool)
            return server, first, second

    server, first, second = run(scenario())
    assert (first, second) == (Response(200, b"c0"), Response(200, b"c1"))
    assert [len(c.requests) for c in server.connections] == [1, 1]


def test_close_closes_the_idle_connections():
    def make(server, connection, request):
        return [0.05, answer(b"c%d" % connection.index)]

    async def scenario():
        async with serving(keep_alive(make)) as server, pool_for(server.url(), limit=2) as pool:
            await asyncio.gather(post(pool), post(pool))  # two connections, both idle afterwards
            assert server.accepted == 2
            assert not any(c.finished.is_set() for c in server.connections)
            pool.close()
            closed = [await server.wait_closed_by_client(i) for i in range(2)]
            after = await post(pool)  # a closed pool's connections are gone, not the pool
            return server, closed, after

    server, closed, after = run(scenario())
    assert closed == [True, True]
    assert after == Response(200, b"c2")
    assert server.accepted == 3


# -- TLS, with a certificate from a throwaway CA ------------------------------------------------------------


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> LocalCA:
    return local_ca(tmp_path_factory.mktemp("ca"))


def test_over_tls_posts_share_one_connection_and_chunked_answers_are_framed(ca):
    """Trust comes from REQUESTS_CA_BUNDLE, as for the synchronous client (requests)."""

    def make(server, connection, request):
        if len(connection.requests) == 1:
            return [CHUNKED_HEAD + b'1A\r\n{"errcode":0,"msgid":"m1"}\r\n', 0.02, b"0\r\n\r\n"]
        return [answer(b'{"errcode":0,"msgid":"m2"}')]

    async def scenario():
        async with (
            serving(keep_alive(make), ca.server_context("127.0.0.1")) as server,
            pool_for(server.url("/cgi-bin"), env={"REQUESTS_CA_BUNDLE": str(ca.bundle)}) as pool,
        ):
            return server, [await post(pool, b'{"n":1}'), await post(pool, b'{"n":2}')]

    server, responses = run(scenario())
    assert responses == [
        Response(200, b'{"errcode":0,"msgid":"m1"}'),
        Response(200, b'{"errcode":0,"msgid":"m2"}'),
    ]
    assert server.accepted == 1
    assert [(r.line, r.body) for r in server.requests] == [
        ("POST /cgi-bin/send HTTP/1.1", b'{"n":1}'),
        ("POST /cgi-bin/send HTTP/1.1", b'{"n":2}'),
    ]


@pytest.mark.parametrize(
    ("names", "trust"),
    [(("127.0.0.1",), "system"), (("wechat.example",), "local CA")],
    ids=["a certificate the system does not trust", "a certificate for another name"],
)
def test_a_tls_certificate_that_does_not_verify_is_not_sent(ca, names, trust):
    async def scenario():
        async with serving(keep_alive(lambda *_: [answer(OK)]), ca.server_context(*names)) as server:
            context = None if trust == "system" else ca.client_context()
            async with pool_for(server.url(), ssl_context=context) as pool:
                try:
                    await post(pool)
                finally:
                    await asyncio.sleep(0.05)
                    assert server.requests == []

    with pytest.raises(NotSent) as caught:
        run(scenario())
    assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)


def test_over_tls_refused_framing_is_lost_and_the_connection_not_reused(ca):
    def make(server, connection, request):
        if connection.index == 0:
            return [CHUNKED_HEAD + b'0x1A\r\n{"errcode":0,"msgid":"m1"}\r\n0\r\n\r\n']
        return [answer(b"fine")]

    async def scenario():
        async with (
            serving(keep_alive(make), ca.server_context("127.0.0.1")) as server,
            pool_for(server.url(), ssl_context=ca.client_context()) as pool,
        ):
            with pytest.raises(AnswerLost, match="malformed HTTP answer"):
                await post(pool)
            return server, await post(pool)

    server, after = run(scenario())
    assert after == Response(200, b"fine")
    assert server.accepted == 2


def test_over_tls_an_answer_cut_by_the_server_is_lost(ca):
    async def handler(server, connection, reader, writer):
        await server.read_request(connection, reader)
        await write_script(writer, [answer(b'{"errcode":0,"msgid":"m1"}')[:-5]])

    async def scenario():
        async with (
            serving(handler, ca.server_context("127.0.0.1")) as server,
            pool_for(server.url(), ssl_context=ca.client_context()) as pool,
        ):
            await post(pool)

    with pytest.raises(AnswerLost, match="before a complete answer"):
        run(scenario())


def test_over_tls_a_connection_the_server_closed_while_idle_is_not_reused(ca):
    async def handler(server, connection, reader, writer):
        await server.read_request(connection, reader)
        writer.write(answer(b"c%d" % connection.index))  # no Connection: close, then close_notify

    async def scenario():
        async with (
            serving(handler, ca.server_context("127.0.0.1")) as server,
            pool_for(server.url(), ssl_context=ca.client_context()) as pool,
        ):
            first = await post(pool)
            await asyncio.sleep(0.05)
            return server, first, await post(pool)

    server, first, second = run(scenario())
    assert (first, second) == (Response(200, b"c0"), Response(200, b"c1"))
    assert [len(c.requests) for c in server.connections] == [1, 1]


# -- through an HTTP proxy (CONNECT) -----------------------------------------------------------------------


class ConnectProxy:
    """A loopback proxy that opens CONNECT tunnels (or answers ``refuse`` instead) and records each."""

    def __init__(self, refuse: bytes | None = None, close_after_connect: bool = False) -> None:
        self.refuse = refuse
        self.close_after_connect = close_after_connect
        self.heads: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    def url(self, credentials: str = "") -> str:
        return f"http://{credentials}127.0.0.1:{self.port}"

    @property
    def targets(self) -> list[str]:
        return [head.split("\r\n", 1)[0] for head in self.heads]

    async def __aenter__(self) -> ConnectProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            self.heads.append(head)
            if self.refuse is not None:
                writer.write(self.refuse)
                await writer.drain()
                return
            method, authority, _ = head.split(" ", 2)
            assert method == "CONNECT"
            host, _, port = authority.rpartition(":")
            upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            if self.close_after_connect:
                upstream_writer.close()
                return
            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def numbered(server, connection, request):
    return [answer(b"c%d" % connection.index)]


@pytest.mark.parametrize("tls", [True, False], ids=["https via HTTPS_PROXY", "http via HTTP_PROXY"])
def test_requests_go_through_the_proxys_connect_tunnel_which_is_kept_alive(ca, tls):
    async def scenario():
        async with (
            serving(keep_alive(numbered), ca.server_context("127.0.0.1") if tls else None) as server,
            ConnectProxy() as proxy,
        ):
            variable = "HTTPS_PROXY" if tls else "HTTP_PROXY"
            env = {variable: proxy.url(), "REQUESTS_CA_BUNDLE": str(ca.bundle)}
            async with pool_for(server.url(), env=env) as pool:
                responses = [await post(pool, b"1"), await post(pool, b"2")]
            return server, proxy, responses

    server, proxy, responses = run(scenario())
    assert responses == [Response(200, b"c0"), Response(200, b"c0")]
    assert proxy.targets == [f"CONNECT 127.0.0.1:{server.port} HTTP/1.1"]  # one tunnel for both
    assert f"\r\nHost: 127.0.0.1:{server.port}\r\n" in proxy.heads[0]
    assert "Proxy-Authorization" not in proxy.heads[0]
    assert [r.body for r in server.requests] == [b"1", b"2"]
    assert server.requests[0].headers["host"] == f"127.0.0.1:{server.port}"


def test_the_proxy_variables_are_read_as_requests_reads_them(ca):
    """Lower case before upper case, ALL_PROXY when no scheme's own is set, and os.environ by default."""

    async def scenario(env_for):
        async with (
            serving(keep_alive(numbered), ca.server_context("127.0.0.1")) as server,
            ConnectProxy() as proxy,
            ConnectProxy() as other,
        ):
            env = env_for(proxy.url(), other.url())  # None: the pool reads os.environ
            async with pool_for(server.url(), ssl_context=ca.client_context(), env=env) as pool:
                await post(pool)
            return len(proxy.heads), len(other.heads)

    assert run(scenario(lambda mine, other: {"https_proxy": mine, "HTTPS_PROXY": other})) == (1, 0)
    assert run(scenario(lambda mine, other: {"ALL_PROXY": mine, "HTTP_PROXY": other})) == (1, 0)
    assert run(scenario(lambda mine, other: {"all_proxy": other, "HTTPS_PROXY": mine})) == (1, 0)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("https_proxy", "all_proxy", "no_proxy", "NO_PROXY", "ALL_PROXY"):
            patch.delenv(name, raising=False)

        def from_os_environ(mine, other):
            patch.setenv("HTTPS_PROXY", mine)
            return None

        assert run(scenario(from_os_environ)) == (1, 0)


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "localhost, 127.0.0.1", "127.0.0.0/8", "*"])
def test_no_proxy_naming_the_host_connects_directly(ca, no_proxy):
    async def scenario():
        async with (
            serving(keep_alive(numbered), ca.server_context("127.0.0.1")) as server,
            ConnectProxy() as proxy,
        ):
            env = {"HTTPS_PROXY": proxy.url(), "NO_PROXY": no_proxy}
            async with pool_for(server.url(), ssl_context=ca.client_context(), env=env) as pool:
                response = await post(pool)
            return server, proxy, response

    server, proxy, response = run(scenario())
    assert response == Response(200, b"c0")
    assert proxy.heads == []
    assert len(server.requests) == 1


def test_a_proxy_refusing_the_tunnel_is_not_sent_and_its_credentials_go_in_proxy_authorization(ca):
    refusal = (
        b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n"
        b"Content-Length: 0\r\n\r\n"
    )

    async def scenario():
        async with (
            serving(keep_alive(numbered), ca.server_context("127.0.0.1")) as server,
            ConnectProxy(refuse=refusal) as proxy,
        ):
            env = {"HTTPS_PROXY": proxy.url("ops%40tongzhi:s3cret%3A@")}
            async with pool_for(server.url(), ssl_context=ca.client_context(), env=env) as pool:
                try:
                    await post(pool)
                finally:
                    outcome["proxy"], outcome["server"] = proxy, server

    outcome: dict[str, Any] = {}
    with pytest.raises(NotSent, match="407 Proxy Authentication Required") as caught:
        run(scenario())
    assert "s3cret" not in str(caught.value)
    assert outcome["server"].accepted == 0
    (head,) = outcome["proxy"].heads
    authorization = next(line for line in head.split("\r\n") if line.startswith("Proxy-Authorization:"))
    assert base64.b64decode(authorization.split("Basic ", 1)[1]) == b"ops@tongzhi:s3cret:"


def test_a_proxy_that_cannot_be_reached_is_not_sent():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]

        async def scenario():
            env = {"HTTPS_PROXY": f"127.0.0.1:{port}"}  # no scheme: http://, as requests reads it
            async with pool_for("https://127.0.0.1:9", env=env) as pool:
                await post(pool)

        with pytest.raises(NotSent) as caught:
            run(scenario())
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


def test_a_tunnel_closed_before_the_tls_handshake_is_not_sent(ca):
    async def scenario():
        async with (
            serving(keep_alive(numbered), ca.server_context("127.0.0.1")) as server,
            ConnectProxy(close_after_connect=True) as proxy,
        ):
            env = {"HTTPS_PROXY": proxy.url()}
            async with pool_for(server.url(), ssl_context=ca.client_context(), env=env) as pool:
                try:
                    await post(pool)
                finally:
                    assert server.requests == []

    with pytest.raises(NotSent):
        run(scenario())


def test_a_proxy_that_never_answers_connect_is_not_sent_after_the_connect_timeout():
    accepted: list[asyncio.StreamWriter] = []

    async def scenario():
        silent = await asyncio.start_server(lambda reader, writer: accepted.append(writer), "127.0.0.1", 0)
        port = silent.sockets[0].getsockname()[1]
        env = {"HTTPS_PROXY": f"http://127.0.0.1:{port}"}
        try:
            async with pool_for(
                "https://127.0.0.1:9", env=env, connect_timeout=0.2, read_timeout=30.0
            ) as pool:
                started = time.monotonic()
                with pytest.raises(NotSent) as caught:
                    await post(pool)
                return caught.value, time.monotonic() - started
        finally:
            for writer in accepted:
                writer.close()
            silent.close()
            await silent.wait_closed()

    error, elapsed = run(scenario())
    assert isinstance(error.__cause__, TimeoutError)
    assert 0.18 <= elapsed < 10


@pytest.mark.parametrize(
    ("variable", "url"),
    [("HTTPS_PROXY", "socks5://ops:s3cret@127.0.0.1:1080"), ("all_proxy", "https://ops:s3cret@proxy:3128")],
)
def test_a_proxy_the_pool_cannot_use_is_refused_when_the_pool_is_made(variable, url):
    with pytest.raises(ValueError, match=f"{variable} names a .*http:// proxies only") as caught:
        KeepAlivePool(
            "https://api.weixin.qq.com", limit=1, connect_timeout=1, read_timeout=1, env={variable: url}
        )
    assert "s3cret" not in str(caught.value)
