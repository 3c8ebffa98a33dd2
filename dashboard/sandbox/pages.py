"""The human page ``/sandbox/``: browse simulated users and act as one of them (accept, reject, turn off).

Plain HTML forms posting to routes that call the same ``actions`` functions as the JSON API, then
redirect back (post/redirect/get). No CSRF protection: this is a local test tool bound to loopback.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from . import oa, seed
from .actions import PromptError, answer_prompt, get_sandbox, mint_login_code, turn_off
from .state import LONG_TERM

bp = Blueprint("sandbox_pages", __name__, url_prefix="/sandbox")

PER_PAGE = 50
RECENT_MESSAGES = 20


def _back(openid: str | None = None) -> Response:
    """Redirect to the index keeping the list position (q, page) carried in the form."""
    args = {k: v for k, v in (("q", request.form.get("q")), ("page", request.form.get("page"))) if v}
    return redirect(url_for("sandbox_pages.index", openid=openid, **args))


@bp.get("/")
def index() -> str:
    """User list (search by openid, 50 per page) and, for ``?openid=``, that user's templates and the last
    messages delivered to them."""
    state = get_sandbox().state
    q = request.args.get("q", "").strip()
    page = max(1, request.args.get("page", 1, type=int))
    selected = request.args.get("openid")
    with state.lock:
        matching = [u for u in state.users.values() if q in u.openid]
        pages = max(1, -(-len(matching) // PER_PAGE))
        page = min(page, pages)
        users = matching[(page - 1) * PER_PAGE : page * PER_PAGE]
        user = state.users.get(selected or "")
        templates: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        follower = None
        oa_messages: list[dict[str, Any]] = []
        if user is not None:
            follower = state.oa.follower_of(user.openid)
            if follower is not None:
                mine_oa = [m for m in state.oa.messages if m.openid == follower.openid and m.errcode == 0]
                oa_messages = [
                    {**m.to_json(), "when": dt.datetime.fromtimestamp(m.time).strftime("%m-%d %H:%M:%S")}
                    for m in reversed(mine_oa[-RECENT_MESSAGES:])
                ]
            for t in state.private.values():
                entry = state.ledger.get((user.openid, t.pri_tmpl_id))
                templates.append(
                    {
                        "id": t.pri_tmpl_id,
                        "title": t.title,
                        "long_term": t.type == LONG_TERM,
                        "credits": entry.credits if entry else 0,
                        "active": entry.active if entry else False,
                        "content": t.content,
                    }
                )
            mine = [m for m in state.messages if m.openid == user.openid and m.errcode == 0]
            messages = [
                {**m.to_json(), "when": dt.datetime.fromtimestamp(m.time).strftime("%m-%d %H:%M:%S")}
                for m in reversed(mine[-RECENT_MESSAGES:])
            ]
        total = len(matching)
    return render_template(
        "sandbox/index.html",
        appid=state.config["APPID"],
        q=q,
        page=page,
        pages=pages,
        total=total,
        users=users,
        user=user,
        templates=templates,
        messages=messages,
        follower=follower,
        oa_messages=oa_messages,
        oa_appid=state.config["OA_APPID"],
    )


@bp.post("/users")
def create_user() -> Response:
    user = seed.new_user(get_sandbox().state, unionid=bool(request.form.get("unionid")))
    flash(f"已创建用户 created {user.openid}")
    return _back(user.openid)


@bp.post("/users/<openid>/answer")
def answer(openid: str) -> Response:
    """One popup answer for one template (the 允许/拒绝 buttons)."""
    template_id = request.form.get("template_id", "")
    status = request.form.get("status", "")
    try:
        result = answer_prompt(get_sandbox(), openid, {template_id: status})
    except KeyError:
        abort(404)
    except (PromptError, ValueError) as exc:
        flash(f"失败 failed: {exc}")
    else:
        flash(f"wx.requestSubscribeMessage → {json.dumps(result, ensure_ascii=False)}")
    return _back(openid)


@bp.post("/users/<openid>/turn-off")
def turn_off_template(openid: str) -> Response:
    template_id = request.form.get("template_id", "")
    try:
        turn_off(get_sandbox(), openid, template_id)
    except KeyError:
        abort(404)
    flash(f"已关闭 turned off {template_id}")
    return _back(openid)


@bp.post("/users/<openid>/login-code")
def login_code(openid: str) -> Response:
    code = mint_login_code(get_sandbox().state, openid)
    if code is None:
        abort(404)
    flash(f"wx.login code: {code}")
    return _back(openid)


@bp.post("/users/<openid>/follow")
def follow(openid: str) -> Response:
    """The 关注公众号 / 取消关注 buttons: follow or unfollow the linked Official Account (pushes the event)."""
    following = request.form.get("follow") == "1"
    sb = get_sandbox()
    try:
        follower, event = oa.set_following(sb.state, openid, following)
    except KeyError:
        abort(404)
    if event is not None and sb.oa_pusher is not None:
        sb.oa_pusher.submit(event)
    flash(f"{'已关注 followed' if following else '已取消关注 unfollowed'} {follower.openid}")
    return _back(openid)
