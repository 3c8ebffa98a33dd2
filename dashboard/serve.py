"""``flask serve``: the embedded product in one command.

Serves the dashboard, starts one dispatch worker (``flask worker``) beside it, and in sandbox mode
(embedded, no WeChat credentials) the WeChat sandbox too — each a separate process; the dashboard
never imports the sandbox — and stops them again on exit.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import click
import requests
from flask import Flask, current_app
from flask.cli import with_appcontext
from werkzeug.serving import run_simple

SANDBOX_USERS = 300
READY_TIMEOUT_SECONDS = 20
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
# Addresses that mean "every interface": a browser on this machine reaches them on the loopback.
ALL_INTERFACES = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104 (names, not a bind)


def browse_url(host: str, port: int) -> str:
    """The URL a browser on this machine opens for a server bound to ``host``:``port``."""
    host = ALL_INTERFACES.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"http://{host}:{port}"


def describe_listening(host: str, port: int) -> str:
    """The start-up line: the URL that really serves, and what it means beyond this machine."""
    url = browse_url(host, port)
    if host in ALL_INTERFACES:
        return (
            f"Tongzhi on {url} (log in at {url}/login), with a dispatch worker; listening on every "
            f"interface ({host or 'all'}), so other machines reach it at this machine's address, port {port}"
        )
    return f"Tongzhi on {url} (log in at {url}/login), with a dispatch worker"


def _answers(base: str) -> bool:
    try:
        requests.get(f"{base}/sandbox/api/state", timeout=1)
    except requests.ConnectionError:
        return False
    return True


def start_worker() -> subprocess.Popen:
    # Same interpreter, same environment (and .flaskenv), so the worker sees the same settings.
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker"])  # noqa: S603 (fixed arguments)


def start_sandbox(app: Flask, dashboard_url: str) -> subprocess.Popen:
    """The sandbox, pushing its events to our /wechat/push and reporting taps to our /api/mp, as a real
    mini-program and WeChat would."""
    config = app.config
    port = config["SANDBOX_PORT"]
    command = [
        sys.executable,
        "-m",
        "dashboard.sandbox",
        "--port",
        str(port),
        "--appid",
        config["WECHAT_APPID"],
        "--secret",
        config["WECHAT_SECRET"],
        "--users",
        str(SANDBOX_USERS),
        "--push-url",
        f"{dashboard_url}/wechat/push",
        "--push-token",
        config["WECHAT_PUSH_TOKEN"],
        "--mp-api-base",
        f"{dashboard_url}/api/mp",
    ]
    if config.get("WECHAT_PUSH_AES_KEY"):
        # With an EncodingAESKey Tongzhi accepts secure-mode pushes only.
        command += ["--push-mode", "secure", "--push-aes-key", config["WECHAT_PUSH_AES_KEY"]]
    if config.get("WECHAT_OA_APPID"):
        # The sandbox's linked Official Account, pushing its events to our /wechat/oa-push.
        command += [
            "--oa-appid",
            config["WECHAT_OA_APPID"],
            "--oa-secret",
            config["WECHAT_OA_SECRET"],
            "--oa-push-url",
            f"{dashboard_url}/wechat/oa-push",
            "--oa-push-token",
            config.get("WECHAT_OA_PUSH_TOKEN") or "",
        ]
        if config.get("WECHAT_OA_PUSH_AES_KEY"):
            command += ["--oa-push-aes-key", config["WECHAT_OA_PUSH_AES_KEY"]]
    base = config["WECHAT_API_BASE"]
    if _answers(base):
        # Another sandbox (say, left over from an earlier run) would answer for ours and be used blindly.
        raise click.ClickException(
            f"Something already answers on {base}: stop it (an earlier sandbox?) or set SANDBOX_PORT."
        )
    child = subprocess.Popen(command)  # noqa: S603 (our own interpreter and module, fixed arguments)
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise click.ClickException(f"The WeChat sandbox exited at start (port {port} taken?).")
        try:
            requests.get(f"{base}/sandbox/api/state", timeout=1)
            return child
        except requests.ConnectionError:
            time.sleep(0.2)
    child.terminate()
    raise click.ClickException(
        f"The WeChat sandbox did not answer on {base} within {READY_TIMEOUT_SECONDS} s."
    )


@click.command("serve")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="Port to listen on.")
@with_appcontext
def serve_command(host: str, port: int) -> None:
    """Serve the dashboard with a dispatch worker (and the WeChat sandbox in sandbox mode) until interrupted."""
    app = current_app._get_current_object()
    children: list[subprocess.Popen] = []
    # A service manager stops us with SIGTERM: turn it into a normal exit so the sandbox stops too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        if app.config["SANDBOX_MODE"]:
            children.append(start_sandbox(app, browse_url(host, port)))
            base = app.config["WECHAT_API_BASE"]
            click.echo(
                f"Sandbox mode: WeChat is imitated by the sandbox at {base} (users page: {base}/sandbox/)"
            )
        children.append(start_worker())
        click.echo(describe_listening(host, port))
        run_simple(host, port, app, threaded=True)
    finally:
        for child in children:
            child.terminate()
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
