"""The sandbox's in-memory world: users, tokens, templates, grant ledger, message log.

Everything lives in one ``SandboxState`` guarded by one re-entrant lock (``state.lock``). Request threads
of the threaded server and the push thread all touch it, so any read-modify-write must hold the lock; the
helpers here take it themselves. Nothing is persisted: a restart (or ``clear``) starts a fresh world.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .oa_state import OaWorld
from .settings import DEFAULTS, FAULT_KEYS, validate_faults

TokenKind = Literal["stable", "legacy"]
ONE_TIME = 2
LONG_TERM = 3
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+\d*)\.DATA\s*\}\}")


@dataclass
class SimUser:
    """A simulated WeChat user of the mini-program."""

    openid: str
    unionid: str | None
    nickname: str
    created_at: float


@dataclass
class PublicKeyword:
    """One keyword of a public title (``getpubtemplatekeywords`` row); ``enum_values`` only for enums."""

    kid: int
    name: str
    rule: str
    example: str
    enum_values: list[str] = field(default_factory=list)


@dataclass
class PublicTitle:
    """A public template title of the library (``getpubtemplatetitles`` row)."""

    tid: int
    title: str
    type: int
    category_id: int
    keywords: list[PublicKeyword]

    def keyword(self, kid: int) -> PublicKeyword | None:
        return next((k for k in self.keywords if k.kid == kid), None)


@dataclass
class PrivateTemplate:
    """A template added to the account (``gettemplate`` row).

    ``enum_values`` maps a keywordCode such as ``"enum_string3.DATA"`` to its allowed values.
    """

    pri_tmpl_id: str
    tid: int
    title: str
    content: str
    example: str
    type: int
    enum_values: dict[str, list[str]] = field(default_factory=dict)
    scene_desc: str = ""

    def keys(self) -> list[str]:
        """Placeholder keys in content order (``{{thing1.DATA}}`` → ``thing1``), without duplicates."""
        return list(dict.fromkeys(_PLACEHOLDER.findall(self.content)))

    def to_api(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "priTmplId": self.pri_tmpl_id,
            "title": self.title,
            "content": self.content,
            "example": self.example,
            "type": self.type,
        }
        if self.enum_values:
            row["keywordEnumValueList"] = [
                {"keywordCode": code, "enumValueList": list(values)}
                for code, values in self.enum_values.items()
            ]
        return row


@dataclass
class TokenRecord:
    """An issued access_token. ``invalid_after`` is set when a newer token replaced it."""

    value: str
    kind: TokenKind
    issued_at: float
    expires_at: float
    invalid_after: float | None = None
    account: str = "mp"  # "mp" (the mini-program) or "oa" (the linked Official Account)


@dataclass
class Grant:
    """Ledger entry for (openid, template): one-time credits and the long-term switch."""

    credits: int = 0
    active: bool = False
    accepts: int = 0
    updated_at: float = 0.0


@dataclass
class MessageRecord:
    """One call of subscribe/send, accepted or not."""

    seq: int
    time: float
    openid: str
    template_id: str
    data: Any
    page: str | None
    miniprogram_state: str | None
    lang: str | None
    errcode: int
    errmsg: str
    msgid: int | None = None
    dropped: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PushRecord:
    """One attempt to push an event to PUSH_URL."""

    time: float
    event: str
    openid: str
    url: str
    ok: bool
    status: int | None
    error: str | None
    body: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Faults:
    """Fault injection knobs; see settings.DEFAULTS for meaning (names match the config keys)."""

    LATENCY_MS: int = 0
    ERROR_RATE: float = 0.0
    QUOTA_AFTER: int | None = None
    DROP_AFTER_READ_RATE: float = 0.0
    CONCURRENCY_WINDOW_MS: int = 0
    HOLD_SENDS: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class SandboxState:
    """The whole simulated WeChat backend of one mini-program.

    Attributes are public so the domain modules (tokens, library, sending, actions) can work on them, but
    they must hold ``lock`` while doing so. ``clock`` is the time source (replaceable in tests).
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.clock = time.time
        # S311 is off project-wide: this only picks which sends hit an injected fault.
        self.random = random.Random()
        self.clear()

    def clear(self) -> None:
        """Forget everything and restore faults from the configuration (seeding is seed.populate's job)."""
        with self.lock:
            self.users: dict[str, SimUser] = {}
            self.codes: dict[str, tuple[str, float]] = {}
            self.tokens: dict[str, TokenRecord] = {}
            self.current_token: dict[TokenKind, str | None] = {"stable": None, "legacy": None}
            self.force_refreshes: list[float] = []
            self.token_fetches: Counter[str] = Counter()
            self.token_calls: Counter[str] = Counter()
            self.categories: list[tuple[int, str]] = []
            self.titles: dict[int, PublicTitle] = {}
            self.private: dict[str, PrivateTemplate] = {}
            self.ledger: dict[tuple[str, str], Grant] = {}
            self.messages: list[MessageRecord] = []
            self.pushes: list[PushRecord] = []
            self.api_calls: Counter[str] = Counter()
            self.clear_quota_calls: list[float] = []
            self.in_flight: Counter[str] = Counter()
            self.busy_until: dict[str, float] = {}
            self.last_msgid = 1_700_000_000_000_000_000 + self.random.randrange(10**15)
            self.faults = Faults(**validate_faults({k: self.config.get(k, DEFAULTS[k]) for k in FAULT_KEYS}))
            # The Official Account linked to the mini-program (its followers, templates, sends).
            self.oa = OaWorld()

    def now(self) -> float:
        return self.clock()

    # -- users -------------------------------------------------------------------------------------------

    def add_user(self, user: SimUser) -> SimUser:
        with self.lock:
            self.users[user.openid] = user
            return user

    # -- ledger ------------------------------------------------------------------------------------------

    def grant(self, openid: str, template_id: str) -> Grant:
        """The ledger entry for (openid, template_id), created empty if needed. Caller holds the lock."""
        key = (openid, template_id)
        entry = self.ledger.get(key)
        if entry is None:
            entry = self.ledger[key] = Grant()
        return entry

    def next_msgid(self) -> int:
        """A fresh, unique, increasing int64 msgid (jumps by a random step, like real ids do)."""
        with self.lock:
            self.last_msgid += self.random.randrange(1, 4096)
            return self.last_msgid

    def log_message(self, **fields: Any) -> MessageRecord:
        with self.lock:
            record = MessageRecord(seq=len(self.messages) + 1, time=self.now(), **fields)
            self.messages.append(record)
            return record

    def log_push(self, record: PushRecord) -> None:
        with self.lock:
            self.pushes.append(record)
            # A long-running sandbox must not grow without bound; the newest pushes are the useful ones.
            del self.pushes[:-1000]

    # -- summaries ---------------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Counters for ``GET /sandbox/api/state``."""
        with self.lock:
            by_code = Counter(str(m.errcode) for m in self.messages)
            return {
                "appid": self.config["APPID"],
                "token_fetches": {
                    "stable": self.token_fetches["stable"],
                    "legacy": self.token_fetches["legacy"],
                },
                "token_calls": {"stable": self.token_calls["stable"], "legacy": self.token_calls["legacy"]},
                "sends": {
                    "total": len(self.messages),
                    "ok": by_code.get("0", 0),
                    "failed": len(self.messages) - by_code.get("0", 0),
                    "dropped": sum(1 for m in self.messages if m.dropped),
                    "by_errcode": dict(by_code),
                },
                "users": len(self.users),
                "templates": len(self.private),
                "api_calls": dict(self.api_calls),
                "pushes": {
                    "ok": sum(1 for p in self.pushes if p.ok),
                    "failed": sum(1 for p in self.pushes if not p.ok),
                },
                "faults": self.faults.to_json(),
                "oa": self.oa.summary(self.config.get("OA_APPID", "")),
            }
