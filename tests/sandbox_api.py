"""The sandbox as tests see it: a real server on loopback and its inspection API.

Nothing here mocks ``requests``: every call crosses a real socket to ``dashboard.sandbox``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from dashboard.sandbox import SandboxServer

SANDBOX_SECRET = "sandbox-secret-0123456789"
_PLACEHOLDER = re.compile(r"\{\{(\w+?)\.DATA\}\}")


class SandboxApi:
    """The sandbox's inspection API (``/sandbox/api``), plus the WeChat facts a test needs."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.url = server.url
        self.appid: str = server.state.config["APPID"]
        self.secret: str = server.state.config["SECRET"]

    def get(self, path: str, **params: Any) -> Any:
        response = requests.get(f"{self.url}/sandbox/api{path}", params=params, timeout=10)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: Any = None) -> Any:
        response = requests.post(f"{self.url}/sandbox/api{path}", json=body or {}, timeout=10)
        response.raise_for_status()
        return response.json()

    def state(self) -> dict[str, Any]:
        return self.get("/state")

    def stable_calls(self) -> int:
        return self.state()["token_calls"]["stable"]

    def stable_fetches(self) -> int:
        return self.state()["token_fetches"]["stable"]

    def faults(self, **faults: Any) -> None:
        self.post("/faults", faults)

    def openids(self) -> list[str]:
        return [user["openid"] for user in self.get("/users")["users"]]

    def openids_all(self) -> list[str]:
        """Every simulated user's openid (the /users listing is paged)."""
        first = self.get("/users", per_page=500, page=1)
        openids = [user["openid"] for user in first["users"]]
        page = 2
        while len(openids) < first["total"]:
            openids += [user["openid"] for user in self.get("/users", per_page=500, page=page)["users"]]
            page += 1
        return openids

    def templates(self, type_: int = 2) -> list[dict[str, Any]]:
        return [t for t in self.get("/templates")["templates"] if t["type"] == type_]

    def grant(self, openid: str, template_id: str, times: int = 1) -> None:
        for _ in range(times):
            self.post(f"/users/{openid}/prompt", {"templates": {template_id: "accept"}})

    def messages(self) -> list[dict[str, Any]]:
        return self.get("/messages")["messages"]

    def messages_all(self) -> list[dict[str, Any]]:
        """Every message the sandbox received (``messages()`` returns the sandbox's default page)."""
        return self.get("/messages", limit=1_000_000)["messages"]

    def expire_tokens(self) -> None:
        self.post("/tokens/expire", {"kind": "stable"})

    def force_rotate(self) -> None:
        """Someone else (another system with the same AppSecret) force-refreshes the stable token."""
        body = {
            "grant_type": "client_credential",
            "appid": self.appid,
            "secret": self.secret,
            "force_refresh": True,
        }
        reply = requests.post(f"{self.url}/cgi-bin/stable_token", json=body, timeout=10).json()
        assert "access_token" in reply, reply


def example_data(template: dict[str, Any]) -> dict[str, str]:
    """Valid keyword values for a gettemplate row, taken from its ``example`` (same line order as content)."""
    data = {}
    for content_line, example_line in zip(
        template["content"].splitlines(), template["example"].splitlines(), strict=False
    ):
        match = _PLACEHOLDER.search(content_line)
        if match:
            data[match.group(1)] = example_line[match.start() :]
    return data


@pytest.fixture
def sandbox_config(request) -> dict[str, Any]:
    """Override (or parametrise indirectly) to configure the sandbox."""
    return getattr(request, "param", {})


@pytest.fixture
def sandbox(sandbox_config) -> Iterator[SandboxApi]:
    # A unique AppID per test keeps Redis keys (and anything keyed by AppID) from leaking between tests.
    config = {"APPID": f"wxt{uuid.uuid4().hex[:15]}", "SECRET": SANDBOX_SECRET, "USERS": 20, **sandbox_config}
    with SandboxServer(config) as server:
        yield SandboxApi(server)
