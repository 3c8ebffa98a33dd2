"""The Official Account tests: the app pointed at a sandbox whose linked OA has a unique AppID and a
small ``user/get`` page (so every sync pages), over real HTTP on loopback."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.api.live import sandbox_overrides

OA_PUSH_TOKEN = "oa-push-token-for-tests"
OA_AES_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"  # 43 characters
OA_SECRET = "sandbox-oa-secret-for-tests"


@pytest.fixture
def sandbox_config(request) -> dict[str, Any]:
    return {
        "OA_APPID": f"wxo{uuid.uuid4().hex[:15]}",
        "OA_SECRET": OA_SECRET,
        "OA_PAGE_SIZE": 5,
        "USERS": 20,
        **getattr(request, "param", {}),
    }


@pytest.fixture
def config_overrides(sandbox) -> dict[str, Any]:
    config = sandbox.server.state.config
    return {
        **sandbox_overrides(sandbox),
        "WECHAT_OA_APPID": config["OA_APPID"],
        "WECHAT_OA_SECRET": config["OA_SECRET"],
        "WECHAT_OA_PUSH_TOKEN": OA_PUSH_TOKEN,
        "WECHAT_OA_PUSH_AES_KEY": None,
    }
