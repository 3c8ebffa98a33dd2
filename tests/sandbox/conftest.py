"""Fixtures for the sandbox tests: a running SandboxServer and a tiny push receiver."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dashboard.sandbox import SandboxServer


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., SandboxServer]]:
    """Start sandboxes with a given config; all are stopped at teardown."""
    started: list[SandboxServer] = []

    def make(**config: Any) -> SandboxServer:
        server = SandboxServer({"USERS": 20, **config}).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def sandbox(make_sandbox: Callable[..., SandboxServer]) -> SandboxServer:
    return make_sandbox()


class Receiver:
    """Collects pushed requests: ``get()`` returns {method, path, query, headers, body} in arrival order."""

    def __init__(self) -> None:
        self.received: queue.Queue[dict[str, Any]] = queue.Queue()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                item = {
                    "method": self.command,
                    "path": parts.path,
                    "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
                    "headers": dict(self.headers),
                    "body": self.rfile.read(length) if length else b"",
                }
                received.put(item)
                return item

            def do_POST(self) -> None:
                self._record()
                self._answer(b"success")

            def do_GET(self) -> None:
                item = self._record()
                self._answer(item["query"].get("echostr", "").encode())

            def _answer(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/wechat/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def get(self, timeout: float = 5.0) -> dict[str, Any]:
        return self.received.get(timeout=timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()
