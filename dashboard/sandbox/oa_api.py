"""The linked Official Account's WeChat paths, and its part of the inspection API (``/sandbox/api/oa``).

WeChat paths: ``GET /cgi-bin/user/get``, ``POST /cgi-bin/user/info/batchget``,
``GET /cgi-bin/template/get_all_private_template``, ``POST /cgi-bin/message/template/send`` (all with
the OA's access token; the mini-program's answers 48001). Its tokens come from the same
``/cgi-bin/stable_token`` with the OA's AppID and AppSecret.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from . import oa, tokens
from .actions import get_sandbox
from .api import _drop_connection, _json_body, _reply
from .delivery import oa_settings, verify_url
from .errors import wx_error, wx_ok
from .sending import sleep_latency
from .settings import OA_PUSH_KEYS, SandboxConfigError, oa_push_view, validate_push

bp = Blueprint("sandbox_oa", __name__)
log = logging.getLogger(__name__)


def _business(path: str) -> dict[str, Any] | None:
    """The OA's token check, call counting and injected latency; an error body or None."""
    sb = get_sandbox()
    code = tokens.check_token(sb.state, request.args.get("access_token"), account="oa")
    if code:
        return wx_error(code)
    with sb.state.lock:
        sb.state.oa.api_calls[path] += 1
    sleep_latency(sb.state)
    return None


@bp.route("/cgi-bin/user/get", methods=["GET"])
def user_get() -> Response:
    error = _business("/cgi-bin/user/get")
    if error:
        return _reply(error)
    result = oa.followers_page(get_sandbox().state, request.args.get("next_openid"))
    return _reply(wx_error(result) if isinstance(result, int) else result)


@bp.route("/cgi-bin/user/info/batchget", methods=["GET", "POST"])
def user_info_batchget() -> Response:
    if request.method != "POST":
        return _reply(wx_error(43002))
    error = _business("/cgi-bin/user/info/batchget")
    if error:
        return _reply(error)
    body = _json_body()
    if body is None:
        return _reply(wx_error(47001))
    result = oa.batchget(get_sandbox().state, body)
    return _reply(wx_error(result) if isinstance(result, int) else result)


@bp.route("/cgi-bin/template/get_all_private_template", methods=["GET"])
def get_all_private_template() -> Response:
    error = _business("/cgi-bin/template/get_all_private_template")
    if error:
        return _reply(error)
    return _reply({"template_list": oa.list_templates(get_sandbox().state)})


@bp.route(oa.SEND_PATH, methods=["GET", "POST"])
def template_send() -> Response:
    """message/template/send; see oa.send for the order of checks. A delivered message is followed by
    the TEMPLATESENDJOBFINISH push to OA_PUSH_URL."""
    if request.method != "POST":
        return _reply(wx_error(43002))
    body = _json_body()
    if body is None:
        return _reply(wx_error(47001))
    sb = get_sandbox()
    outcome = oa.send(sb.state, request.args.get("access_token"), body)
    if outcome.event is not None and sb.oa_pusher is not None:
        sb.oa_pusher.submit(outcome.event)
    if outcome.drop:
        log.warning("fault DROP_AFTER_READ: delivered an OA template message, dropping the connection")
        return _drop_connection()
    return _reply(outcome.reply)


# -- inspection -------------------------------------------------------------------------------------------

inspect = Blueprint("sandbox_oa_inspect", __name__, url_prefix="/sandbox/api/oa")


@inspect.errorhandler(HTTPException)
def _json_error(exc: HTTPException) -> tuple[Response, int]:
    return jsonify(error=exc.description), exc.code or 500


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None:
        return {}
    if not isinstance(body, dict):
        abort(400, "expected a JSON object")
    return body


@inspect.get("/state")
def state_summary() -> Response:
    """The OA's counters: token fetches/calls, followers, templates, sends (ok, delivered, repeats,
    by errcode), API calls, pushes."""
    state = get_sandbox().state
    with state.lock:
        return jsonify(state.oa.summary(state.config["OA_APPID"]))


@inspect.get("/followers")
def followers() -> Response:
    """Every openid the OA knows: ``{"followers": [{openid, unionid, mp_openid, nickname, subscribed,
    subscribe_time, order}]}``; ``?subscribed=1`` only those who follow."""
    state = get_sandbox().state
    only = request.args.get("subscribed")
    with state.lock:
        rows = [f.to_json() for f in state.oa.followers.values() if not only or f.subscribed]
    return jsonify(count=len(rows), followers=rows)


@inspect.post("/followers")
def add_follower() -> ResponseReturnValue:
    """A person who follows the OA only: body ``{"unionid"?: true|str|false, "nickname"?}``."""
    body = _body()
    follower = oa.add_oa_only_follower(
        get_sandbox().state, unionid=body.get("unionid", True), nickname=str(body.get("nickname") or "")
    )
    return jsonify(follower.to_json()), 201


def _set_following(openid: str, following: bool) -> Response:
    sb = get_sandbox()
    try:
        follower, event = oa.set_following(sb.state, openid, following)
    except KeyError:
        abort(404, "no such user")
    if event is not None and sb.oa_pusher is not None:
        sb.oa_pusher.submit(event)
    return jsonify(changed=event is not None, follower=follower.to_json())


@inspect.post("/users/<openid>/follow")
def follow(openid: str) -> Response:
    """The user (mini-program or OA openid) follows the OA; pushes ``subscribe``."""
    return _set_following(openid, True)


@inspect.post("/users/<openid>/unfollow")
def unfollow(openid: str) -> Response:
    """The user unfollows the OA; pushes ``unsubscribe``."""
    return _set_following(openid, False)


@inspect.get("/templates")
def templates() -> Response:
    """The OA's template messages, with the approved values of their ``const`` keys."""
    state = get_sandbox().state
    with state.lock:
        rows = [{**t.to_api(), "const_values": t.const_values} for t in state.oa.templates.values()]
    return jsonify(templates=rows)


@inspect.get("/messages")
def messages() -> Response:
    """The OA send log, oldest first; ``openid`` (OA or mini-program) filters, ``limit`` keeps the newest N."""
    rows = oa.messages_view(
        get_sandbox().state, request.args.get("openid"), request.args.get("limit", type=int)
    )
    return jsonify(count=len(rows), messages=rows)


@inspect.get("/pushes")
def pushes() -> Response:
    """Pushes to OA_PUSH_URL so far; ``?wait=1`` first waits until queued pushes were attempted."""
    sb = get_sandbox()
    if request.args.get("wait") and sb.oa_pusher is not None:
        sb.oa_pusher.wait_idle()
    with sb.state.lock:
        rows = [p.to_json() for p in sb.state.oa.pushes]
    return jsonify(count=len(rows), pushes=rows)


@inspect.route("/push-config", methods=["GET", "POST"])
def push_config() -> Response:
    """Read or change OA_PUSH_URL / _FORMAT / _MODE / _TOKEN / _AES_KEY at runtime."""
    state = get_sandbox().state
    if request.method == "POST":
        body = _body()
        unknown = set(body) - set(OA_PUSH_KEYS)
        if unknown:
            abort(400, f"unknown keys: {', '.join(sorted(unknown))}")
        try:
            validate_push(oa_push_view({**state.config, **body}))
        except SandboxConfigError as exc:
            abort(400, str(exc))
        with state.lock:
            state.config.update(body)
    return jsonify({k: state.config.get(k) for k in OA_PUSH_KEYS})


@inspect.post("/push/verify")
def push_verify() -> Response:
    """The OA console's URL verification (GET with echostr) against OA_PUSH_URL."""
    return jsonify(verify_url(get_sandbox().state, settings_for=oa_settings))


@inspect.post("/tokens/expire")
def expire_tokens() -> Response:
    """Expire the OA's issued tokens now (to provoke 42001)."""
    return jsonify(expired=tokens.expire_tokens(get_sandbox().state, "all", account="oa"))


@inspect.post("/settings")
def settings() -> Response:
    """Change OA_PAGE_SIZE or OA_CLIENT_MSG_ID_WINDOW at runtime (body with either)."""
    state = get_sandbox().state
    body = _body()
    allowed = {"OA_PAGE_SIZE": 1, "OA_CLIENT_MSG_ID_WINDOW": 0}
    for key, value in body.items():
        if key not in allowed:
            abort(400, f"unknown key {key}")
        if not isinstance(value, int | float) or isinstance(value, bool) or value < allowed[key]:
            abort(400, f"{key} must be a number, at least {allowed[key]}")
    with state.lock:
        state.config.update(body)
    return jsonify(wx_ok(**{k: state.config[k] for k in allowed}))
