"""Configuration: read once from the environment in ``create_app``, failing loudly on junk.

Every setting has a safe default except ``SECRET_KEY`` in production, which must be given.
Nothing here runs at import time; ``load_settings`` is a plain function of an environment mapping.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

WECHAT_API_HOST = "https://api.weixin.qq.com"
DEFAULT_TIMEZONE = "Asia/Shanghai"
ENVIRONMENTS = ("embedded", "production")

# The embedded default with no WeChat credentials talks to the local sandbox (`flask sandbox`) under
# these made-up credentials, so a fresh checkout is a working product without a WeChat account.
SANDBOX_APPID = "wxsandbox000000000"
SANDBOX_SECRET = "sandbox-secret"  # noqa: S105 (the sandbox's own fixed credential, not a secret)
SANDBOX_PUSH_TOKEN = "sandboxtoken"  # noqa: S105 (likewise)
# The sandbox's Official Account (服务号) linked to its mini-program, likewise made up.
SANDBOX_OA_APPID = "wxsandboxoa0000000"
SANDBOX_OA_SECRET = "sandbox-oa-secret"  # noqa: S105 (the sandbox's own fixed credential, not a secret)
SANDBOX_OA_PUSH_TOKEN = "sandboxoatoken"  # noqa: S105 (likewise)

# Settings whose values must never be shown, logged or echoed in an error.
SECRET_SETTINGS = (
    "SECRET_KEY",
    "WECHAT_SECRET",
    "WECHAT_PUSH_TOKEN",
    "WECHAT_PUSH_AES_KEY",
    "WECHAT_OA_SECRET",
    "WECHAT_OA_PUSH_TOKEN",
    "WECHAT_OA_PUSH_AES_KEY",
)
# Settings that are URLs and may carry a password in their netloc.
URL_SETTINGS = ("DATABASE_URL", "SQLALCHEMY_DATABASE_URI", "REDIS_URL")


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message says which and how to fix it."""


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}.")


def env_int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}.") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}.")
    return value


def env_float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}.") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}.")
    return value


def _http_base(env: Mapping[str, str], name: str, default: str) -> str:
    raw = (env.get(name) or default).strip()
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http(s) URL such as {default}, not {raw!r}.")
    return raw.rstrip("/")


def _wechat_api_base(env: Mapping[str, str], default: str) -> str:
    """WECHAT_API_BASE, refused at startup when the proxy (HTTPS_PROXY, ALL_PROXY, NO_PROXY) or the CA
    bundle (REQUESTS_CA_BUNDLE) the environment names for it is one the bulk sender cannot use: both
    WeChat clients read those variables, and must not part ways at the first campaign."""
    from .wechat.keepalive import check_environment

    base = _http_base(env, "WECHAT_API_BASE", default)
    try:
        check_environment(base, env)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return base


def _database_url(env: Mapping[str, str], instance_path: Path) -> str:
    raw = (env.get("DATABASE_URL") or "").strip()
    if not raw:
        return f"sqlite:///{instance_path / 'tongzhi.db'}"
    # Heroku-style and plain PostgreSQL URLs are mapped to the psycopg 3 driver we ship.
    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw[len("postgres://") :]
    if raw.startswith("postgresql://"):
        raw = "postgresql+psycopg://" + raw[len("postgresql://") :]
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(
            "DATABASE_URL is not a database URL (expected e.g. postgresql://user@host/db)."
        ) from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"DATABASE_URL names the {url.get_backend_name()!r} backend; Tongzhi runs on SQLite or PostgreSQL."
        )
    return raw


def _redis_url(env: Mapping[str, str]) -> str | None:
    raw = (env.get("REDIS_URL") or "").strip()
    if not raw:
        return None
    if urlsplit(raw).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix://.")
    return raw


def _timezone(env: Mapping[str, str]) -> str:
    raw = (env.get("TIMEZONE") or DEFAULT_TIMEZONE).strip()
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"TIMEZONE {raw!r} is not an IANA time zone name such as Asia/Shanghai.") from None
    return raw


def _time_of_day(env: Mapping[str, str], name: str, default: str) -> str | None:
    """A daily time as ``HH:MM`` (24-hour, in TIMEZONE), or None for ``off``."""
    raw = (env.get(name) or default).strip()
    if raw.lower() == "off":
        return None
    hour, _, minute = raw.partition(":")
    if not (hour.isdigit() and minute.isdigit() and len(minute) == 2 and int(hour) < 24 and int(minute) < 60):
        raise ConfigError(f"{name} must be a time of day such as {default} (24-hour, in TIMEZONE) or off.")
    return f"{int(hour):02d}:{minute}"


def _aes_key(env: Mapping[str, str], name: str = "WECHAT_PUSH_AES_KEY") -> str | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    # Do not echo the value: it is a secret.
    if len(raw) != 43 or not raw.isascii() or not raw.isalnum():
        raise ConfigError(f"{name} must be the 43 letters and digits of the EncodingAESKey.")
    return raw


def _official_account(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """WECHAT_OA_APPID and WECHAT_OA_SECRET: both or neither (neither = the channel is off)."""
    appid = (env.get("WECHAT_OA_APPID") or "").strip() or None
    secret = (env.get("WECHAT_OA_SECRET") or "").strip() or None
    if (appid is None) != (secret is None):
        raise ConfigError(
            "WECHAT_OA_APPID and WECHAT_OA_SECRET must be set together (the Official Account's AppID and "
            "AppSecret), or both left unset to keep the Official Account channel off."
        )
    return appid, secret


# Sources whose accepts add a one-time credit (GRANT_CREDIT_SOURCES); a client report and the popup
# event of the same prompt are paired within GRANT_PAIRING_WINDOW_SECONDS and count once.
GRANT_SOURCES = ("client", "popup_event")


def _grant_credit_sources(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("GRANT_CREDIT_SOURCES")
    if raw is None or raw.strip() == "":
        return GRANT_SOURCES
    names = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    unknown = [name for name in names if name not in GRANT_SOURCES]
    if unknown or not names:
        raise ConfigError(
            f"GRANT_CREDIT_SOURCES must list one or both of client, popup_event (comma-separated), not {raw!r}."
        )
    return names


def _secret_key(env: Mapping[str, str], environment: str, instance_path: Path) -> str:
    raw = env.get("SECRET_KEY") or ""
    if raw:
        if len(raw) < 16:
            raise ConfigError("SECRET_KEY is too short: use at least 16 random characters.")
        return raw
    if environment == "production":
        raise ConfigError(
            "SECRET_KEY is not set. Tongzhi refuses to start in production without it: "
            "set SECRET_KEY to a long random string (python -c 'import secrets; print(secrets.token_hex(32))'), "
            "or set TONGZHI_ENV=embedded for a local run."
        )
    # Embedded default: generate once and keep it beside the database, so sessions survive restarts.
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


def load_settings(env: Mapping[str, str], instance_path: Path) -> dict[str, Any]:
    """Return the Flask config mapping derived from ``env``.

    :raise ConfigError: when a value is missing or malformed.
    """
    environment = (env.get("TONGZHI_ENV") or "production").strip().lower()
    if environment not in ENVIRONMENTS:
        raise ConfigError(f"TONGZHI_ENV must be embedded or production, not {environment!r}.")
    embedded = environment == "embedded"
    appid = (env.get("WECHAT_APPID") or "").strip() or None
    secret = (env.get("WECHAT_SECRET") or "").strip() or None
    push_token = (env.get("WECHAT_PUSH_TOKEN") or "").strip() or None
    oa_appid, oa_secret = _official_account(env)
    oa_push_token = (env.get("WECHAT_OA_PUSH_TOKEN") or "").strip() or None
    sandbox_port = env_int(env, "SANDBOX_PORT", 5010, minimum=1)
    sandbox_mode = embedded and appid is None
    api_base_default = WECHAT_API_HOST
    if sandbox_mode:
        appid, secret = SANDBOX_APPID, SANDBOX_SECRET
        push_token = push_token or SANDBOX_PUSH_TOKEN
        # The sandbox's linked Official Account, like its mini-program.
        oa_appid, oa_secret = SANDBOX_OA_APPID, SANDBOX_OA_SECRET
        oa_push_token = oa_push_token or SANDBOX_OA_PUSH_TOKEN
        api_base_default = f"http://127.0.0.1:{sandbox_port}"
    secure_cookies = env_bool(env, "SESSION_COOKIE_SECURE", default=not embedded)
    return {
        "TONGZHI_ENV": environment,
        "SECRET_KEY": _secret_key(env, environment, instance_path),
        "SQLALCHEMY_DATABASE_URI": _database_url(env, instance_path),
        "REDIS_URL": _redis_url(env),
        "TIMEZONE": _timezone(env),
        "WECHAT_APPID": appid,
        "WECHAT_SECRET": secret,
        "WECHAT_API_BASE": _wechat_api_base(env, api_base_default),
        "WECHAT_PUSH_TOKEN": push_token,
        "WECHAT_PUSH_AES_KEY": _aes_key(env),
        # The Official Account (服务号) linked to the mini-program: unset = that channel is off.
        "WECHAT_OA_APPID": oa_appid,
        "WECHAT_OA_SECRET": oa_secret,
        "WECHAT_OA_PUSH_TOKEN": oa_push_token,
        "WECHAT_OA_PUSH_AES_KEY": _aes_key(env, "WECHAT_OA_PUSH_AES_KEY"),
        # A signed push is accepted this many seconds either side of its timestamp (WeChat retries within
        # seconds); its nonce is remembered as long, so the same signature is not accepted twice.
        "WECHAT_PUSH_MAX_AGE_SECONDS": env_int(env, "WECHAT_PUSH_MAX_AGE_SECONDS", 300, minimum=1),
        "WECHAT_CONNECT_TIMEOUT": env_float(env, "WECHAT_CONNECT_TIMEOUT", 3.05, minimum=0.1),
        "WECHAT_READ_TIMEOUT": env_float(env, "WECHAT_READ_TIMEOUT", 10.0, minimum=0.1),
        "WECHAT_TOKEN_REFRESH_MARGIN": env_int(env, "WECHAT_TOKEN_REFRESH_MARGIN", 300, minimum=0),
        # WeChat allows 20 force refreshes a day; one per 75 minutes can never exceed that.
        "WECHAT_TOKEN_FORCE_REFRESH_MINUTES": env_int(
            env, "WECHAT_TOKEN_FORCE_REFRESH_MINUTES", 75, minimum=72
        ),
        "WECHAT_TOKEN_REDIS_PREFIX": (env.get("WECHAT_TOKEN_REDIS_PREFIX") or "tongzhi:wechat:").strip(),
        # Dispatch: how long a claimed row is a worker's before the reconciler calls its outcome unknown,
        # and how many rows a worker claims at once (default: its concurrency).
        "DISPATCH_LEASE_SECONDS": env_int(env, "DISPATCH_LEASE_SECONDS", 120, minimum=1),
        "DISPATCH_BATCH_SIZE": env_int(env, "DISPATCH_BATCH_SIZE", 0, minimum=0),
        # A running campaign pauses itself when more than this percentage of its answered sends failed
        # (judged once 50 have an answer); 0 turns the automatic pause off.
        "CAMPAIGN_PAUSE_FAILURE_PERCENT": env_int(env, "CAMPAIGN_PAUSE_FAILURE_PERCENT", 20, minimum=0),
        # An occurrence of a recurring campaign found due later than this (no worker was running) is
        # recorded as missed instead of sent late.
        "RECURRING_MAX_LATENESS_MINUTES": env_int(env, "RECURRING_MAX_LATENESS_MINUTES", 60, minimum=1),
        # An unknown delivery is settled by WeChat's delivery event (subscribe_msg_sent_event) for the same
        # openid and template whose CreateTime is at most this long after the attempt started.
        "SENT_EVENT_MATCH_SECONDS": env_int(env, "SENT_EVENT_MATCH_SECONDS", 300, minimum=1),
        # The worker syncs the Official Account's followers once a day at this time (TIMEZONE), when the
        # Official Account is configured; off = only ``flask sync-followers`` and the OA's events.
        "OA_FOLLOWER_SYNC_AT": _time_of_day(env, "OA_FOLLOWER_SYNC_AT", "03:30"),
        "SANDBOX_MODE": sandbox_mode,
        "SANDBOX_PORT": sandbox_port,
        # Migrating on start is what makes the embedded default a one-command product.
        "AUTO_MIGRATE": env_bool(env, "AUTO_MIGRATE", default=embedded),
        "LOGIN_MAX_FAILURES": env_int(env, "LOGIN_MAX_FAILURES", 5, minimum=1),
        "LOGIN_LOCKOUT_MINUTES": env_int(env, "LOGIN_LOCKOUT_MINUTES", 15, minimum=1),
        "SESSION_COOKIE_SECURE": secure_cookies,
        "REMEMBER_COOKIE_SECURE": secure_cookies,
        # The mini-program API (/api/mp/) and the grant ledger.
        "MP_TOKEN_TTL_SECONDS": env_int(env, "MP_TOKEN_TTL_SECONDS", 86400, minimum=60),
        "MP_MAX_BODY_BYTES": env_int(env, "MP_MAX_BODY_BYTES", 16 * 1024, minimum=1024),
        "MP_REPORT_MAX_TEMPLATES": env_int(env, "MP_REPORT_MAX_TEMPLATES", 5, minimum=1),
        # Requests per minute; 0 turns a limit off. Shared through Redis when REDIS_URL is set,
        # otherwise counted per process (so N workers allow up to N times as much).
        "MP_RATE_LIMIT_PER_IP": env_int(env, "MP_RATE_LIMIT_PER_IP", 600, minimum=0),
        "MP_RATE_LIMIT_PER_TOKEN": env_int(env, "MP_RATE_LIMIT_PER_TOKEN", 120, minimum=0),
        "MP_RATE_LIMIT_REDIS_PREFIX": (env.get("MP_RATE_LIMIT_REDIS_PREFIX") or "tongzhi:ratelimit:").strip(),
        # Reverse proxies in front of the app (nginx: 1) whose X-Forwarded-For and X-Forwarded-Proto are
        # believed, counted from the right; 0 = clients connect directly and those headers are ignored.
        "TRUSTED_PROXY_HOPS": env_int(env, "TRUSTED_PROXY_HOPS", 0, minimum=0),
        "GRANT_PAIRING_WINDOW_SECONDS": env_int(env, "GRANT_PAIRING_WINDOW_SECONDS", 600, minimum=0),
        "GRANT_CREDIT_SOURCES": _grant_credit_sources(env),
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=env_int(env, "SESSION_HOURS", 12, minimum=1)),
    }


# Defaults that do not depend on the environment.
STATIC_DEFAULTS: dict[str, Any] = {
    # No pool_pre_ping: database.ping_unless_just_used pings only connections that sat idle.
    "SQLALCHEMY_ENGINE_OPTIONS": {},
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_NAME": "tongzhi_session",
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    "WTF_CSRF_TIME_LIMIT": None,  # tied to the session instead; an open tab should not go stale
    "BABEL_DEFAULT_LOCALE": "zh",
    "BABEL_DEFAULT_TIMEZONE": "UTC",
    "LANGUAGES": {"zh": "中文", "en": "English"},
    "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
}


def mask_url(url: str | None) -> str | None:
    """Hide the password of a URL (``postgresql://u:***@host/db``)."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}:***@{netloc[1]}"))


def effective_settings(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The settings an operator may see, secrets masked: for ``check-settings`` and the settings page."""
    names = (
        "TONGZHI_ENV",
        "SANDBOX_MODE",
        "SECRET_KEY",
        "SQLALCHEMY_DATABASE_URI",
        "REDIS_URL",
        "TIMEZONE",
        "WECHAT_APPID",
        "WECHAT_SECRET",
        "WECHAT_API_BASE",
        "WECHAT_PUSH_TOKEN",
        "WECHAT_PUSH_AES_KEY",
        "WECHAT_PUSH_MAX_AGE_SECONDS",
        "WECHAT_OA_APPID",
        "WECHAT_OA_SECRET",
        "WECHAT_OA_PUSH_TOKEN",
        "WECHAT_OA_PUSH_AES_KEY",
        "WECHAT_CONNECT_TIMEOUT",
        "WECHAT_READ_TIMEOUT",
        "WECHAT_TOKEN_REFRESH_MARGIN",
        "WECHAT_TOKEN_FORCE_REFRESH_MINUTES",
        "DISPATCH_LEASE_SECONDS",
        "CAMPAIGN_PAUSE_FAILURE_PERCENT",
        "RECURRING_MAX_LATENESS_MINUTES",
        "SENT_EVENT_MATCH_SECONDS",
        "OA_FOLLOWER_SYNC_AT",
        "AUTO_MIGRATE",
        "LOGIN_MAX_FAILURES",
        "LOGIN_LOCKOUT_MINUTES",
        "SESSION_COOKIE_SECURE",
        "MP_TOKEN_TTL_SECONDS",
        "MP_MAX_BODY_BYTES",
        "MP_REPORT_MAX_TEMPLATES",
        "MP_RATE_LIMIT_PER_IP",
        "MP_RATE_LIMIT_PER_TOKEN",
        "TRUSTED_PROXY_HOPS",
        "GRANT_PAIRING_WINDOW_SECONDS",
        "GRANT_CREDIT_SOURCES",
    )
    rows = []
    for name in names:
        value = config.get(name)
        if name in SECRET_SETTINGS:
            shown = "(set, hidden)" if value else "(not set)"
        elif name in URL_SETTINGS:
            shown = mask_url(value) or "(not set)"
        elif value is None:
            shown = "(not set)"
        elif isinstance(value, tuple | list):
            shown = ", ".join(str(item) for item in value)
        else:
            shown = str(value)
        label = "DATABASE_URL" if name == "SQLALCHEMY_DATABASE_URI" else name
        rows.append((label, shown))
    return rows


def oa_configured(config: Mapping[str, Any]) -> bool:
    """Whether the Official Account channel is on: its AppID and AppSecret are both set."""
    return bool(config.get("WECHAT_OA_APPID") and config.get("WECHAT_OA_SECRET"))


def settings_from_environment(instance_path: Path) -> dict[str, Any]:
    return load_settings(os.environ, instance_path)
