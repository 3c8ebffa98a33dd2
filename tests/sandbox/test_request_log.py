"""The sandbox's request log (``make run`` prints it) masks access tokens like Tongzhi's own log."""

from __future__ import annotations

import logging

import requests

from dashboard.sandbox import SandboxServer

from .helpers import stable_token


def test_the_request_log_masks_the_access_token(caplog):
    caplog.set_level(logging.INFO, logger="werkzeug")
    with SandboxServer(quiet=False) as sandbox:
        token = stable_token(sandbox.url)["access_token"]
        requests.get(f"{sandbox.url}/cgi-bin/openapi/quota/get?access_token={token}&x=1", timeout=10)
    logged = "\n".join(record.getMessage() for record in caplog.records if record.name == "werkzeug")
    assert "/cgi-bin/openapi/quota/get?access_token=***&x=1" in logged
    assert token not in logged
