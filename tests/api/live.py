"""Shared by the API, push and audience tests: the app on a real loopback server, and a simulated
mini-program that talks to it over HTTP the way ``static/tongzhi-mp.js`` does."""

from __future__ import annotations

import uuid
from typing import Any

import requests

PUSH_TOKEN = "push-token-for-tests"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters


def mp_overrides(sandbox) -> dict[str, Any]:
    """Point the app's mini-program at the sandbox: its AppID, AppSecret and WeChat API base."""
    return {"WECHAT_APPID": sandbox.appid, "WECHAT_SECRET": sandbox.secret, "WECHAT_API_BASE": sandbox.url}


def sandbox_overrides(sandbox) -> dict[str, Any]:
    """Point the app at the sandbox (WeChat API and push settings) and keep rate limits out of the way."""
    return {
        **mp_overrides(sandbox),
        "WECHAT_PUSH_TOKEN": PUSH_TOKEN,
        "WECHAT_PUSH_AES_KEY": AES_KEY,
        "MP_RATE_LIMIT_PER_IP": 0,
        "MP_RATE_LIMIT_PER_TOKEN": 0,
    }


def key_for(runner, *scopes: str) -> dict[str, str]:
    """The Authorization header of a new API key (``create-api-key``) with these scopes."""
    args = ["create-api-key", f"k-{'-'.join(scopes)}"]
    for scope in scopes:
        args += ["--scope", scope]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    return {"Authorization": f"Bearer {result.output.strip().splitlines()[-1]}"}


class MiniProgram:
    """One simulated user's mini-program: wx.login through the sandbox, then Tongzhi's /api/mp/ over HTTP."""

    def __init__(self, base: str, sandbox, openid: str) -> None:
        self.base = base.rstrip("/")
        self.sandbox = sandbox
        self.openid = openid
        self.http = requests.Session()
        self.token: str | None = None

    def login(self) -> dict[str, Any]:
        code = self.sandbox.post(f"/users/{self.openid}/login-code")["code"]
        response = self.http.post(f"{self.base}/api/mp/session", json={"code": code}, timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        self.token = body["token"]
        return body

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}

    def prompt(self, answers: dict[str, str], scene: int = 0) -> dict[str, str]:
        """The user taps through wx.requestSubscribeMessage in the sandbox; its success object."""
        return self.sandbox.post(f"/users/{self.openid}/prompt", {"templates": answers, "scene": scene})

    def report(self, result: dict[str, Any], key: str | None = None) -> requests.Response:
        headers = self.headers(**({"Idempotency-Key": key} if key else {}))
        return self.http.post(f"{self.base}/api/mp/grants", json=result, headers=headers, timeout=10)

    def balances(self) -> dict[str, dict[str, Any]]:
        response = self.http.get(f"{self.base}/api/mp/grants", headers=self.headers(), timeout=10)
        assert response.status_code == 200, response.text
        return {grant["template_id"]: grant for grant in response.json()["grants"]}

    @staticmethod
    def new_key() -> str:
        return uuid.uuid4().hex
