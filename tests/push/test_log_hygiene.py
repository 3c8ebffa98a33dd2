"""Signed query strings never reach a log: an access log that keeps a push's signature, nonce and
timestamp hands them to whoever reads it (werkzeug's log in development, gunicorn's in production)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from dashboard.sandbox.push import build_envelope, signature
from tests.api.live import AES_KEY, PUSH_TOKEN
from tests.push.helpers import APPID, configure_for, popup, settings

ROOT = Path(__file__).resolve().parents[2]
SIGNED = ("signature", "msg_signature", "nonce", "timestamp", "echostr")


@pytest.fixture
def config_overrides():
    return {"WECHAT_APPID": APPID, "WECHAT_PUSH_TOKEN": PUSH_TOKEN, "WECHAT_PUSH_AES_KEY": AES_KEY}


def signed_requests(base: str, mode: str) -> list[str]:
    """A push and a URL check against ``base``; the signed values they carried."""
    envelope = build_envelope(popup(("TA", "accept")), settings(mode=mode))
    reply = requests.post(
        f"{base}/wechat/push",
        params=envelope.params,
        data=envelope.body,
        headers={"Content-Type": envelope.content_type},
        timeout=10,
    )
    assert reply.status_code == 200 and reply.text == "success", reply.text
    timestamp, nonce = str(int(time.time())), "7654321098"
    check = {
        "signature": signature(PUSH_TOKEN, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "echostr": "echo4711echo",
    }
    answer = requests.get(f"{base}/wechat/push", params=check, timeout=10)
    assert answer.text == "echo4711echo"
    return [value for params in (envelope.params, check) for key, value in params.items() if key in SIGNED]


def assert_clean(lines: list[str], values: list[str]) -> None:
    assert len(lines) == 2, lines  # the push and the URL check were both logged...
    for line in lines:
        for value in values:
            assert value not in line, line  # ...without a signed value
    assert "signature=***" in lines[0] and "echostr=***" in lines[1]


@pytest.mark.parametrize("mode", ["plaintext", "secure"])
def test_the_werkzeug_access_log_carries_no_signed_value(app, live_server, caplog, mode):
    configure_for(app, mode)
    caplog.set_level(logging.INFO, logger="werkzeug")
    values = signed_requests(live_server, mode)
    assert_clean([r.getMessage() for r in caplog.records if "/wechat/push" in r.getMessage()], values)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_gunicorn_access_log_carries_no_signed_value(tmp_path):
    """The README's production command with an access log, in a real gunicorn worker."""
    port = _free_port()
    access_log = tmp_path / "access.log"
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "TONGZHI_", "FLASK_"))}
    kept.pop("DATABASE_URL", None)
    kept.pop("REDIS_URL", None)
    env = {
        **kept,
        "TONGZHI_ENV": "embedded",
        "TONGZHI_INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'tongzhi.db'}",
        "WECHAT_PUSH_TOKEN": PUSH_TOKEN,
    }
    gunicorn = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "1",
            "--bind",
            f"127.0.0.1:{port}",
            "--access-logfile",
            str(access_log),
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{base}/login", timeout=5)  # the worker migrates the new database first
                break
            except requests.RequestException:
                assert gunicorn.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        values = signed_requests(base, "plaintext")  # no AES key configured: plaintext it is
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=10)
    lines = [line for line in access_log.read_text().splitlines() if "/wechat/push" in line]
    assert_clean(lines, values)


@pytest.mark.parametrize(
    "line,expected",
    [
        (
            "POST /wechat/push?signature=ab12&timestamp=1796190000&nonce=42&encrypt_type=aes&msg_signature=cd34",
            "POST /wechat/push?signature=***&timestamp=***&nonce=***&encrypt_type=aes&msg_signature=***",
        ),
        # gunicorn's %(q)s: the query without its "?"
        ('"signature=ab12&echostr=hello%20there" 200', '"signature=***&echostr=***" 200'),
        ("GET /x?Signature=AB12 HTTP/1.1", "GET /x?Signature=*** HTTP/1.1"),
        ("GET /x?x_nonce=1&nonces=2 HTTP/1.1", "GET /x?x_nonce=1&nonces=2 HTTP/1.1"),
    ],
)
def test_signed_query_values_are_masked_and_nothing_else(line, expected):
    from dashboard.log_redaction import redact_signed_query

    assert redact_signed_query(line) == expected
