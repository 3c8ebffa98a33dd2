"""Test and inspection API under ``/sandbox/api/``: look inside the sandbox and steer it.

Not part of WeChat. Replies are plain JSON; a bad request answers HTTP 400/404 ``{"error": "..."}``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from . import seed, tokens
from .actions import PromptError, answer_prompt, credits_view, get_sandbox, mint_login_code, turn_off
from .delivery import verify_url
from .settings import FAULT_KEYS, PUSH_KEYS, SandboxConfigError, validate_faults, validate_push
from .state import LONG_TERM, ONE_TIME

bp = Blueprint("sandbox_inspect", __name__, url_prefix="/sandbox/api")


@bp.errorhandler(HTTPException)
def _json_error(exc: HTTPException) -> tuple[Response, int]:
    return jsonify(error=exc.description), exc.code or 500


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None:
        return {}
    if not isinstance(body, dict):
        abort(400, "expected a JSON object")
    return body


@bp.get("/state")
def state_summary() -> Response:
    """Counters: token_fetches/token_calls by kind, sends by errcode, users, templates, pushes, faults."""
    return jsonify(get_sandbox().state.summary())


@bp.post("/reset")
def reset() -> Response:
    """Back to a freshly seeded world (tokens, codes, ledger, log and runtime faults included)."""
    state = get_sandbox().state
    with state.lock:
        state.clear()
        seed.populate(state)
    return jsonify(ok=True)


@bp.get("/messages")
def messages() -> Response:
    """The send log, oldest first, filtered by ``openid`` / ``template_id``; ``limit`` keeps the newest N."""
    state = get_sandbox().state
    openid, template_id = request.args.get("openid"), request.args.get("template_id")
    limit = request.args.get("limit", type=int)
    with state.lock:
        rows = [
            m.to_json()
            for m in state.messages
            if (not openid or m.openid == openid) and (not template_id or m.template_id == template_id)
        ]
    if limit is not None:
        rows = rows[-limit:] if limit > 0 else []
    return jsonify(count=len(rows), messages=rows)


@bp.get("/credits")
def credits() -> Response:
    """Ledger rows: ``{"credits": [{openid, template_id, type, credits, active, accepts, updated_at}]}``."""
    state = get_sandbox().state
    return jsonify(credits=credits_view(state, request.args.get("openid"), request.args.get("template_id")))


@bp.get("/pushes")
def pushes() -> Response:
    """Event pushes attempted so far; ``?wait=1`` first waits until queued pushes were attempted."""
    sb = get_sandbox()
    if request.args.get("wait"):
        sb.pusher.wait_idle()
    with sb.state.lock:
        rows = [p.to_json() for p in sb.state.pushes]
    return jsonify(count=len(rows), pushes=rows)


@bp.route("/faults", methods=["GET", "POST"])
def faults() -> Response:
    """Read or change fault injection: body with any of LATENCY_MS, ERROR_RATE, QUOTA_AFTER (null = off),
    DROP_AFTER_READ_RATE, CONCURRENCY_WINDOW_MS, HOLD_SENDS (1: sends wait until it is 0 again).
    Returns ``{"faults": {...}}``."""
    state = get_sandbox().state
    if request.method == "POST":
        try:
            cleaned = validate_faults(_body())
        except SandboxConfigError as exc:
            abort(400, str(exc))
        with state.lock:
            for key, value in cleaned.items():
                setattr(state.faults, key, value)
    return jsonify(faults=state.faults.to_json(), keys=list(FAULT_KEYS))


@bp.route("/push-config", methods=["GET", "POST"])
def push_config() -> Response:
    """Read or change PUSH_URL / PUSH_FORMAT / PUSH_MODE / PUSH_TOKEN / PUSH_AES_KEY at runtime."""
    state = get_sandbox().state
    if request.method == "POST":
        body = _body()
        unknown = set(body) - set(PUSH_KEYS)
        if unknown:
            abort(400, f"unknown keys: {', '.join(sorted(unknown))}")
        candidate = {**state.config, **body}
        try:
            validate_push(candidate)
        except SandboxConfigError as exc:
            abort(400, str(exc))
        with state.lock:
            state.config.update(body)
    return jsonify({k: state.config.get(k) for k in PUSH_KEYS})


@bp.post("/push/verify")
def push_verify() -> Response:
    """Run the console's URL verification (GET with echostr) against PUSH_URL."""
    return jsonify(verify_url(get_sandbox().state))


@bp.post("/tokens/expire")
def expire_tokens() -> Response:
    """Expire issued tokens now (body ``{"kind": "stable"|"legacy"|"all"}``) to provoke 42001."""
    kind = _body().get("kind", "all")
    if kind not in ("stable", "legacy", "all"):
        abort(400, "kind must be stable, legacy or all")
    return jsonify(expired=tokens.expire_tokens(get_sandbox().state, kind))


# -- templates ----------------------------------------------------------------------------------------------


@bp.get("/templates")
def list_templates() -> Response:
    """Private templates as gettemplate rows, plus tid."""
    state = get_sandbox().state
    with state.lock:
        rows = [{**t.to_api(), "tid": t.tid} for t in state.private.values()]
    return jsonify(templates=rows)


@bp.route("/templates/<pri_tmpl_id>", methods=["GET", "POST", "DELETE"])
def template(pri_tmpl_id: str) -> Response:
    """Read, change (title/content/example/type/keywordEnumValueList — "changed in WeChat") or delete."""
    state = get_sandbox().state
    with state.lock:
        found = state.private.get(pri_tmpl_id)
        if found is None:
            abort(404, "no such template")
        if request.method == "DELETE":
            del state.private[pri_tmpl_id]
            return jsonify(deleted=pri_tmpl_id)
        if request.method == "POST":
            body = _body()
            if "type" in body and body["type"] not in (ONE_TIME, LONG_TERM):
                abort(400, "type must be 2 (one-time) or 3 (long-term)")
            for field in ("title", "content", "example"):
                if field in body:
                    setattr(found, field, str(body[field]))
            if "type" in body:
                found.type = body["type"]
            if "keywordEnumValueList" in body:
                found.enum_values = {
                    str(e["keywordCode"]): [str(v) for v in e["enumValueList"]]
                    for e in body["keywordEnumValueList"]
                }
        return jsonify({**found.to_api(), "tid": found.tid})


# -- users --------------------------------------------------------------------------------------------------


@bp.route("/users", methods=["GET", "POST"])
def users() -> ResponseReturnValue:
    """GET: ``?q=`` (openid substring), ``page``, ``per_page`` → ``{"total", "users": [...]}``.
    POST ``{"openid"?, "unionid"?: true|str, "nickname"?}`` → the new user."""
    state = get_sandbox().state
    if request.method == "POST":
        body = _body()
        openid = body.get("openid")
        if openid is not None and (not isinstance(openid, str) or not openid):
            abort(400, "openid must be a non-empty string")
        with state.lock:
            if openid in state.users:
                abort(409, "openid exists")
            user = seed.new_user(
                state,
                openid=openid,
                unionid=body.get("unionid", False),
                nickname=str(body.get("nickname") or ""),
            )
        return jsonify(_user_json(user)), 201
    q = request.args.get("q", "")
    page = max(1, request.args.get("page", 1, type=int))
    per_page = min(500, max(1, request.args.get("per_page", 50, type=int)))
    with state.lock:
        matching = [u for u in state.users.values() if q in u.openid]
    rows = matching[(page - 1) * per_page : page * per_page]
    return jsonify(total=len(matching), page=page, users=[_user_json(u) for u in rows])


def _user_json(user: Any) -> dict[str, Any]:
    return {"openid": user.openid, "unionid": user.unionid, "nickname": user.nickname}


@bp.post("/users/<openid>/login-code")
def login_code(openid: str) -> Response:
    """A single-use wx.login code for the user: ``{"code", "expires_in"}``."""
    state = get_sandbox().state
    code = mint_login_code(state, openid)
    if code is None:
        abort(404, "no such user")
    return jsonify(code=code, expires_in=state.config["CODE_TTL"])


@bp.post("/users/<openid>/prompt")
def prompt(openid: str) -> ResponseReturnValue:
    """The user answers a subscribe popup: body ``{"templates": {id: status}, "scene": 0}``.

    Returns the wx.requestSubscribeMessage success object, or HTTP 400 with its ``fail`` object.
    """
    body = _body()
    answers = body.get("templates")
    if not isinstance(answers, dict):
        abort(400, "templates must be an object {templateId: status}")
    scene = body.get("scene", 0)
    if not isinstance(scene, int):
        abort(400, "scene must be an integer")
    try:
        result = answer_prompt(get_sandbox(), openid, {str(k): str(v) for k, v in answers.items()}, scene)
    except KeyError:
        abort(404, "no such user")
    except ValueError as exc:
        abort(400, str(exc))
    except PromptError as exc:
        return jsonify(exc.to_json()), 400
    return jsonify(result)


@bp.post("/users/<openid>/turn-off")
def turn_off_template(openid: str) -> Response:
    """The user turns a template off: body ``{"template_id"}``; pushes subscribe_msg_change_event."""
    template_id = str(_body().get("template_id") or "")
    try:
        turn_off(get_sandbox(), openid, template_id)
    except KeyError as exc:
        abort(404, f"no such user or template: {exc.args[0]}")
    return jsonify(ok=True, credits=credits_view(get_sandbox().state, openid, template_id))
