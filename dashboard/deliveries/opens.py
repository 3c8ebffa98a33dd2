"""Opens of campaign messages: WeChat never says when a subscribe message's card is tapped, so we ask.

Every campaign delivery gets its own random token, appended to the card's ``page`` as ``tz=<token>``.
When the card is tapped, WeChat opens that page with the query, the page's ``onLoad(query)`` hands it to
``tongzhi-mp.js`` (``reportOpen(query)``), which posts it to ``POST /api/mp/opens``; ``record_open``
stamps ``delivery.opened_at`` once.

The token is random (``secrets``), not derived from the delivery id: nothing about it can be guessed
from another token, an id or a campaign, and it needs no key to rotate. It is stored in
``delivery.open_token`` (unique), so finding the delivery is one index lookup.
"""

from __future__ import annotations

import re
import secrets

import sqlalchemy as sa
from sqlalchemy import func, select, update

from ..extensions import db
from ..models import Delivery, utcnow

OPEN_PARAM = "tz"
# 12 random bytes → 16 url-safe base64 characters (96 bits): unguessable, and short on the page.
TOKEN_BYTES = 12
TOKEN_LENGTH = 16
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16}")

# The longest page Tongzhi stores or sends (delivery.page, the catalog's and the API's checks; WeChat's
# pages name no limit, see docs/wechat-rules.md "Sending a subscribe message").
PAGE_MAX_LENGTH = 512
# The longest page a campaign may be composed with, so that "&tz=<token>" still fits.
CAMPAIGN_PAGE_MAX_LENGTH = PAGE_MAX_LENGTH - len(f"&{OPEN_PARAM}=") - TOKEN_LENGTH


class PageTooLong(ValueError):
    """The page leaves no room for the tracking parameter."""


class PageHasOpenParam(ValueError):
    """The page's query already has a ``tz``: a second one would leave the page two values to choose from."""


def _has_open_param(page: str) -> bool:
    query = page.partition("?")[2]
    return any(pair.partition("=")[0] == OPEN_PARAM for pair in query.split("&"))


def campaign_page_problem(page: str | None) -> str | None:
    """Why a campaign cannot use ``page`` (for the compose form and the API), or None when it can."""
    if page and len(page) > CAMPAIGN_PAGE_MAX_LENGTH:
        return (
            f"A campaign page has at most {CAMPAIGN_PAGE_MAX_LENGTH} characters: tz= is added to count opens."
        )
    if page and _has_open_param(page):
        return f"The page's query may not have {OPEN_PARAM}=: Tongzhi adds it to count opens."
    return None


def new_open_token() -> str:
    """A fresh token: 16 url-safe characters, safe in a page query without escaping."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def attach_open_token(page: str | None, token: str) -> str:
    """``page`` with ``tz=<token>`` appended to its query; an empty page (no card link) stays empty.

    ``pages/a`` → ``pages/a?tz=T``, ``pages/a?id=1`` → ``pages/a?id=1&tz=T``, and a page already ending
    in ``?`` or ``&`` gets no second separator. An existing query is kept as it is. Raises
    ``PageTooLong`` when the result would pass ``PAGE_MAX_LENGTH`` (a campaign page of at most
    ``CAMPAIGN_PAGE_MAX_LENGTH`` characters always fits) and ``PageHasOpenParam`` when the query has a
    ``tz`` already; ``campaign_page_problem`` tells both before a campaign is saved.
    """
    if not TOKEN_RE.fullmatch(token):
        raise ValueError("not an open token")
    if not page:
        return ""
    if _has_open_param(page):
        raise PageHasOpenParam(f"The page's query already has {OPEN_PARAM}=.")
    if "?" not in page:
        separator = "?"
    elif page.endswith(("?", "&")):
        separator = ""
    else:
        separator = "&"
    tracked = f"{page}{separator}{OPEN_PARAM}={token}"
    if len(tracked) > PAGE_MAX_LENGTH:
        raise PageTooLong(
            f"The page is too long for the open tracking parameter: at most {CAMPAIGN_PAGE_MAX_LENGTH} characters."
        )
    return tracked


def tracked_page_prefix(page: str | None) -> str:
    """What goes before the token on a tracked page (``pages/a?id=1&tz=``), for a snapshot that builds
    every recipient's page in SQL; ``""`` for an empty page (no card link, no token). Raises as
    ``attach_open_token`` does."""
    if not page:
        return ""
    return attach_open_token(page, "0" * TOKEN_LENGTH)[:-TOKEN_LENGTH]


def sql_open_token(dialect_name: str) -> sa.ColumnElement[str]:
    """A new token per row, made by the database (a campaign snapshot writes its rows with one
    INSERT … SELECT): 16 hex characters from the database's cryptographic random source, which
    ``TOKEN_RE`` accepts. 64 random bits on SQLite (``randomblob``); 60 on PostgreSQL (the leading
    hex digits of ``gen_random_uuid()``, whose version digit is fixed)."""
    if dialect_name == "postgresql":
        return sa.func.substr(sa.func.replace(sa.cast(sa.func.gen_random_uuid(), sa.String), "-", ""), 1, 16)
    return sa.func.lower(sa.func.hex(sa.func.randomblob(TOKEN_LENGTH // 2)))


def record_open(user_id: int, token: str) -> bool:
    """Count an open of the delivery holding ``token`` if it is ``user_id``'s; the caller commits.

    True when the token is one of this user's deliveries (the first report stamps ``opened_at``, a
    repeat keeps the first time). False when no delivery has the token *or* it is another user's:
    the two are answered alike so that tokens cannot be probed with someone else's session.
    """
    if not TOKEN_RE.fullmatch(token):
        return False
    # One conditional UPDATE: two reports racing each other stamp the row once.
    db.session.execute(
        update(Delivery)
        .where(Delivery.open_token == token, Delivery.user_id == user_id, Delivery.opened_at.is_(None))
        .values(opened_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    owned = db.session.scalar(
        select(Delivery.id).where(Delivery.open_token == token, Delivery.user_id == user_id)
    )
    return owned is not None


def count_opens(campaign_id: int) -> int:
    """How many of the campaign's deliveries were opened (each at most once)."""
    return (
        db.session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.campaign_id == campaign_id, Delivery.opened_at.is_not(None))
        )
        or 0
    )
