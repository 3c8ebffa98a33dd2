"""The mini-program's JSON API under ``/api/mp/`` (the product's contract; documented in ``openapi.py``).

Authentication is a Bearer token from ``POST /api/mp/session``, not the operators' session, so these
views are ``@public`` to the operator access check and exempt from CSRF. Every answer is JSON, errors
included (``errors.py``; an unknown path or a wrong method too, answered by the app's handlers for
every ``/api/`` path); bodies are size-limited; requests are rate-limited per IP and per token.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, jsonify, request

from ..access import public
from ..deliveries import opens
from ..extensions import csrf, db
from ..grants import services as grants
from . import services, tokens
from .errors import ApiError, register_json_errors
from .openapi import openapi_document
from .ratelimit import limiter_for
from .validation import (
    digest,
    idempotency_key,
    parse_grant_report,
    parse_login,
    parse_open,
    parse_settings,
    read_json_object,
)

bp = Blueprint("mp_api", __name__)
csrf.exempt(bp)
register_json_errors(bp)


@bp.before_request
def limit_requests() -> None:
    config = current_app.config
    verdict = limiter_for(current_app).check(f"ip:{request.remote_addr}", int(config["MP_RATE_LIMIT_PER_IP"]))
    if not verdict.allowed:
        raise ApiError(
            429,
            "rate_limited",
            "Too many requests from this address: slow down.",
            headers={"Retry-After": str(verdict.retry_after)},
        )
    limit = int(config["MP_MAX_BODY_BYTES"])
    # Every operation, bodiless ones included, refuses a declared body over the limit (documented 413);
    # a chunked one is measured where it is read (validation.read_json_body).
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "body_too_large", f"The body is larger than {limit} bytes.")


def current_mp_user(*, checked_later: bool = False) -> tokens.TokenUser:
    """The token's user, counted against the per-token rate limit.

    ``checked_later``: the view checks that the user is still there in its own first query (the grant
    report, issue 13) instead of here.
    """
    header = request.headers.get("Authorization")
    user = tokens.verify(header) if checked_later else tokens.authenticate(header)
    verdict = limiter_for(current_app).check(
        f"user:{user.id}", int(current_app.config["MP_RATE_LIMIT_PER_TOKEN"])
    )
    if not verdict.allowed:
        raise ApiError(
            429,
            "rate_limited",
            "Too many requests for this user: slow down.",
            headers={"Retry-After": str(verdict.retry_after)},
        )
    g.mp_user = user
    return user


def _grants_response(balances, status: int = 200, replayed: bool = False) -> Response:
    response = jsonify(grants=[grants.balance_json(b) for b in balances])
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.get("/ping")
@public
def ping() -> Response:
    """A trivial JSON answer: liveness for the mini-program, and the benchmark's baseline."""
    return jsonify(ok=True)


@bp.post("/session")
@public
def session() -> Response:
    code = parse_login(read_json_object())
    user = services.log_in(code)
    db.session.commit()
    response = jsonify(token=tokens.issue_token(user), expires_in=tokens.token_ttl())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/grants")
@public
def list_grants() -> Response:
    user = current_mp_user()
    return _grants_response(grants.balances_for(user.id))


@bp.post("/grants")
@public
def report_grants() -> Response:
    user = current_mp_user(checked_later=True)  # by plan_report's query
    key = idempotency_key()
    body = read_json_object()
    report = parse_grant_report(body, services.max_templates())
    plan = services.plan_report(user, report, digest(body), key)  # the reads, before the write lock
    with services.report_writes():
        outcome = services.write_report(plan)
        db.session.commit()
    return _grants_response(outcome.balances, replayed=outcome.replayed)


@bp.get("/grants/<template_id>")
@public
def show_grant(template_id: str) -> Response:
    user = current_mp_user()
    response = jsonify(services.balance_for_template(user, template_id))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/settings")
@public
def report_settings() -> Response:
    user = current_mp_user().load()
    settings = parse_settings(read_json_object())
    services.report_settings(user, settings)
    db.session.commit()
    return jsonify(main_switch=user.main_switch, item_settings=user.item_settings or {})


@bp.post("/opens")
@public
def report_open() -> Response:
    """The user opened a campaign message's card: its page carried ``tz=<token>``. Counted once.

    A token of another user's delivery is answered exactly like one that does not exist (404), so a
    session cannot learn which tokens are real.
    """
    user = current_mp_user()
    token = parse_open(read_json_object())
    if not opens.record_open(user.id, token):
        raise ApiError(404, "unknown_open_token", "No message of this user carries this tz.", field="tz")
    db.session.commit()
    response = jsonify(ok=True)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/openapi.json")
@public
def openapi() -> Response:
    return jsonify(openapi_document(services.max_templates()))
