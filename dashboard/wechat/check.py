"""The "can we talk to WeChat?" check, shared by ``flask wechat-check`` and the admin settings page.

``run_check`` checks the mini-program, ``run_oa_check`` the Official Account (when configured).
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from . import get_client
from .client import WeChatClient
from .errors import WeChatError, WeChatNotConfigured
from .oa import OfficialAccountClient, get_oa_client
from .token import TokenService


@dataclass(frozen=True)
class CheckResult:
    """Outcome of :func:`run_check`. Never holds the token or the AppSecret.

    ``token_source``: where the token came from (memory, database, redis, or wechat = fetched now);
    ``None`` when none could be had. ``category`` is the error category's name when ``ok`` is False.
    """

    ok: bool
    template_count: int | None = None
    errcode: int | None = None
    errmsg: str = ""
    token_source: str | None = None
    category: str | None = None


def run_check(client: WeChatClient | None = None) -> CheckResult:
    """Get an access token through the shared token service, then count the account's templates.

    Never raises for a WeChat failure: the errcode and errmsg are in the result. A token cache that
    cannot be reached (database not migrated, Redis down) is reported too, by exception type only:
    driver messages may quote statement parameters, and those include the token.
    """
    client = client or get_client()
    source: str | None = None
    try:
        if not client.configured or not isinstance(client.tokens, TokenService):
            raise WeChatNotConfigured()
        source = client.tokens.get().source
        count = len(client.get_templates())
    except WeChatError as error:
        return CheckResult(
            ok=False,
            errcode=error.errcode,
            errmsg=error.errmsg,
            token_source=source,
            category=error.category.value,
        )
    except (SQLAlchemyError, RedisError) as error:
        errmsg = f"The access-token cache is unavailable ({type(error).__name__}); is the database migrated?"
        return CheckResult(ok=False, errmsg=errmsg, token_source=source, category="config")
    return CheckResult(ok=True, template_count=count, token_source=source)


@dataclass(frozen=True)
class OaCheckResult:
    """Outcome of :func:`run_oa_check`: like :class:`CheckResult`, plus the follower count.

    ``configured`` False: the Official Account channel is off (no WECHAT_OA_APPID); nothing was asked.
    """

    configured: bool
    ok: bool
    template_count: int | None = None
    follower_count: int | None = None
    errcode: int | None = None
    errmsg: str = ""
    token_source: str | None = None
    category: str | None = None


def run_oa_check(client: OfficialAccountClient | None = None) -> OaCheckResult:
    """The same check for the Official Account: a token through the shared service (keyed by the OA's
    AppID), then two harmless reads: its template messages and the first page of its followers."""
    client = client or get_oa_client()
    if not client.configured:
        return OaCheckResult(configured=False, ok=False)
    source: str | None = None
    try:
        if not isinstance(client.tokens, TokenService):
            raise WeChatNotConfigured()
        source = client.tokens.get().source
        templates = len(client.get_oa_templates())
        followers = client.get_followers().total
    except WeChatError as error:
        return OaCheckResult(
            configured=True,
            ok=False,
            errcode=error.errcode,
            errmsg=error.errmsg,
            token_source=source,
            category=error.category.value,
        )
    except (SQLAlchemyError, RedisError) as error:
        errmsg = f"The access-token cache is unavailable ({type(error).__name__}); is the database migrated?"
        return OaCheckResult(configured=True, ok=False, errmsg=errmsg, token_source=source, category="config")
    return OaCheckResult(
        configured=True, ok=True, template_count=templates, follower_count=followers, token_source=source
    )
