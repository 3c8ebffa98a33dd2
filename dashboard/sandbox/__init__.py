"""A local imitation of WeChat's server APIs for subscribe messages, run as its own Flask app.

It judges every request with its own code and imports nothing from the rest of ``dashboard`` (style.md):
point Tongzhi's client at it with ``WECHAT_API_BASE=<SandboxServer.url>``.

    with SandboxServer({"USERS": 20}) as sb:
        requests.post(sb.url + "/cgi-bin/stable_token", json={...})

WeChat paths: /cgi-bin/token, /cgi-bin/stable_token, /sns/jscode2session, /cgi-bin/message/subscribe/send,
/wxaapi/newtmpl/*, /cgi-bin/openapi/quota/get, /cgi-bin/clear_quota, and for the linked Official Account
(OA_APPID, its own token) /cgi-bin/user/get, /cgi-bin/user/info/batchget,
/cgi-bin/template/get_all_private_template, /cgi-bin/message/template/send. Inspection API:
/sandbox/api/* (the OA's under /sandbox/api/oa/*). Human page: /sandbox/.
"""

from __future__ import annotations

import re
import secrets
import threading
from types import TracebackType
from typing import Any

from flask import Flask, redirect
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Response

from .actions import Sandbox
from .delivery import Pusher, oa_settings
from .settings import merge_config
from .state import SandboxState

__all__ = ["SandboxServer", "SandboxState", "create_sandbox_app"]


def create_sandbox_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the sandbox app with a freshly seeded in-memory world.

    ``config`` overrides settings.DEFAULTS (APPID, SECRET, TOKEN_TTL, USERS, PAGES, PUSH_*, faults, …).
    The Sandbox (state + push worker) is at ``app.extensions["sandbox"]``.

    :raise settings.SandboxConfigError: on an unusable configuration.
    """
    from . import api, inspection, oa_api, pages, seed

    merged = merge_config(config)
    app = Flask(__name__, template_folder="templates")
    # Only signs the flash cookie of the human page; nothing secret is behind it.
    app.config["SECRET_KEY"] = merged.get("SECRET_KEY") or secrets.token_hex(16)
    state = SandboxState(merged)
    seed.populate(state)
    app.extensions["sandbox"] = Sandbox(
        state=state, pusher=Pusher(state), oa_pusher=Pusher(state, oa_settings, _oa_push_log(state))
    )
    app.register_blueprint(api.bp)
    app.register_blueprint(oa_api.bp)
    app.register_blueprint(oa_api.inspect)
    app.register_blueprint(inspection.bp)
    app.register_blueprint(pages.bp)

    @app.get("/")
    def root() -> Response:
        return redirect("/sandbox/")

    return app


def _oa_push_log(state: SandboxState) -> Any:
    def log(record: Any) -> None:
        with state.lock:
            state.oa.log_push(record)

    return log


class _QuietHandler(WSGIRequestHandler):
    """Request handler that does not log each request (tests start many servers)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


_ACCESS_TOKEN = re.compile(r"(?<![A-Za-z0-9_])(access_token=)[^&#\s]*")


class _MaskingHandler(WSGIRequestHandler):
    """werkzeug's request log, the access token in a query string masked: the sandbox's tokens are
    stand-ins, but a request log is read by more people than should hold a token, and the habit is
    the point (Tongzhi's own log masks every token it learns)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # werkzeug logs the path, or the raw request line when the line was bad (no path then).
        self.requestline = _ACCESS_TOKEN.sub(r"\1***", self.requestline)
        path = getattr(self, "path", None)
        if path is None:
            super().log_request(code, size)
            return
        self.path = _ACCESS_TOKEN.sub(r"\1***", path)
        try:
            super().log_request(code, size)
        finally:
            self.path = path


class SandboxServer:
    """The sandbox app served on a background thread; a context manager (start on enter, stop on exit).

    ``port=0`` picks a free port; ``url`` is known after ``start()``. ``quiet`` suppresses request logs.
    """

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        quiet: bool = True,
    ) -> None:
        self.app = create_sandbox_app(config)
        self.host = host
        self.port = port
        self.quiet = quiet
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def sandbox(self) -> Sandbox:
        return self.app.extensions["sandbox"]

    @property
    def state(self) -> SandboxState:
        """The live in-memory state (hold ``state.lock`` when changing it)."""
        return self.sandbox.state

    @property
    def url(self) -> str:
        """Base URL such as ``http://127.0.0.1:54321`` (use as WECHAT_API_BASE)."""
        return f"http://{self.host}:{self.port}"

    def _make_server(self) -> BaseWSGIServer:
        handler = _QuietHandler if self.quiet else _MaskingHandler
        server = make_server(self.host, self.port, self.app, threaded=True, request_handler=handler)
        self.port = server.server_port
        return server

    def start(self) -> SandboxServer:
        """Bind and serve on a daemon thread; returns self."""
        if self._server is not None:
            raise RuntimeError("sandbox already started")
        self._server = self._make_server()
        # A short poll interval keeps stop() fast (shutdown waits for the next poll).
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sandbox-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the CLI's foreground mode)."""
        self._server = self._make_server()
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()
            self._server = None
            self.sandbox.pusher.close()
            if self.sandbox.oa_pusher is not None:
                self.sandbox.oa_pusher.close()

    def stop(self) -> None:
        """Stop serving, close the socket, and let queued pushes finish."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(5)
        self.sandbox.pusher.close()
        if self.sandbox.oa_pusher is not None:
            self.sandbox.oa_pusher.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
