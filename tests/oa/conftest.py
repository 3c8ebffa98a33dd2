"""The Official Account tests: the app pointed at a sandbox whose linked OA has a unique AppID and a
small ``user/get`` page (so every sync pages), over real HTTP on loopback."""

from __future__ import annotations

from typing import Any

import pytest

from tests.oa.helpers import oa_push_overrides, oa_sandbox_config


@pytest.fixture
def sandbox_config(request) -> dict[str, Any]:
    return {**oa_sandbox_config(OA_PAGE_SIZE=5), **getattr(request, "param", {})}


@pytest.fixture
def config_overrides(sandbox) -> dict[str, Any]:
    return oa_push_overrides(sandbox)
