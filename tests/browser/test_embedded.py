"""`make run` as a new user meets it: the embedded default starts the WeChat sandbox beside the
dashboard, shows the sandbox banner, and the sandbox's simulated users are one click away.

This drives the real `flask serve` command in a child process (the same command `make run` ends
with), logs in with the printed demo credentials, and looks at the pages in Chromium.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}: {process.stdout.read()}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"nothing answered on {url}")


def child_commands(pid: int, program: str) -> list[str]:
    """The last argument of each child process of ``pid`` whose command line mentions ``program`` (Linux)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:  # a thread that ended while we looked (the server's threads come and go)
            continue
        for child in children:
            try:
                arguments = Path(f"/proc/{child}/cmdline").read_bytes().decode().split("\0")
            except OSError:
                continue
            if any(program in argument for argument in arguments):
                found.append([a for a in arguments if a][-1])
    return found


@pytest.fixture
def embedded_server(tmp_path):
    """`flask serve` with the embedded defaults: no WeChat credentials, so sandbox mode."""
    port, sandbox_port = free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("WECHAT_", "TEST_DATABASE", "REDIS", "DATABASE"))
    }
    env.update(
        FLASK_APP="wsgi",
        TONGZHI_ENV="embedded",
        DATABASE_URL=f"sqlite:///{tmp_path / 'embedded.db'}",
        SECRET_KEY="embedded-test-secret-key-0123456789",
        SANDBOX_PORT=str(sandbox_port),
    )
    flask = [sys.executable, "-m", "flask"]
    created = subprocess.run(
        [*flask, "demo-admin"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    password = re.search(r"password: (\S+)", created.stdout).group(1)
    server = subprocess.Popen(
        [*flask, "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/login", server)
        assert child_commands(server.pid, "flask") == ["worker"], "flask serve starts one dispatch worker"
        yield {
            "url": base,
            "sandbox": f"http://127.0.0.1:{sandbox_port}",
            "password": password,
            "database_url": env["DATABASE_URL"],
            # For a CLI command beside the server (``flask sync-followers``): the same settings.
            "env": env,
        }
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stdout.close()
    # Stopping the dashboard stops the sandbox it started.
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{sandbox_port}/sandbox/api/state", timeout=2)


def test_make_run_shows_the_sandbox_banner_and_users_page(embedded_server, page, screenshot_dir):
    base = embedded_server["url"]
    page.goto(f"{base}/login")
    expect(page.locator(".sandbox-banner")).to_contain_text("沙箱模式")
    page.fill("input[name=email]", "admin@tongzhi.local")
    page.fill("input[name=password]", embedded_server["password"])
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")
    banner = page.locator(".sandbox-banner a")
    assert banner.get_attribute("href") == f"{embedded_server['sandbox']}/sandbox/"

    page.goto(f"{base}/settings/")
    page.click("text=检查连接")
    expect(page.locator("#wechat-check")).to_contain_text("微信已应答")
    page.screenshot(path=str(screenshot_dir / "settings-sandbox.png"), full_page=True)
    assert page.console_errors == []

    page.goto(banner.get_attribute("href"))
    expect(page.locator("body")).to_contain_text("300")  # the seeded simulated users
    page.screenshot(path=str(screenshot_dir / "sandbox-users.png"), full_page=True)

    # A person taps 允许 for a user in the sandbox, as in WeChat's popup: the sandbox reports it to
    # Tongzhi's mini-program API and pushes the popup event; the user's page shows one credit.
    first_user = page.locator("table a code").first
    openid = first_user.inner_text()
    first_user.click()
    page.locator("button.accept").first.click()
    # Both the report and the popup event arrive, and they count once.
    engine = sa.create_engine(embedded_server["database_url"])
    try:
        deadline = time.monotonic() + 10
        while True:
            with engine.connect() as connection:
                sources = (
                    connection.execute(
                        sa.text(
                            "SELECT e.source FROM grant_event e JOIN wechat_user u ON u.id = e.user_id WHERE u.openid = :o"
                        ),
                        {"o": openid},
                    )
                    .scalars()
                    .all()
                )
                credits = connection.execute(
                    sa.text(
                        "SELECT b.credits FROM grant_balance b JOIN wechat_user u ON u.id = b.user_id WHERE u.openid = :o"
                    ),
                    {"o": openid},
                ).scalar()
            if sorted(sources) == ["client", "popup_event"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        engine.dispose()
    assert sorted(sources) == ["client", "popup_event"] and credits == 1
    page.goto(f"{base}/users?q={openid}")
    page.locator(f"text={openid}").first.click()
    expect(page.locator("main")).to_contain_text("允许")
    expect(page.locator("main")).to_contain_text("1 次")
