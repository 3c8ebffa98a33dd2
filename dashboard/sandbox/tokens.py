"""access_token issuing and checking, legacy (``/cgi-bin/token``) and stable (``/cgi-bin/stable_token``).

docs/wechat-rules.md, "Access token": a legacy fetch rotates the token and the previous one keeps working for a short overlap
(TOKEN_OVERLAP) before answering 40001; stable normal mode hands back the current token with its remaining
lifetime and only renews it near expiry; force_refresh rotates at once (old token → 40001) but is limited to
FORCE_REFRESH_DAILY per day and FORCE_REFRESH_MIN_INTERVAL seconds apart. The two kinds are independent.
"""

from __future__ import annotations

import secrets
from typing import Any

from .state import SandboxState, TokenKind, TokenRecord

_DAY = 86400.0
ACCOUNTS = ("mp", "oa")


def _book(state: SandboxState, account: str) -> Any:
    """Where an account's current tokens and counters live: the state itself for the mini-program,
    ``state.oa`` (same attribute names) for the linked Official Account."""
    return state.oa if account == "oa" else state


def _issue(
    state: SandboxState, kind: TokenKind, *, invalidate_previous_after: float | None, account: str = "mp"
) -> TokenRecord:
    """Mint a token of ``kind`` for ``account`` and make it current. Caller holds the lock.

    ``invalidate_previous_after``: seconds the previous current token stays usable (None = until it expires).
    """
    book = _book(state, account)
    now = state.now()
    ttl = float(state.config["TOKEN_TTL"])
    previous = book.current_token[kind]
    if previous is not None and invalidate_previous_after is not None:
        record = state.tokens[previous]
        if record.invalid_after is None:
            record.invalid_after = now + invalidate_previous_after
    # Real tokens are long opaque strings (documented: reserve >= 512 characters); 128 is plenty here.
    value = secrets.token_urlsafe(96)
    record = TokenRecord(value=value, kind=kind, issued_at=now, expires_at=now + ttl, account=account)
    state.tokens[value] = record
    book.current_token[kind] = value
    book.token_fetches[kind] += 1
    _prune(state, now)
    return record


def _prune(state: SandboxState, now: float) -> None:
    # Keep a day of history so an old token still answers 42001/40001 rather than "never seen" (40014).
    stale = [v for v, r in state.tokens.items() if r.expires_at < now - _DAY]
    for value in stale:
        del state.tokens[value]


def issue_legacy(state: SandboxState, account: str = "mp") -> TokenRecord:
    """``GET /cgi-bin/token``: every call rotates; the previous token survives TOKEN_OVERLAP seconds."""
    with state.lock:
        _book(state, account).token_calls["legacy"] += 1
        overlap = float(state.config["TOKEN_OVERLAP"])
        return _issue(state, "legacy", invalidate_previous_after=overlap, account=account)


def stable_token(
    state: SandboxState, force_refresh: bool, account: str = "mp"
) -> tuple[TokenRecord, int] | int:
    """``POST /cgi-bin/stable_token``: returns (token, expires_in) or an errcode (45009 / 45011).

    Normal mode reuses the current token while more than the renewal window is left; the window is
    STABLE_RENEW_BEFORE seconds, capped at TOKEN_TTL/24 so that short test lifetimes still reuse tokens.
    """
    with state.lock:
        book = _book(state, account)
        book.token_calls["stable"] += 1
        now = state.now()
        if force_refresh:
            today = [t for t in book.force_refreshes if t > now - _DAY]
            if len(today) >= int(state.config["FORCE_REFRESH_DAILY"]):
                return 45009
            if today and now - today[-1] < float(state.config["FORCE_REFRESH_MIN_INTERVAL"]):
                return 45011
            today.append(now)
            book.force_refreshes = today
            record = _issue(state, "stable", invalidate_previous_after=0.0, account=account)
            return record, int(state.config["TOKEN_TTL"])
        ttl = float(state.config["TOKEN_TTL"])
        window = min(float(state.config["STABLE_RENEW_BEFORE"]), ttl / 24)
        current = book.current_token["stable"]
        if current is not None:
            record = state.tokens[current]
            remaining = record.expires_at - now
            if record.invalid_after is None and remaining > window:
                return record, int(remaining)
        # Renewal in normal mode: the old token simply runs out at its own expiry.
        record = _issue(state, "stable", invalidate_previous_after=None, account=account)
        return record, int(ttl)


def check_token(state: SandboxState, value: str | None, account: str = "mp") -> int:
    """errcode for a business API of ``account`` called with ``access_token=value``: 0 when usable.

    41001 missing; 40014 never issued (garbage); 48001 issued to the other account (the mini-program's
    token on an Official Account API, or the reverse: "api unauthorized"); 40001 replaced by a newer
    token (after the overlap); 42001 past its lifetime.
    """
    if not value:
        return 41001
    with state.lock:
        record = state.tokens.get(value)
        if record is None:
            return 40014
        if record.account != account:
            return 48001
        now = state.now()
        if record.invalid_after is not None and now >= record.invalid_after:
            return 40001
        if now >= record.expires_at:
            return 42001
        return 0


def expire_tokens(state: SandboxState, kind: str = "all", account: str = "mp") -> int:
    """Make the current token(s) of ``account`` expired now (inspection helper to provoke 42001)."""
    with state.lock:
        now = state.now()
        count = 0
        for record in state.tokens.values():
            if record.account == account and kind in ("all", record.kind) and record.expires_at > now:
                record.expires_at = now
                count += 1
        return count
