"""One table of WeChat answers, read by both send paths: the synchronous client and the bulk funnel.

Each row is what came back on the wire (a status line and body, an answer cut off, no connection at all),
served by a scripted HTTP server on loopback. Both paths must give the row the same category, which is
what the dispatch engine's ``decide()`` turns into a delivery state and a ledger action: a category
that differs between the paths would spend a credit on one path and release it on the other.

The ``read`` column is the same answer to an idempotent call (the synchronous client's GETs), where a
lost answer is harmless to ask again for.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

import pytest

from dashboard.wechat.bulk import BulkSender, SendRequest
from dashboard.wechat.client import WeChatClient
from dashboard.wechat.errors import ErrorCategory, WeChatError, WeChatUnknownOutcome
from tests.import_graph import dashboard_graph, reachable

C = ErrorCategory
OK = ""  # WeChat accepted the message
NO_SERVER = None  # nothing listens: the connection is refused
CUT_OFF = b""  # the server reads the request and closes without a word


def answer(status: str, body: bytes = b"", *headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", *headers, f"Content-Length: {len(body)}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


def wechat(body: str) -> bytes:
    return answer("200 OK", body.encode(), "Content-Type: application/json; encoding=utf-8")


HTML = b"<html><body>denied</body></html>"


class StaticTokens:
    def get_token(self) -> str:
        return "static-token-0123456789"

    def invalidate(self, failed_token: str) -> None:
        pass


class NoTokens:
    """A token source that cannot hand out a token: WeChat refused it, or its own answer was lost."""

    def __init__(self, error: WeChatError) -> None:
        self.error = error

    def get_token(self) -> str:
        raise self.error

    def invalidate(self, failed_token: str) -> None:
        pass


@dataclass(frozen=True)
class Row:
    name: str
    wire: bytes | None  # what the server writes back, CUT_OFF, or NO_SERVER
    send: str  # the category both send paths give it ("" for success)
    read: str  # the category the synchronous client gives it on an idempotent call
    tokens: object = field(default_factory=StaticTokens)
    requests: int = 1  # how many requests the server reads (never more than one: a send is not repeated)


ROWS = [
    Row("accepted", wechat('{"errcode":0,"errmsg":"ok","msgid":1234567890123}'), OK, OK),
    Row(
        "no grant 43101",
        wechat('{"errcode":43101,"errmsg":"user refuse to accept the msg rid: 1"}'),
        C.NO_GRANT,
        C.NO_GRANT,
    ),
    Row(
        "content 47003",
        wechat('{"errcode":47003,"errmsg":"argument invalid! data.thing2.value"}'),
        C.CONTENT,
        C.CONTENT,
    ),
    Row("system busy -1", wechat('{"errcode":-1,"errmsg":"system error"}'), C.TRANSIENT, C.TRANSIENT),
    Row(
        "daily quota 45009",
        wechat('{"errcode":45009,"errmsg":"reach max api daily quota limit"}'),
        C.QUOTA,
        C.QUOTA,
    ),
    Row("stale token 40001", wechat('{"errcode":40001,"errmsg":"invalid credential"}'), C.TOKEN, C.TOKEN),
    Row("errcode as a string", wechat('{"errcode":"43101","errmsg":"no"}'), C.NO_GRANT, C.NO_GRANT),
    Row("a code nobody knows", wechat('{"errcode":99999,"errmsg":"new"}'), C.OTHER, C.OTHER),
    # WeChat answers JSON objects: anything else on a 200 cannot be read, and the send may have happened.
    Row("200 with HTML", answer("200 OK", HTML, "Content-Type: text/html"), C.UNKNOWN, C.TRANSIENT),
    Row("200 with a JSON array", wechat("[1, 2]"), C.UNKNOWN, C.TRANSIENT),
    # 3xx/4xx: a wrong WECHAT_API_BASE or a proxy refused the request before WeChat's send logic saw it.
    Row(
        "301 to another host",
        answer("301 Moved Permanently", b"", "Location: https://example.com/"),
        C.CONFIG,
        C.CONFIG,
    ),
    Row(
        "302 to a login page",
        answer("302 Found", HTML, "Location: https://login.example/"),
        C.CONFIG,
        C.CONFIG,
    ),
    Row("400 from a proxy", answer("400 Bad Request", HTML), C.CONFIG, C.CONFIG),
    Row("403 from a proxy", answer("403 Forbidden", HTML), C.CONFIG, C.CONFIG),
    Row("404 wrong base URL", answer("404 Not Found", HTML), C.CONFIG, C.CONFIG),
    Row(
        "407 proxy login",
        answer("407 Proxy Authentication Required", HTML, 'Proxy-Authenticate: Basic realm="x"'),
        C.CONFIG,
        C.CONFIG,
    ),
    # Refused before being handled, by definition: try again later.
    Row("408 request timeout", answer("408 Request Timeout", HTML), C.TRANSIENT, C.TRANSIENT),
    Row(
        "429 rate limited", answer("429 Too Many Requests", HTML, "Retry-After: 1"), C.TRANSIENT, C.TRANSIENT
    ),
    # 5xx: whoever answered may have passed the request on first; a send that may have happened is unknown.
    Row("500 server error", answer("500 Internal Server Error", HTML), C.UNKNOWN, C.TRANSIENT),
    Row("502 bad gateway", answer("502 Bad Gateway", HTML), C.UNKNOWN, C.TRANSIENT),
    Row("503 unavailable", answer("503 Service Unavailable", HTML), C.UNKNOWN, C.TRANSIENT),
    Row("504 gateway timeout", answer("504 Gateway Timeout", HTML), C.UNKNOWN, C.TRANSIENT),
    # ...except the 5xx that say the request was refused for what it is, never after acting on it.
    Row("501 not implemented", answer("501 Not Implemented", HTML), C.CONFIG, C.CONFIG),
    Row("505 version refused", answer("505 HTTP Version Not Supported", HTML), C.CONFIG, C.CONFIG),
    Row("511 network login", answer("511 Network Authentication Required", HTML), C.CONFIG, C.CONFIG),
    # No answer at all.
    Row("answer lost", CUT_OFF, C.UNKNOWN, C.TRANSIENT),
    Row("answer cut mid-body", answer("200 OK", b'{"errcode":0,"errmsg":"ok"}')[:-8], C.UNKNOWN, C.TRANSIENT),
    Row("never connected", NO_SERVER, C.TRANSIENT, C.TRANSIENT, requests=0),
    # No access token, so no request: what stopped it is kept when it says what to do, else transient.
    Row(
        "no token: wrong AppSecret",
        wechat('{"errcode":0,"errmsg":"ok","msgid":1}'),
        C.CONFIG,
        C.CONFIG,
        tokens=NoTokens(WeChatError(40125, "invalid appsecret")),
        requests=0,
    ),
    Row(
        "no token: its answer was lost",
        wechat('{"errcode":0,"errmsg":"ok","msgid":1}'),
        C.TRANSIENT,
        C.TRANSIENT,
        tokens=NoTokens(WeChatUnknownOutcome("ReadTimeout on POST /cgi-bin/stable_token")),
        requests=0,
    ),
]


class ScriptedServer:
    """Answers every request on loopback with the same bytes (one request per connection), counting requests."""

    def __init__(self, wire: bytes) -> None:
        self.wire = wire
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(1)
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(5)
                request = self._read_request(connection)
                if request is None:
                    continue
                self.requests.append(request)
                if self.wire:
                    connection.sendall(self.wire)

    @staticmethod
    def _read_request(connection: socket.socket) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(body) < length:
            body += connection.recv(65536)
        return head

    def close(self) -> None:
        self._stop.set()
        with socket.create_connection(("127.0.0.1", self.port)):
            pass  # wakes the accept loop, which then sees the stop
        self._thread.join(5)
        self.listener.close()


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


MESSAGE = {"touser": "o-user-1", "template_id": "tmpl-1", "data": {"thing2": "咖啡豆"}}


def sync_send(base: str, tokens) -> tuple[str, str | None]:
    """(category, msgid) of one send through the synchronous client."""
    with WeChatClient("wx-app", "app-secret", base, tokens=tokens, read_timeout=3) as client:
        try:
            msgid = client.send_subscribe_message(**MESSAGE)
        except WeChatUnknownOutcome as error:
            assert error.category is C.UNKNOWN
            return error.category.value, None
        except WeChatError as error:
            assert error.category is not C.UNKNOWN, "an unknown outcome is always a WeChatUnknownOutcome"
            return error.category.value, None
    return OK, msgid


def bulk_send(base: str, tokens) -> tuple[str, str | None]:
    """(category, msgid) of one send through the bulk funnel."""
    sender = BulkSender(base, tokens, concurrency=2, read_timeout=3)
    try:
        [outcome] = sender.send(
            [SendRequest("key", MESSAGE["touser"], MESSAGE["template_id"], MESSAGE["data"])]
        )
    finally:
        sender.close()
    assert outcome.key == "key"
    return outcome.category, outcome.msgid


def sync_read(base: str, tokens) -> str:
    """The category of an idempotent call (gettemplate) through the synchronous client."""
    with WeChatClient("wx-app", "app-secret", base, tokens=tokens, read_timeout=3) as client:
        try:
            client.get_templates()
        except WeChatUnknownOutcome:
            return C.UNKNOWN.value
        except WeChatError as error:
            return error.category.value
    return OK


def served(row: Row, call):
    """Run ``call(base_url, tokens)`` against the row's server; returns (result, requests the server read)."""
    if row.wire is NO_SERVER:
        return call(closed_port_url(), row.tokens), 0
    server = ScriptedServer(row.wire)
    try:
        result = call(server.url, row.tokens)
    finally:
        server.close()
    return result, len(server.requests)


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_both_send_paths_read_each_answer_the_same_way(row):
    (sync_category, sync_msgid), sync_requests = served(row, sync_send)
    (bulk_category, bulk_msgid), bulk_requests = served(row, bulk_send)
    assert sync_category == bulk_category == row.send, (sync_category, bulk_category)
    # A send is never repeated by either path (a token error is retried only with a different token).
    assert sync_requests == bulk_requests == row.requests
    if row.send == OK:
        assert sync_msgid == bulk_msgid == "1234567890123"


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_an_idempotent_call_may_be_asked_again_after_a_lost_answer(row):
    category, _ = served(row, sync_read)
    assert category == row.read


def test_the_send_paths_share_the_protocol_module_and_not_each_other():
    """No import loop between the two paths (imports inside functions included): both lean on
    ``protocol``, which imports neither; only the client builds a bulk funnel."""
    graph = dashboard_graph()
    assert "dashboard.wechat.client" not in reachable(graph, "dashboard.wechat.bulk")
    assert {"dashboard.wechat.protocol", "dashboard.wechat.bulk"} <= set(
        reachable(graph, "dashboard.wechat.client")
    )
    from_protocol = reachable(graph, "dashboard.wechat.protocol")
    assert "dashboard.wechat.client" not in from_protocol and "dashboard.wechat.bulk" not in from_protocol


def test_a_proxy_refusing_the_tunnel_means_the_send_never_left(monkeypatch):
    """``HTTPS_PROXY`` set and the proxy answers CONNECT with 407: requests raises ProxyError before a
    byte of the send went through, so it is not ``unknown`` (the synchronous client; the bulk funnel's
    tunnel is the keep-alive pool's, which reports it as ``NotSent``)."""
    proxy = ScriptedServer(
        answer("407 Proxy Authentication Required", HTML, 'Proxy-Authenticate: Basic realm="x"')
    )
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    try:
        category, _ = sync_send("https://api.weixin.qq.com", StaticTokens())
    finally:
        proxy.close()
    assert category == C.TRANSIENT
    assert [request.split(b" ", 2)[:2] for request in proxy.requests] == [
        [b"CONNECT", b"api.weixin.qq.com:443"]
    ]


def test_the_bulk_funnel_scrubs_both_accounts_secrets_from_what_it_reports():
    """The funnel carries the mini-program's and the Official Account's sends: an answer echoing either
    AppSecret (a proxy's error page, a misconfigured gateway) is reported without it."""
    echoed = '{"errcode":40013,"errmsg":"invalid appid: mp MP-SECRET-123 oa OA-SECRET-456"}'
    server = ScriptedServer(wechat(echoed))
    miniprogram = WeChatClient("wx-app", "MP-SECRET-123", server.url, tokens=StaticTokens())
    official_account = WeChatClient("wx-oa", "OA-SECRET-456", server.url, tokens=StaticTokens())
    sender = miniprogram.bulk_sender(2, also_for=official_account)
    try:
        [outcome] = sender.send([SendRequest("key", "o-user-1", "tmpl-1", {"thing2": "x"})])
    finally:
        sender.close()
        server.close()
    assert outcome.errcode == 40013 and "invalid appid" in outcome.errmsg
    assert "MP-SECRET-123" not in outcome.errmsg and "OA-SECRET-456" not in outcome.errmsg
