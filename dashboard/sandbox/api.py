"""The WeChat API paths (tokens, code2Session, subscribe/send, newtmpl, quota) served by the sandbox.

Routes translate HTTP to the domain modules and back. Like WeChat, errors are HTTP 200 with an
``errcode``/``errmsg`` body. Business APIs (anything taking ``access_token``) sleep LATENCY_MS first.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import secrets
import socket
from typing import Any

from flask import Blueprint, Response, jsonify, request

from . import library, tokens
from .actions import get_sandbox, redeem_login_code
from .errors import wx_error, wx_ok
from .push import Event
from .sending import SEND_PATH, send, sleep_latency

bp = Blueprint("sandbox_wechat", __name__)
log = logging.getLogger(__name__)

# Daily limits reported by getApiQuota; the send limit becomes QUOTA_AFTER when that fault is set.
QUOTA_LIMITS: dict[str, int] = {
    SEND_PATH: 10_000_000,
    "/cgi-bin/token": 10_000,
    "/cgi-bin/stable_token": 500_000,
    "/wxaapi/newtmpl/getcategory": 100_000,
    "/wxaapi/newtmpl/getpubtemplatetitles": 100_000,
    "/wxaapi/newtmpl/getpubtemplatekeywords": 100_000,
    "/wxaapi/newtmpl/addtemplate": 10_000,
    "/wxaapi/newtmpl/deltemplate": 10_000,
    "/wxaapi/newtmpl/gettemplate": 100_000,
    "/cgi-bin/openapi/quota/get": 100_000,
}


def _reply(body: dict[str, Any]) -> Response:
    response = jsonify(body)
    response.status_code = 200
    return response


def _json_body() -> dict[str, Any] | None:
    """The request body as a JSON object, whatever the Content-Type; None when it is not one.

    Invalid UTF-8 becomes "?" first, as WeChat does (docs/wechat-rules.md, "Conventions of the server APIs"), so the value rules then decide.
    """
    text = request.get_data().decode("utf-8", errors="replace").replace("\ufffd", "?")
    try:
        body = json.loads(text)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _params() -> dict[str, Any]:
    """Form fields (repeated keys as lists) if the body is a form, else the JSON object, else {}."""
    if request.form:
        return {k: (v if len(v) > 1 or k == "kidList" else v[0]) for k, v in request.form.lists()}
    return _json_body() or {}


def _business(path: str) -> dict[str, Any] | None:
    """Token check, call counting and injected latency for a business API; an error body or None."""
    sb = get_sandbox()
    code = tokens.check_token(sb.state, request.args.get("access_token"))
    if code:
        return wx_error(code)
    with sb.state.lock:
        sb.state.api_calls[path] += 1
    sleep_latency(sb.state)
    return None


def account_for(appid: Any) -> str:
    """Which account an AppID names: "oa" for the linked Official Account, else "mp"."""
    cfg = get_sandbox().state.config
    return "oa" if appid and appid == cfg.get("OA_APPID") else "mp"


def _check_app(appid: Any, secret: Any, wrong_secret: int, *, oa_allowed: bool = False) -> int:
    cfg = get_sandbox().state.config
    if not appid:
        return 41002
    expected = cfg["SECRET"]
    if appid != cfg["APPID"]:
        if not oa_allowed or account_for(appid) != "oa":
            return 40013
        expected = cfg["OA_SECRET"]
    if not secret:
        return 41004
    if secret != expected:
        return wrong_secret
    return 0


# -- tokens and login ---------------------------------------------------------------------------------------


@bp.route("/cgi-bin/token", methods=["GET"])
def legacy_token() -> Response:
    """Legacy token: each call rotates (the old token lives TOKEN_OVERLAP more seconds)."""
    if request.args.get("grant_type") != "client_credential":
        return _reply(wx_error(40002))
    appid = request.args.get("appid")
    code = _check_app(appid, request.args.get("secret"), wrong_secret=40001, oa_allowed=True)
    if code:
        return _reply(wx_error(code))
    state = get_sandbox().state
    account = account_for(appid)
    with state.lock:
        (state.oa if account == "oa" else state).api_calls["/cgi-bin/token"] += 1
    record = tokens.issue_legacy(state, account="oa") if account == "oa" else tokens.issue_legacy(state)
    return _reply({"access_token": record.value, "expires_in": int(state.config["TOKEN_TTL"])})


@bp.route("/cgi-bin/stable_token", methods=["GET", "POST"])
def stable_token() -> Response:
    """Stable token (JSON body); normal mode reuses the valid token with its remaining lifetime."""
    if request.method != "POST":
        return _reply(wx_error(43002))
    body = _json_body()
    if body is None:
        return _reply(wx_error(47001))
    if body.get("grant_type") != "client_credential":
        return _reply(wx_error(40002))
    code = _check_app(body.get("appid"), body.get("secret"), wrong_secret=40125, oa_allowed=True)
    if code:
        return _reply(wx_error(code))
    state = get_sandbox().state
    account = account_for(body.get("appid"))
    with state.lock:
        (state.oa if account == "oa" else state).api_calls["/cgi-bin/stable_token"] += 1
    force = body.get("force_refresh") is True
    # The mini-program's call keeps its two-argument form (tests observe it by wrapping the function).
    if account == "oa":
        result = tokens.stable_token(state, force_refresh=force, account="oa")
    else:
        result = tokens.stable_token(state, force_refresh=force)
    if isinstance(result, int):
        return _reply(wx_error(result))
    record, expires_in = result
    return _reply({"access_token": record.value, "expires_in": expires_in})


@bp.route("/sns/jscode2session", methods=["GET"])
def jscode2session() -> Response:
    """code2Session: a sandbox-minted, unused, unexpired code → openid, session_key (+ unionid)."""
    code = _check_app(request.args.get("appid"), request.args.get("secret"), wrong_secret=40125)
    if code:
        return _reply(wx_error(code))
    if request.args.get("grant_type") != "authorization_code":
        return _reply(wx_error(40002))
    if not request.args.get("js_code"):
        return _reply(wx_error(41008))
    user = redeem_login_code(get_sandbox().state, request.args.get("js_code"))
    if user is None:
        return _reply(wx_error(40029))
    body = {"openid": user.openid, "session_key": base64.b64encode(secrets.token_bytes(16)).decode()}
    if user.unionid:
        body["unionid"] = user.unionid
    return _reply(body)


# -- sending ------------------------------------------------------------------------------------------------


def _drop_connection() -> Response:
    """Close the client's socket without answering (the "did it arrive?" fault).

    After the shutdown werkzeug's write of the returned response fails with a broken pipe, which it
    treats as a dropped connection; the client sees the connection closed with no response.
    """
    sock = request.environ.get("werkzeug.socket")
    if sock is None:
        raise ConnectionAbortedError("sandbox dropped the connection (no socket to close)")
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    return Response(b"", status=200)


@bp.route(SEND_PATH, methods=["GET", "POST"])
def subscribe_send() -> Response:
    """subscribeMessage.send; see sending.send for the order of checks."""
    if request.method != "POST":
        return _reply(wx_error(43002))
    body = _json_body()
    if body is None:
        return _reply(wx_error(47001))
    sb = get_sandbox()
    outcome = send(sb.state, request.args.get("access_token"), body)
    record = outcome.record
    if record is not None and record.msgid is not None:
        item = {
            "TemplateId": record.template_id,
            "MsgID": str(record.msgid),
            "ErrorCode": "0",
            "ErrorStatus": "success",
        }
        sb.pusher.submit(Event("subscribe_msg_sent_event", record.openid, int(record.time), [item]))
    if outcome.drop and record is not None:
        log.warning(
            "fault DROP_AFTER_READ: delivered msgid %s to %s, dropping the connection",
            record.msgid,
            record.openid,
        )
        return _drop_connection()
    return _reply(outcome.reply)


# -- template management ------------------------------------------------------------------------------------


@bp.route("/wxaapi/newtmpl/getcategory", methods=["GET"])
def getcategory() -> Response:
    error = _business("/wxaapi/newtmpl/getcategory")
    if error:
        return _reply(error)
    return _reply(wx_ok(data=library.categories(get_sandbox().state)))


@bp.route("/wxaapi/newtmpl/getpubtemplatetitles", methods=["GET"])
def getpubtemplatetitles() -> Response:
    error = _business("/wxaapi/newtmpl/getpubtemplatetitles")
    if error:
        return _reply(error)
    args = request.args
    result = library.titles(get_sandbox().state, args.get("ids"), args.get("start"), args.get("limit"))
    if isinstance(result, int):
        return _reply(wx_error(result))
    return _reply(wx_ok(**result))


@bp.route("/wxaapi/newtmpl/getpubtemplatekeywords", methods=["GET"])
def getpubtemplatekeywords() -> Response:
    error = _business("/wxaapi/newtmpl/getpubtemplatekeywords")
    if error:
        return _reply(error)
    result = library.keywords(get_sandbox().state, request.args.get("tid"))
    if isinstance(result, int):
        return _reply(wx_error(result))
    return _reply(wx_ok(count=len(result), data=result))


@bp.route("/wxaapi/newtmpl/addtemplate", methods=["POST"])
def addtemplate() -> Response:
    """Accepts form encoding (repeated ``kidList`` keys) and JSON, since the docs disagree (docs/wechat-rules.md, "Templates")."""
    error = _business("/wxaapi/newtmpl/addtemplate")
    if error:
        return _reply(error)
    params = _params()
    result = library.add_template(
        get_sandbox().state, params.get("tid"), params.get("kidList"), params.get("sceneDesc")
    )
    if isinstance(result, int):
        return _reply(wx_error(result))
    return _reply(wx_ok(priTmplId=result))


@bp.route("/wxaapi/newtmpl/deltemplate", methods=["POST"])
def deltemplate() -> Response:
    error = _business("/wxaapi/newtmpl/deltemplate")
    if error:
        return _reply(error)
    code = library.delete_template(get_sandbox().state, _params().get("priTmplId"))
    return _reply(wx_error(code) if code else wx_ok())


@bp.route("/wxaapi/newtmpl/gettemplate", methods=["GET"])
def gettemplate() -> Response:
    error = _business("/wxaapi/newtmpl/gettemplate")
    if error:
        return _reply(error)
    return _reply(wx_ok(data=library.list_private(get_sandbox().state)))


# -- quota --------------------------------------------------------------------------------------------------


@bp.route("/cgi-bin/openapi/quota/get", methods=["POST"])
def quota_get() -> Response:
    """getApiQuota for a cgi_path: daily_limit / used / remain."""
    error = _business("/cgi-bin/openapi/quota/get")
    if error:
        return _reply(error)
    path = str((_json_body() or {}).get("cgi_path") or "")
    if path.startswith("/sns/"):
        return _reply(wx_error(76022))
    if path not in QUOTA_LIMITS:
        return _reply(wx_error(76021))
    state = get_sandbox().state
    with state.lock:
        limit = QUOTA_LIMITS[path]
        if path == SEND_PATH and state.faults.QUOTA_AFTER is not None:
            limit = state.faults.QUOTA_AFTER
        used = state.api_calls[path]
    return _reply(wx_ok(quota={"daily_limit": limit, "used": used, "remain": max(0, limit - used)}))


def _clear_quota(appid: Any) -> Response:
    state = get_sandbox().state
    if appid != state.config["APPID"]:
        return _reply(wx_error(40013))
    with state.lock:
        now = state.now()
        # "10 per month": a rolling 30-day window is close enough for a sandbox.
        recent = [t for t in state.clear_quota_calls if t > now - 30 * 86400]
        if len(recent) >= int(state.config["CLEAR_QUOTA_MONTHLY"]):
            return _reply(wx_error(48006))
        state.clear_quota_calls = [*recent, now]
        state.api_calls.clear()
    return _reply(wx_ok())


@bp.route("/cgi-bin/clear_quota", methods=["POST"])
def clear_quota() -> Response:
    """Reset every API's daily count (body ``{"appid"}``); shares 10/month with v2."""
    error = _business("/cgi-bin/clear_quota")
    if error:
        return _reply(error)
    return _clear_quota((_json_body() or {}).get("appid"))


@bp.route("/cgi-bin/clear_quota/v2", methods=["POST"])
def clear_quota_v2() -> Response:
    """clear_quota by appid + appsecret, for when the token API itself is exhausted."""
    params = {**request.args.to_dict(), **_params()}
    code = _check_app(params.get("appid"), params.get("appsecret"), wrong_secret=40125)
    if code:
        return _reply(wx_error(code))
    return _clear_quota(params["appid"])
