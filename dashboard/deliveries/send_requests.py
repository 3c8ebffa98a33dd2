"""Send requests: one transactional message asked for by another back end (``POST /api/v1/messages``).

Checks everything that can be checked before WeChat is called (the body's shape, the user, the template,
every keyword value, the user's live grant), then writes one pending delivery; the view kicks a worker.
The same API key and Idempotency-Key never make a second delivery. It lives beside the deliveries
service because it reads the catalog and writes deliveries; the dispatch engine only sends what is due.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from ..catalog.preview import build_preview
from ..catalog.services import template_usable
from ..extensions import db
from ..grants.services import has_live_grant
from ..models import ApiKey, Delivery, DeliverySource, WechatUser
from ..models.catalog import MessageTemplate
from .services import create_delivery

STATES = ("developer", "trial", "formal")
LANGS = ("zh_CN", "en_US", "zh_HK", "zh_TW")


class SendRefused(Exception):
    """The request cannot become a delivery: HTTP status, stable code, sentence, and the field at fault."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


@dataclass(frozen=True)
class SendRequest:
    openid: str | None
    unionid: str | None
    template: str
    data: dict[str, str]
    page: str | None
    miniprogram_state: str | None
    lang: str | None


def parse_request(body: Any) -> SendRequest:
    """Check the JSON body's shape. :raise SendRefused: 400/422 naming the field."""
    if not isinstance(body, dict):
        raise SendRefused(400, "bad_request", "The body must be a JSON object.")
    allowed = {"openid", "unionid", "template", "data", "page", "miniprogram_state", "lang"}
    extra = sorted(set(body) - allowed)
    if extra:
        raise SendRefused(422, "unexpected_field", f"Unknown field {extra[0]!r}.", extra[0])

    def text(name: str, limit: int, required: bool = False) -> str | None:
        value = body.get(name)
        if value is None:
            if required:
                raise SendRefused(422, "missing_field", f"{name} is required.", name)
            return None
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            raise SendRefused(
                422,
                "invalid_field",
                f"{name} must be a non-empty string of at most {limit} characters.",
                name,
            )
        return value.strip()

    openid, unionid = text("openid", 64), text("unionid", 64)
    if (openid is None) == (unionid is None):
        raise SendRefused(422, "missing_field", "Give exactly one of openid or unionid.", "openid")
    data = body.get("data", {})
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise SendRefused(422, "invalid_field", "data must be an object of string values.", "data")
    state, lang = text("miniprogram_state", 16), text("lang", 8)
    if state is not None and state not in STATES:
        raise SendRefused(
            422,
            "invalid_field",
            f"miniprogram_state must be one of {', '.join(STATES)}.",
            "miniprogram_state",
        )
    if lang is not None and lang not in LANGS:
        raise SendRefused(422, "invalid_field", f"lang must be one of {', '.join(LANGS)}.", "lang")
    return SendRequest(
        openid, unionid, text("template", 64, required=True) or "", data, text("page", 512), state, lang
    )


def _find_user(request: SendRequest) -> WechatUser:
    if request.openid is not None:
        user = db.session.scalar(select(WechatUser).where(WechatUser.openid == request.openid))
    else:
        user = db.session.scalars(select(WechatUser).where(WechatUser.unionid == request.unionid)).first()
    if user is None:
        field = "openid" if request.openid is not None else "unionid"
        raise SendRefused(404, "unknown_user", f"No user with this {field} has used the mini-program.", field)
    return user


def _find_template(name: str) -> MessageTemplate:
    template = db.session.scalar(
        select(MessageTemplate).where(or_(MessageTemplate.template_id == name, MessageTemplate.scene == name))
    )
    if template is None:
        raise SendRefused(
            404, "unknown_template", "No registered template has this ID or scene label.", "template"
        )
    usable = template_usable(template.template_id)
    if not usable.ok:
        raise SendRefused(
            409,
            f"template_{usable.reason}",
            f"The template cannot be used now ({usable.reason}).",
            "template",
        )
    return template


def _checked_data(
    template: MessageTemplate, user: WechatUser, request: SendRequest, lang: str
) -> dict[str, str]:
    keys = {spec["key"] for spec in template.keyword_specs}
    extra = sorted(set(request.data) - keys)
    if extra:
        raise SendRefused(
            422, "unexpected_key", f"{extra[0]}: the template has no such keyword.", f"data.{extra[0]}"
        )
    typed = {
        spec["key"]: request.data.get(spec["key"], spec.get("default") or "")
        for spec in template.keyword_specs
    }
    user_values = {"openid": user.openid, **({"nickname": user.nickname} if user.nickname else {})}
    preview = build_preview(template, typed, lang, user_values)
    if preview.samples:
        name = sorted(preview.samples)[0]
        raise SendRefused(
            422, "missing_user_variable", f"The user has no {name} for {{{{user.{name}}}}}.", "data"
        )
    for key, check in preview.checks.items():
        if check.blocking:
            error = check.errors[0]
            raise SendRefused(422, f"invalid_value.{error.rule}", error.message("en"), f"data.{key}")
    return preview.send_data()


def find_existing(api_key: ApiKey, idempotency_key: str | None) -> Delivery | None:
    if not idempotency_key:
        return None
    return db.session.scalar(
        select(Delivery).where(Delivery.api_key_id == api_key.id, Delivery.idempotency_key == idempotency_key)
    )


def request_send(
    api_key: ApiKey, body: Any, idempotency_key: str | None, request_digest: str | None = None
) -> tuple[Delivery, bool]:
    """Validate and record one transactional send; commits. Returns (delivery, created).

    An earlier delivery of this API key with this Idempotency-Key is returned as it is (created False),
    with the ``request_digest`` it was recorded with: whether the new body repeats it is the API's
    question (``api.idempotency.is_replay``), asked the same way for both APIs.

    :raise SendRefused: 400/404/409/422 with a code: nothing was written and WeChat was not called.
    """
    if idempotency_key is not None and (not idempotency_key.strip() or len(idempotency_key) > 128):
        raise SendRefused(400, "bad_idempotency_key", "Idempotency-Key must be 1 to 128 characters.")
    existing = find_existing(api_key, idempotency_key)
    request = parse_request(body)
    if existing is not None:
        return existing, False
    user = _find_user(request)
    template = _find_template(request.template)
    lang = request.lang or template.lang or "zh_CN"
    data = _checked_data(template, user, request, lang)
    if not has_live_grant(user.id, template.template_id):
        raise SendRefused(409, "no_grant", "The user holds no live grant for this template.", "template")
    delivery = create_delivery(
        source=DeliverySource.api,
        openid=user.openid,
        template_id=template.template_id,
        data=data,
        page=request.page if request.page is not None else (template.page or None),
        miniprogram_state=request.miniprogram_state or template.miniprogram_state or "formal",
        lang=lang,
        api_key_id=api_key.id,
        idempotency_key=idempotency_key,
        request_digest=request_digest,
    )
    try:
        db.session.commit()
    except IntegrityError:
        # The same key raced in from a parallel request: the first one's delivery is the answer.
        db.session.rollback()
        existing = find_existing(api_key, idempotency_key)
        if existing is None:
            raise
        return existing, False
    return delivery, True


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "state": delivery.state.value,
        "errcode": delivery.errcode,
        "errmsg": delivery.errmsg or None,
        "msgid": delivery.msgid,
    }
