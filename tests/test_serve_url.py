"""`make run`'s start-up text names the URL that really serves, for the port and host it was given."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from dashboard.serve import browse_url, describe_listening

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 5000, "http://127.0.0.1:5000"),
        ("0.0.0.0", 8000, "http://127.0.0.1:8000"),  # noqa: S104
        ("::", 8000, "http://[::1]:8000"),
        ("::1", 8001, "http://[::1]:8001"),
        ("console.example.com", 80, "http://console.example.com:80"),
    ],
)
def test_the_url_a_browser_on_this_machine_opens(host, port, url):
    assert browse_url(host, port) == url


def test_listening_everywhere_says_so():
    line = describe_listening("0.0.0.0", 8000)  # noqa: S104
    assert "http://127.0.0.1:8000/login" in line and "every interface" in line and "port 8000" in line
    assert "every interface" not in describe_listening("127.0.0.1", 8000)


def test_the_demo_admin_prints_the_login_url_of_the_port_given(app, runner):
    result = runner.invoke(args=["demo-admin", "--host", "0.0.0.0", "--port", "8123"])  # noqa: S104
    assert result.exit_code == 0, result.output
    assert "Log in at http://127.0.0.1:8123/login with" in result.output


def test_the_makefile_gives_the_demo_admin_the_port_it_serves():
    makefile = (ROOT / "Makefile").read_text()
    assert "demo-admin --host $(HOST) --port $(PORT)" in makefile
    assert "serve --host $(HOST) --port $(PORT)" in makefile


def test_flask_serve_answers_at_the_url_it_prints(tmp_path):
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("WECHAT_", "TEST_DATABASE", "REDIS", "DATABASE"))
    }
    # WeChat credentials set: no sandbox to start, only the dashboard and its worker.
    env.update(
        FLASK_APP="wsgi",
        TONGZHI_ENV="embedded",
        DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}",
        TONGZHI_INSTANCE_PATH=str(tmp_path),
        SECRET_KEY="serve-test-secret-key-0123456789abcdef",
        WECHAT_APPID="wx0000000000000000",
        WECHAT_SECRET="0" * 32,
        WECHAT_API_BASE="http://127.0.0.1:9",
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "flask", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = ""
        deadline = time.monotonic() + 30
        while "Tongzhi on" not in line and time.monotonic() < deadline:
            line = server.stdout.readline()
            assert line or server.poll() is None, "flask serve exited"
        assert f"Tongzhi on http://127.0.0.1:{port} (log in at http://127.0.0.1:{port}/login)" in line
        deadline = time.monotonic() + 20
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/login", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "nothing answered at the printed URL"
                time.sleep(0.1)
        assert response.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stdout.close()
