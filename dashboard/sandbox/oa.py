"""The linked Official Account's behaviour: seeding, follow/unfollow, the follower list, template sends.

docs/wechat-rules.md, "Official Account": an OA template message (``/cgi-bin/message/template/send``)
needs no per-message grant, but the user must follow the account (43004 otherwise); ``touser`` is the
OA's openid (40003 when the account does not know it), ``template_id`` one of its templates (40037);
``client_msg_id`` de-duplicates per openid for 10 minutes (the same msgid again, nothing sent twice);
completion is pushed as ``TEMPLATESENDJOBFINISH`` with ``MsgID`` and ``Status``. Category templates use
typed keys with the OA's value rules (rules.oa_find_problem); classic templates use first/keywordN/remark.

Check order of a send: token → daily quota (45009) → injected -1 → touser (40003) → a repeat of a
client_msg_id (the earlier msgid) → template_id (40037) → miniprogram (40013 / 40165) → data (47003)
→ follows (43004) → deliver.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from . import rules, tokens
from .errors import wx_error, wx_ok
from .oa_state import OaFollower, OaMessageRecord, OaTemplate
from .push import Event
from .sending import sleep_latency, wait_while_held
from .state import SandboxState, SimUser

SEND_PATH = "/cgi-bin/message/template/send"
BATCHGET_MAX = 100
JOB_FINISH = "TEMPLATESENDJOBFINISH"

# (title, content, example, const values): the account's template messages in a fresh sandbox.
TEMPLATE_SEEDS: list[tuple[str, str, str, dict[str, list[str]]]] = [
    (
        "订单发货通知",
        "{{first.DATA}}\n订单号：{{keyword1.DATA}}\n商品名称：{{keyword2.DATA}}\n发货时间：{{keyword3.DATA}}\n{{remark.DATA}}",
        "您的订单已发货\n订单号：A20240101001\n商品名称：云南小粒咖啡豆 500g\n发货时间：2024年1月1日 12:00\n点击查看物流详情",
        {},
    ),
    (
        "预约成功通知",
        "预约项目：{{thing1.DATA}}\n预约时间：{{time2.DATA}}\n预约编号：{{character_string3.DATA}}\n费用：{{amount4.DATA}}",
        "预约项目：口腔检查\n预约时间：2024年1月5日 14:00\n预约编号：BK20240105\n费用：¥120.00",
        {},
    ),
    (
        "账单状态提醒",
        "账单名称：{{thing1.DATA}}\n账单金额：{{amount2.DATA}}\n账单状态：{{const3.DATA}}",
        "账单名称：2024年1月水费\n账单金额：¥56.30\n账单状态：待缴费",
        {"const3": ["待缴费", "已缴费", "已逾期"]},
    ),
]


def _derived(prefix: str, appid: str, label: str, length: int = 28) -> str:
    digest = hashlib.sha256(f"{appid}|{label}".encode()).digest()
    return prefix + base64.urlsafe_b64encode(digest).decode()[: length - len(prefix)]


def follows_at_seed(index: int, every: int) -> bool:
    """Whether the ``index``-th seeded user follows the OA (every ``every``-th one does not)."""
    return not (every and index % every == every - 1)


def populate(state: SandboxState) -> None:
    """Seed the OA of a cleared state: its templates (when SEED) and followers for the seeded users.

    Each seeded mini-program user gets an OA openid derived from the OA's AppID (stable across
    restarts); most follow; OA_ONLY_FOLLOWERS more people follow the OA with a unionid and no
    mini-program user.
    """
    cfg = state.config
    oa_appid = cfg["OA_APPID"]
    with state.lock:
        world = state.oa
        if cfg.get("SEED", True):
            for title, content, example, consts in TEMPLATE_SEEDS:
                template_id = _derived("", oa_appid, f"template:{title}", 43)
                world.templates[template_id] = OaTemplate(
                    template_id, title, content, example, const_values=consts
                )
        now = int(state.now())
        every = int(cfg.get("OA_NOT_FOLLOWING_EVERY", 0))
        for index, user in enumerate(list(state.users.values())):
            _add_follower(
                state,
                _derived("o", oa_appid, f"oa-user:{index}"),
                user,
                subscribed=follows_at_seed(index, every),
                at=now,
            )
        for index in range(int(cfg.get("OA_ONLY_FOLLOWERS", 0))):
            follower = OaFollower(
                openid=_derived("o", oa_appid, f"oa-only:{index}"),
                unionid=_derived("oU", oa_appid, f"oa-only-union:{index}"),
                mp_openid=None,
                nickname=f"公众号粉丝{index + 1:02d}",
                subscribed=True,
                subscribe_time=now,
                order=world.take_order(),
            )
            world.followers[follower.openid] = follower


def _add_follower(
    state: SandboxState, oa_openid: str, user: SimUser, *, subscribed: bool, at: int
) -> OaFollower:
    follower = OaFollower(
        openid=oa_openid,
        unionid=user.unionid,
        mp_openid=user.openid,
        nickname=user.nickname,
        subscribed=subscribed,
        subscribe_time=at if subscribed else 0,
        order=state.oa.take_order(),
    )
    state.oa.followers[oa_openid] = follower
    state.oa.by_mp[user.openid] = oa_openid
    return follower


def find_follower(state: SandboxState, openid: str) -> OaFollower | None:
    """The OA's record of ``openid``, given either the OA openid or the mini-program user's openid."""
    with state.lock:
        return state.oa.followers.get(openid) or state.oa.follower_of(openid)


def set_following(state: SandboxState, openid: str, following: bool) -> tuple[OaFollower, Event | None]:
    """The user follows (subscribe) or unfollows (unsubscribe) the OA; ``openid`` is the OA's or the
    mini-program's openid. Returns the follower and the event to push (None when nothing changed).

    A mini-program user the OA never saw gets an OA openid on their first follow.

    :raise KeyError: an openid neither account knows.
    """
    with state.lock:
        follower = find_follower(state, openid)
        now = int(state.now())
        if follower is None:
            user = state.users.get(openid)
            if user is None:
                raise KeyError(openid)
            follower = _add_follower(
                state, "o" + secrets.token_urlsafe(20)[:27], user, subscribed=False, at=now
            )
        if follower.subscribed == following:
            return follower, None
        follower.subscribed = following
        if following:
            follower.subscribe_time = now
            follower.order = state.oa.take_order()
        fields = {"EventKey": ""} if following else {}
        event = Event("subscribe" if following else "unsubscribe", follower.openid, now, fields=fields)
        return follower, event


def add_oa_only_follower(state: SandboxState, unionid: bool | str = True, nickname: str = "") -> OaFollower:
    """A new person who follows the OA and has no mini-program user (``unionid`` True mints one)."""
    with state.lock:
        union = unionid if isinstance(unionid, str) and unionid else None
        if unionid is True:
            union = "oU" + secrets.token_urlsafe(20)[:26]
        follower = OaFollower(
            openid="o" + secrets.token_urlsafe(20)[:27],
            unionid=union,
            mp_openid=None,
            nickname=nickname or f"公众号粉丝{len(state.oa.followers) + 1:03d}",
            subscribed=True,
            subscribe_time=int(state.now()),
            order=state.oa.take_order(),
        )
        state.oa.followers[follower.openid] = follower
        return follower


# -- the WeChat APIs -------------------------------------------------------------------------------------


def followers_page(state: SandboxState, next_openid: str | None) -> dict[str, Any] | int:
    """``user/get``: up to OA_PAGE_SIZE followers after ``next_openid``, in follow order; 40003 for a
    ``next_openid`` the account never knew. After the last page: ``count`` 0 and ``next_openid`` ""."""
    with state.lock:
        world = state.oa
        start = 0
        if next_openid:
            anchor = world.followers.get(next_openid)
            if anchor is None:
                return 40003
            start = anchor.order
        following = sorted((f for f in world.followers.values() if f.subscribed), key=lambda f: f.order)
        after = [f for f in following if f.order > start]
        page = after[: int(state.config["OA_PAGE_SIZE"])]
        body: dict[str, Any] = {"total": len(following), "count": len(page)}
        if page:
            body["data"] = {"openid": [f.openid for f in page]}
            body["next_openid"] = page[-1].openid
        else:
            body["next_openid"] = ""
        return body


def batchget(state: SandboxState, body: dict[str, Any] | None) -> dict[str, Any] | int:
    """``user/info/batchget``: ``{"user_list": [{"openid", "lang"?}]}`` (1–100) → ``user_info_list``.

    A follower: subscribe 1 with subscribe_time and unionid (when they have one); someone who does not
    follow: ``{"subscribe": 0, "openid"}`` and nothing else. 40003 for an unknown openid; 40032 for an
    empty or too long list.
    """
    rows = (body or {}).get("user_list")
    if not isinstance(rows, list) or not 1 <= len(rows) <= BATCHGET_MAX:
        return 40032
    result = []
    with state.lock:
        for row in rows:
            openid = row.get("openid") if isinstance(row, dict) else None
            follower = state.oa.followers.get(openid) if isinstance(openid, str) else None
            if follower is None:
                return 40003
            if not follower.subscribed:
                result.append({"subscribe": 0, "openid": follower.openid})
                continue
            info: dict[str, Any] = {
                "subscribe": 1,
                "openid": follower.openid,
                "language": str(row.get("lang") or "zh_CN"),
                "subscribe_time": follower.subscribe_time,
                "remark": "",
                "groupid": 0,
                "tagid_list": [],
                "subscribe_scene": "ADD_SCENE_QR_CODE",
                "qr_scene": 0,
                "qr_scene_str": "",
            }
            if follower.unionid:
                info["unionid"] = follower.unionid
            result.append(info)
    return {"user_info_list": result}


def list_templates(state: SandboxState) -> list[dict[str, Any]]:
    with state.lock:
        return [t.to_api() for t in state.oa.templates.values()]


@dataclass
class OaSendOutcome:
    reply: dict[str, Any]
    record: OaMessageRecord | None
    event: Event | None = None
    drop: bool = False


def _log(state: SandboxState, body: dict[str, Any], reply: dict[str, Any], **extra: Any) -> OaMessageRecord:
    with state.lock:
        record = OaMessageRecord(
            seq=len(state.oa.messages) + 1,
            time=state.now(),
            openid=str(body.get("touser") or ""),
            template_id=str(body.get("template_id") or ""),
            data=body.get("data"),
            miniprogram=body.get("miniprogram"),
            url=body.get("url") if isinstance(body.get("url"), str) else None,
            client_msg_id=body.get("client_msg_id") if isinstance(body.get("client_msg_id"), str) else None,
            errcode=reply["errcode"],
            errmsg=reply["errmsg"],
            **extra,
        )
        state.oa.messages.append(record)
        return record


def _validate(state: SandboxState, body: dict[str, Any]) -> dict[str, Any] | None:
    """40037 … 47003 and 43004 for a send whose touser is a known OA openid. Caller holds the lock."""
    template = state.oa.templates.get(str(body.get("template_id") or ""))
    if template is None:
        return wx_error(40037)
    mini = body.get("miniprogram")
    if mini is not None:
        if not isinstance(mini, dict) or mini.get("appid") != state.config["APPID"]:
            return wx_error(40013, "invalid appid: the mini-program is not linked to this account")
        path = str(mini.get("pagepath") or "").split("?", 1)[0].lstrip("/")
        if path and path not in state.config["PAGES"]:
            return wx_error(40165)
    if not isinstance(body.get("data"), dict):
        return wx_error(47003, "argument invalid! data is empty")
    problem = rules.oa_find_problem(
        rules.template_keys(template.content), body["data"], template.const_values
    )
    if problem is not None:
        key, kind = problem
        text = "is empty" if kind == "empty" else "invalid"
        return wx_error(47003, f"argument invalid! data.{key}.value {text}")
    follower = state.oa.followers[str(body["touser"])]
    if not follower.subscribed:
        return wx_error(43004)
    return None


def send(state: SandboxState, access_token: str | None, body: dict[str, Any]) -> OaSendOutcome:
    """Judge and (maybe) deliver one OA template message. Never raises for bad input."""
    code = tokens.check_token(state, access_token, account="oa")
    if code:
        reply = wx_error(code)
        return OaSendOutcome(reply, _log(state, body, reply))
    with state.lock:
        state.oa.api_calls[SEND_PATH] += 1
        quota = state.faults.QUOTA_AFTER
        if quota is not None and state.oa.api_calls[SEND_PATH] > quota:
            state.oa.api_calls[SEND_PATH] -= 1
            reply = wx_error(45009)
            return OaSendOutcome(reply, _log(state, body, reply))
    sleep_latency(state)
    wait_while_held(state)
    with state.lock:
        if state.random.random() < state.faults.ERROR_RATE:
            reply = wx_error(-1)
            return OaSendOutcome(reply, _log(state, body, reply))
        openid = body.get("touser")
        if not isinstance(openid, str) or openid not in state.oa.followers:
            reply = wx_error(40003)
            return OaSendOutcome(reply, _log(state, body, reply))
        now = state.now()
        client_msg_id = body.get("client_msg_id")
        key = (openid, client_msg_id) if isinstance(client_msg_id, str) and client_msg_id else None
        if key is not None:
            window = float(state.config["OA_CLIENT_MSG_ID_WINDOW"])
            earlier = state.oa.sent_keys.get(key)
            if earlier is not None and now - earlier[1] < window:
                reply = wx_ok(msgid=earlier[0])
                return OaSendOutcome(reply, _log(state, body, reply, msgid=earlier[0], repeat=True))
        reply = _validate(state, body)
        if reply is not None:
            return OaSendOutcome(reply, _log(state, body, reply))
        msgid = state.next_msgid()
        if key is not None:
            state.oa.sent_keys[key] = (msgid, now)
        reply = wx_ok(msgid=msgid)
        record = _log(state, body, reply, msgid=msgid)
        event = Event(JOB_FINISH, openid, int(now), fields={"MsgID": str(msgid), "Status": "success"})
        drop = state.random.random() < state.faults.DROP_AFTER_READ_RATE
        record.dropped = drop
        return OaSendOutcome(reply, record, event, drop)


def messages_view(
    state: SandboxState, openid: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """The OA send log (oldest first), for ``openid`` (OA or mini-program openid) when given."""
    with state.lock:
        wanted = None
        if openid:
            follower = find_follower(state, openid)
            wanted = follower.openid if follower else openid
        rows = [m.to_json() for m in state.oa.messages if wanted is None or m.openid == wanted]
    if limit is not None:
        rows = rows[-limit:] if limit > 0 else []
    return rows
