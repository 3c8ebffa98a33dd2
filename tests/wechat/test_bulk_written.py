"""The bulk funnel says when a batch has been written, before its answers are back.

The engine waits for that signal before its database work, so the sending thread writes the batch
without competing for the interpreter (``dispatch.sender.PendingBatch.wait_written``). A request given
up before writing (no token, no connection) counts as done: the signal never waits for the answers.
"""

from __future__ import annotations

import socket
import threading

from dashboard.wechat.bulk import BulkSender, SendRequest
from dashboard.wechat.errors import ErrorCategory, WeChatError
from tests.wechat.test_protocol import NoTokens, ScriptedServer, StaticTokens, closed_port_url, wechat

OK_WIRE = wechat('{"errcode":0,"errmsg":"ok","msgid":1}')


class HoldingServer:
    """Reads each request on its own thread, then answers only once ``release`` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.read = threading.Semaphore(0)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(10)
            if ScriptedServer._read_request(connection) is None:
                return
            self.read.release()
            self.release.wait(10)
            connection.sendall(OK_WIRE)

    def close(self) -> None:
        self.release.set()
        self.listener.close()


def requests(count: int) -> list[SendRequest]:
    return [SendRequest(k, f"o-user-{k}", "tmpl-1", {"thing2": "咖啡豆"}) for k in range(count)]


def test_a_batch_is_written_before_its_answers_come_back():
    server = HoldingServer()
    sender = BulkSender(server.url, StaticTokens(), concurrency=4, read_timeout=10)
    try:
        written = threading.Event()
        future = sender.submit(requests(3), written)
        assert written.wait(5), "the batch was never reported written"
        for _ in range(3):  # the server did read every request: written means on the wire
            assert server.read.acquire(timeout=5)
        assert not future.done(), "no answer was sent yet"
        server.release.set()
        outcomes = future.result(timeout=10)
        assert [outcome.key for outcome in outcomes] == [0, 1, 2]
        assert all(outcome.category == "" and outcome.msgid == "1" for outcome in outcomes)
    finally:
        sender.close()
        server.close()


def test_requests_given_up_before_writing_count_as_written():
    no_token = BulkSender(
        closed_port_url(), NoTokens(WeChatError(40001, "invalid credential")), concurrency=2, read_timeout=3
    )
    no_server = BulkSender(closed_port_url(), StaticTokens(), concurrency=2, read_timeout=3)
    try:
        for sender in (no_token, no_server):
            written = threading.Event()
            outcomes = sender.submit(requests(2), written).result(timeout=10)
            assert written.is_set()
            assert all(outcome.category for outcome in outcomes), "nothing was sent"
        assert {o.category for o in no_server.send(requests(1))} == {ErrorCategory.TRANSIENT.value}
    finally:
        no_token.close()
        no_server.close()


def test_an_empty_batch_is_written_at_once():
    sender = BulkSender(closed_port_url(), StaticTokens(), concurrency=2, read_timeout=3)
    try:
        written = threading.Event()
        assert sender.submit([], written).result(timeout=5) == []
        assert written.is_set()
    finally:
        sender.close()
