"""The in-memory world of the Official Account (服务号) linked to the sandbox's mini-program.

Lives at ``SandboxState.oa`` and is guarded by the same ``state.lock``. It keeps its own tokens' book
(``current_token``, ``force_refreshes``, ``token_fetches``, ``token_calls``: the attribute names
``tokens.py`` uses for the mini-program), its followers, its template messages, the send log and the
pushes to the OA's own push URL.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class OaFollower:
    """A WeChat user as the Official Account knows them.

    ``openid`` is the OA's openid (another one than the mini-program's); ``mp_openid`` links to the
    simulated mini-program user who is the same person (None: this person follows the OA only).
    ``unionid`` is the one the mini-program user has, so the two can be joined. ``order`` is the
    position in ``user/get``'s listing (a re-follow moves the follower to the end).
    """

    openid: str
    unionid: str | None
    mp_openid: str | None
    nickname: str
    subscribed: bool
    subscribe_time: int
    order: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class OaTemplate:
    """A template message of the account (``get_all_private_template`` row).

    ``const_values`` maps a ``const`` key to its approved values (sandbox-only: WeChat shows them in the
    console, not through the API).
    """

    template_id: str
    title: str
    content: str
    example: str
    primary_industry: str = "IT科技"
    deputy_industry: str = "互联网|电子商务"
    const_values: dict[str, list[str]] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        return {
            "template_id": self.template_id,
            "title": self.title,
            "primary_industry": self.primary_industry,
            "deputy_industry": self.deputy_industry,
            "content": self.content,
            "example": self.example,
        }


@dataclass
class OaMessageRecord:
    """One call of ``message/template/send`` that got past parsing, accepted or not.

    ``repeat``: answered with an earlier msgid because the same ``client_msg_id`` was used for this
    openid within the de-dup window; nothing was delivered again.
    """

    seq: int
    time: float
    openid: str
    template_id: str
    data: Any
    miniprogram: Any
    url: str | None
    client_msg_id: str | None
    errcode: int
    errmsg: str
    msgid: int | None = None
    repeat: bool = False
    dropped: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class OaWorld:
    """Everything the Official Account holds. Callers hold ``SandboxState.lock``."""

    def __init__(self) -> None:
        self.followers: dict[str, OaFollower] = {}
        self.by_mp: dict[str, str] = {}  # mini-program openid → OA openid
        self.templates: dict[str, OaTemplate] = {}
        self.messages: list[OaMessageRecord] = []
        self.sent_keys: dict[tuple[str, str], tuple[int, float]] = {}  # (openid, client_msg_id) → msgid, time
        self.pushes: list[Any] = []
        self.api_calls: Counter[str] = Counter()
        self.next_order = 0
        # The token book (same names as SandboxState's, see tokens._book).
        self.current_token: dict[str, str | None] = {"stable": None, "legacy": None}
        self.force_refreshes: list[float] = []
        self.token_fetches: Counter[str] = Counter()
        self.token_calls: Counter[str] = Counter()

    def take_order(self) -> int:
        self.next_order += 1
        return self.next_order

    def follower_of(self, mp_openid: str) -> OaFollower | None:
        oa_openid = self.by_mp.get(mp_openid)
        return None if oa_openid is None else self.followers.get(oa_openid)

    def log_push(self, record: Any) -> None:
        self.pushes.append(record)
        del self.pushes[:-1000]

    def summary(self, appid: str) -> dict[str, Any]:
        """Counters for ``GET /sandbox/api/state`` (``oa``) and ``GET /sandbox/api/oa/state``."""
        by_code = Counter(str(m.errcode) for m in self.messages)
        delivered = [m for m in self.messages if m.errcode == 0 and not m.repeat]
        return {
            "appid": appid,
            "token_fetches": {"stable": self.token_fetches["stable"], "legacy": self.token_fetches["legacy"]},
            "token_calls": {"stable": self.token_calls["stable"], "legacy": self.token_calls["legacy"]},
            "followers": sum(1 for f in self.followers.values() if f.subscribed),
            "known_openids": len(self.followers),
            "templates": len(self.templates),
            "sends": {
                "total": len(self.messages),
                "ok": by_code.get("0", 0),
                "delivered": len(delivered),
                "repeats": sum(1 for m in self.messages if m.repeat),
                "failed": len(self.messages) - by_code.get("0", 0),
                "dropped": sum(1 for m in self.messages if m.dropped),
                "by_errcode": dict(by_code),
            },
            "api_calls": dict(self.api_calls),
            "pushes": {
                "ok": sum(1 for p in self.pushes if p.ok),
                "failed": sum(1 for p in self.pushes if not p.ok),
            },
        }
