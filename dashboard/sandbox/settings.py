"""Configuration of the sandbox: defaults, merging and validation.

The sandbox is configured with a plain dict (``create_sandbox_app(config)``). Every key has a default here, so
a test only names what it cares about. Unknown keys are kept (harmless) so callers can stash their own values.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

DEFAULT_PAGES: tuple[str, ...] = (
    "pages/index/index",
    "pages/order/detail",
    "pages/order/list",
    "pages/booking/detail",
    "pages/meeting/detail",
    "pages/todo/detail",
    "pages/bill/detail",
    "pages/parking/detail",
    "pages/user/profile",
)

DEFAULTS: dict[str, Any] = {
    "APPID": "wxsandbox000000000",
    "SECRET": "sandbox-secret",
    "ORIGINAL_ID": "gh_sandbox00000",
    # Tokens (seconds). Floats are allowed so tests can use sub-second lifetimes.
    "TOKEN_TTL": 7200,
    "TOKEN_OVERLAP": 300,
    # Normal-mode stable_token renews the token this long before expiry (capped at TOKEN_TTL / 24).
    "STABLE_RENEW_BEFORE": 300,
    "FORCE_REFRESH_DAILY": 20,
    "FORCE_REFRESH_MIN_INTERVAL": 30,
    "CODE_TTL": 300,
    # Simulated world.
    "USERS": 20,
    "SEED": True,
    "PAGES": list(DEFAULT_PAGES),
    "PRIVATE_TEMPLATE_LIMIT": 25,
    # wx.requestSubscribeMessage accepts at most this many ids per call (3 historically, 5 in newer docs).
    "PROMPT_MAX_TEMPLATES": 3,
    "CLEAR_QUOTA_MONTHLY": 10,
    # Event pushes (消息推送).
    "PUSH_URL": None,
    "PUSH_FORMAT": "json",
    "PUSH_MODE": "plaintext",
    "PUSH_TOKEN": "sandboxtoken",
    "PUSH_AES_KEY": None,
    "PUSH_TIMEOUT": 5.0,
    # Tongzhi's mini-program API; stored for the reporting hook (see actions.report_prompt_result).
    "MP_API_BASE": None,
    # The Official Account (服务号) linked to the mini-program: its own AppID/AppSecret, followers,
    # template messages and push URL (OA_PUSH_*: the same rules as PUSH_*, XML by default as for OAs).
    "OA_APPID": "wxsandboxoa0000000",
    "OA_SECRET": "sandbox-oa-secret",
    "OA_ORIGINAL_ID": "gh_sandboxoa000",
    # Every OA_NOT_FOLLOWING_EVERY-th seeded user (index 4, 9, 14 …) does not follow (0: all follow).
    "OA_NOT_FOLLOWING_EVERY": 5,
    # People who follow the OA but never used the mini-program (a unionid each, no mini-program openid).
    "OA_ONLY_FOLLOWERS": 3,
    # user/get page size (WeChat: 10000); small values make a follower sync page.
    "OA_PAGE_SIZE": 10000,
    # client_msg_id de-duplicates sends per openid for this many seconds (WeChat: 10 minutes).
    "OA_CLIENT_MSG_ID_WINDOW": 600,
    "OA_PUSH_URL": None,
    "OA_PUSH_FORMAT": "xml",
    "OA_PUSH_MODE": "plaintext",
    "OA_PUSH_TOKEN": "sandboxoatoken",
    "OA_PUSH_AES_KEY": None,
    # Fault injection (also changeable at runtime through POST /sandbox/api/faults).
    "LATENCY_MS": 0,
    "ERROR_RATE": 0.0,
    "QUOTA_AFTER": None,
    "DROP_AFTER_READ_RATE": 0.0,
    "CONCURRENCY_WINDOW_MS": 0,
    # 1: every subscribeMessage.send waits (after LATENCY_MS) until it is set back to 0, for at most
    # HOLD_MAX_SECONDS; a test can then act while a send is surely in flight, without guessing a delay.
    "HOLD_SENDS": 0,
}

FAULT_KEYS: tuple[str, ...] = (
    "LATENCY_MS",
    "ERROR_RATE",
    "QUOTA_AFTER",
    "DROP_AFTER_READ_RATE",
    "CONCURRENCY_WINDOW_MS",
    "HOLD_SENDS",
)

PUSH_KEYS: tuple[str, ...] = ("PUSH_URL", "PUSH_FORMAT", "PUSH_MODE", "PUSH_TOKEN", "PUSH_AES_KEY")
OA_PUSH_KEYS: tuple[str, ...] = tuple(f"OA_{key}" for key in PUSH_KEYS)


def oa_push_view(cfg: dict[str, Any]) -> dict[str, Any]:
    """The OA_PUSH_* keys of ``cfg`` under their PUSH_* names (so one validator checks both)."""
    return {key[3:]: cfg.get(key) for key in OA_PUSH_KEYS}


class SandboxConfigError(ValueError):
    """A configuration value the sandbox cannot work with."""


def merge_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """Return DEFAULTS overlaid with ``config``, validated.

    :raise SandboxConfigError: on a value that would make the sandbox misbehave silently.
    """
    merged = {**DEFAULTS, **(config or {})}
    merged["PAGES"] = [str(p).lstrip("/") for p in merged["PAGES"]]
    validate_push(merged)
    validate_push(oa_push_view(merged))
    for key in ("OA_NOT_FOLLOWING_EVERY", "OA_ONLY_FOLLOWERS", "OA_PAGE_SIZE", "OA_CLIENT_MSG_ID_WINDOW"):
        if not isinstance(merged[key], int | float) or merged[key] < 0:
            raise SandboxConfigError(f"{key} must be a number, at least 0")
    if merged["OA_PAGE_SIZE"] < 1:
        raise SandboxConfigError("OA_PAGE_SIZE must be at least 1")
    validate_faults({k: merged[k] for k in FAULT_KEYS})
    return merged


def validate_push(cfg: dict[str, Any]) -> None:
    """Check the PUSH_* keys of ``cfg``.

    :raise SandboxConfigError: bad format/mode, or secure mode without a 43-character EncodingAESKey.
    """
    if cfg.get("PUSH_FORMAT") not in ("json", "xml"):
        raise SandboxConfigError("PUSH_FORMAT must be 'json' or 'xml'")
    if cfg.get("PUSH_MODE") not in ("plaintext", "secure"):
        raise SandboxConfigError("PUSH_MODE must be 'plaintext' or 'secure'")
    if cfg.get("PUSH_MODE") == "secure":
        key = cfg.get("PUSH_AES_KEY") or ""
        if len(key) != 43:
            raise SandboxConfigError("PUSH_AES_KEY (EncodingAESKey) must be 43 characters in secure mode")
        try:
            decoded = base64.b64decode(key + "=", validate=True)
        except binascii.Error as exc:
            raise SandboxConfigError("PUSH_AES_KEY is not valid base64") from exc
        if len(decoded) != 32:
            raise SandboxConfigError("PUSH_AES_KEY must decode to 32 bytes")


def validate_faults(values: dict[str, Any]) -> dict[str, Any]:
    """Coerce and check fault values; returns the cleaned mapping.

    :raise SandboxConfigError: unknown key, negative number, or a rate outside 0..1.
    """
    cleaned: dict[str, Any] = {}
    for key, value in values.items():
        if key not in FAULT_KEYS:
            raise SandboxConfigError(f"unknown fault {key!r}; known: {', '.join(FAULT_KEYS)}")
        try:
            if key == "QUOTA_AFTER":
                cleaned[key] = None if value is None else int(value)
            elif key.endswith("_RATE"):
                cleaned[key] = float(value)
            else:
                cleaned[key] = int(value)
        except (TypeError, ValueError) as exc:
            raise SandboxConfigError(f"{key} must be a number") from exc
        number = cleaned[key]
        if number is not None and number < 0:
            raise SandboxConfigError(f"{key} must not be negative")
        if key == "HOLD_SENDS" and number > 1:
            raise SandboxConfigError("HOLD_SENDS is 0 (off) or 1 (hold sends until set back to 0)")
        if key.endswith("_RATE") and number > 1:
            raise SandboxConfigError(f"{key} is a fraction between 0 and 1")
    return cleaned
