"""Send requests: one transactional message asked for by another back end (``POST /api/v1/messages``).

Checks everything that can be checked before WeChat is called (the body's shape, the channel, the user,
the templates, every keyword value, whether the channel can reach the user now), then writes one pending
delivery; the view kicks a worker. The same API key and Idempotency-Key never make a second delivery. It
lives beside the deliveries service because it reads the catalogs and writes deliveries; the dispatch
engine only sends what is due.

**Channels** (``models.Channel``). ``mp_subscribe`` (the default) is the subscribe message, given as
``template`` and ``data``; ``oa_template`` is the Official Account's template message, given as
``oa {template, data, pagepath?}``; ``mp_subscribe_or_oa`` gives both, and the claim sends the subscribe
message when the user holds a credit, else the OA's. Whether the channel can reach the user is asked of
``dispatch.channels.choose()`` (the claim's own rule) with the user's live grant and follow now: a request
the claim would skip is refused here (409 with ``choose()``'s reason) and nothing is written.

**People.** ``openid`` is the mini-program's; ``unionid`` names the same person across both accounts. A
unionid Tongzhi knows only as a follower of the OA (no mini-program user) is a person the
``oa_template`` channel can reach: the delivery's ``openid`` and ``oa_openid`` are then the follower's
OA openid, with no user. The other channels need a mini-program user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from ..catalog.preview import build_preview
from ..catalog.services import template_usable
from ..config import oa_configured
from ..dispatch.channels import NO_CHANNEL, NOT_FOLLOWING, choose
from ..extensions import db
from ..grants.services import has_live_grant
from ..models import ApiKey, Channel, Delivery, DeliverySource, WechatUser
from ..models.catalog import MessageTemplate
from ..models.oa import OaFollower
from ..models.oa_template import OaTemplate
from ..oa import templates as oa_templates
from ..oa.followers import following_openids, follows_now
from .services import create_delivery

STATES = ("developer", "trial", "formal")
LANGS = ("zh_CN", "en_US", "zh_HK", "zh_TW")
CHANNELS = tuple(channel.value for channel in Channel)
# The subscribe message's own fields: an oa_template request sends no subscribe message, so they would
# be silently dropped; they are refused instead.
SUBSCRIBE_FIELDS = ("template", "data", "miniprogram_state", "lang")
OA_FIELDS = ("template", "data", "pagepath")


class SendRefused(Exception):
    """The request cannot become a delivery: HTTP status, stable code, sentence, and the field at fault."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


@dataclass(frozen=True)
class OaMessage:
    """The Official Account's message: its template, values by key, and the page a tap opens when it
    is not the request's ``page``."""

    template: str
    data: dict[str, str]
    pagepath: str | None


@dataclass(frozen=True)
class SendRequest:
    openid: str | None
    unionid: str | None
    template: str | None  # the subscribe message's template; None on the oa_template channel
    data: dict[str, str]
    page: str | None
    miniprogram_state: str | None
    lang: str | None
    channel: Channel = Channel.mp_subscribe
    oa: OaMessage | None = None  # given exactly on the channels that may use the Official Account

    @property
    def person_field(self) -> str:
        return "openid" if self.openid is not None else "unionid"


def _text(
    body: dict[str, Any], name: str, limit: int, required: bool = False, prefix: str = ""
) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise SendRefused(422, "missing_field", f"{prefix}{name} is required.", f"{prefix}{name}")
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise SendRefused(
            422,
            "invalid_field",
            f"{prefix}{name} must be a non-empty string of at most {limit} characters.",
            f"{prefix}{name}",
        )
    return value.strip()


def _values(body: dict[str, Any], field: str) -> dict[str, str]:
    data = body.get("data", {})
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise SendRefused(422, "invalid_field", f"{field} must be an object of string values.", field)
    return data


def _channel(body: dict[str, Any]) -> Channel:
    value = body.get("channel")
    if value is None:
        return Channel.mp_subscribe
    if value not in CHANNELS:
        raise SendRefused(422, "invalid_field", f"channel must be one of {', '.join(CHANNELS)}.", "channel")
    return Channel(value)


def _oa_message(body: dict[str, Any], channel: Channel) -> OaMessage | None:
    oa = body.get("oa")
    if channel is Channel.mp_subscribe:
        if oa is not None:
            raise SendRefused(
                422,
                "unexpected_field",
                "oa is read only on the oa_template and mp_subscribe_or_oa channels; give channel.",
                "oa",
            )
        return None
    if oa is None:
        because = (
            "the oa_template channel sends the Official Account's message"
            if channel is Channel.oa_template
            else "without it the mp_subscribe_or_oa channel could never fall back to the Official Account"
        )
        raise SendRefused(422, "missing_field", f"oa is required: {because}.", "oa")
    if not isinstance(oa, dict):
        raise SendRefused(422, "invalid_field", "oa must be an object: {template, data, pagepath?}.", "oa")
    extra = sorted(set(oa) - set(OA_FIELDS))
    if extra:
        raise SendRefused(422, "unexpected_field", f"Unknown field 'oa.{extra[0]}'.", f"oa.{extra[0]}")
    return OaMessage(
        template=_text(oa, "template", 64, required=True, prefix="oa.") or "",
        data=_values(oa, "oa.data"),
        pagepath=_text(oa, "pagepath", 512, prefix="oa."),
    )


def parse_request(body: Any) -> SendRequest:
    """Check the JSON body's shape. :raise SendRefused: 400/422 naming the field."""
    if not isinstance(body, dict):
        raise SendRefused(400, "bad_request", "The body must be a JSON object.")
    allowed = {"openid", "unionid", "channel", "template", "data", "page", "miniprogram_state", "lang", "oa"}
    extra = sorted(set(body) - allowed)
    if extra:
        raise SendRefused(422, "unexpected_field", f"Unknown field {extra[0]!r}.", extra[0])
    openid, unionid = _text(body, "openid", 64), _text(body, "unionid", 64)
    if (openid is None) == (unionid is None):
        raise SendRefused(422, "missing_field", "Give exactly one of openid or unionid.", "openid")
    channel = _channel(body)
    oa = _oa_message(body, channel)
    if channel is Channel.oa_template:
        given = next((name for name in SUBSCRIBE_FIELDS if body.get(name) is not None), None)
        if given is not None:
            raise SendRefused(
                422,
                "unexpected_field",
                f"{given} belongs to the subscribe message, which the oa_template channel does not send: "
                "give the Official Account's message in oa.",
                given,
            )
        return SendRequest(openid, unionid, None, {}, _text(body, "page", 512), None, None, channel, oa)
    data = _values(body, "data")
    state, lang = _text(body, "miniprogram_state", 16), _text(body, "lang", 8)
    if state is not None and state not in STATES:
        raise SendRefused(
            422,
            "invalid_field",
            f"miniprogram_state must be one of {', '.join(STATES)}.",
            "miniprogram_state",
        )
    if lang is not None and lang not in LANGS:
        raise SendRefused(422, "invalid_field", f"lang must be one of {', '.join(LANGS)}.", "lang")
    template = _text(body, "template", 64, required=True) or ""
    return SendRequest(openid, unionid, template, data, _text(body, "page", 512), state, lang, channel, oa)


@dataclass(frozen=True)
class Person:
    """Whom the message is for: a mini-program user, or (``oa_template`` only) a follower of the
    Official Account with no mini-program user, known by the follower's OA openid."""

    user: WechatUser | None
    follower_openid: str | None = None

    @property
    def openid(self) -> str:
        return self.user.openid if self.user is not None else self.follower_openid or ""


def _find_person(request: SendRequest) -> Person:
    if request.openid is not None:
        user = db.session.scalar(select(WechatUser).where(WechatUser.openid == request.openid))
        if user is None:
            raise SendRefused(
                404, "unknown_user", "No user with this openid has used the mini-program.", "openid"
            )
        return Person(user)
    user = db.session.scalars(
        select(WechatUser).where(WechatUser.unionid == request.unionid).order_by(WechatUser.id)
    ).first()
    if user is not None:
        return Person(user)
    follower = db.session.scalars(
        select(OaFollower)
        .where(OaFollower.unionid == request.unionid)
        .order_by(OaFollower.following.desc(), OaFollower.id.desc())
    ).first()
    if follower is not None and request.channel is Channel.oa_template:
        return Person(None, follower.openid)
    message = "No user with this unionid has used the mini-program."
    if request.channel is Channel.oa_template:
        message = "No mini-program user and no follower of the Official Account has this unionid."
    elif follower is not None:
        message += " It is a follower of the Official Account: the oa_template channel reaches it."
    raise SendRefused(404, "unknown_user", message, "unionid")


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


def _find_oa_template(template_id: str) -> OaTemplate:
    template = db.session.scalar(select(OaTemplate).where(OaTemplate.template_id == template_id))
    if template is None:
        raise SendRefused(
            404,
            "unknown_oa_template",
            "The Official Account has no template with this ID in Tongzhi's catalog (flask sync-templates).",
            "oa.template",
        )
    ok, reason = oa_templates.oa_template_usable(template)
    if not ok:
        raise SendRefused(
            409,
            f"oa_template_{reason}",
            f"The Official Account template cannot be used now ({reason}).",
            "oa.template",
        )
    return template


def _checked_oa_data(template: OaTemplate, oa: OaMessage) -> dict[str, str]:
    """The values by the OA's rules: the same checker as the catalog's card preview."""
    keys = {spec["key"] for spec in template.keywords or []}
    extra = sorted(set(oa.data) - keys)
    if extra:
        raise SendRefused(
            422,
            "unexpected_key",
            f"{extra[0]}: the Official Account template has no such key.",
            f"oa.data.{extra[0]}",
        )
    preview = oa_templates.build_preview(template, oa.data)
    for key, check in preview.checks.items():
        if check.errors:
            error = check.errors[0]
            raise SendRefused(422, f"invalid_value.{error.rule}", error.message("en"), f"oa.data.{key}")
    return preview.send_data()


def _follows(person: Person) -> bool:
    if person.user is not None:
        return person.user.id in following_openids([person.user.id])
    return follows_now(person.follower_openid or "")


def _unreachable(reason: str, request: SendRequest) -> SendRefused:
    """The 409 for a request the claim would skip (``choose()``'s reason)."""
    if reason == NOT_FOLLOWING:
        return SendRefused(
            409,
            NOT_FOLLOWING,
            "The user does not follow the Official Account: the oa_template channel cannot reach them.",
            request.person_field,
        )
    if reason == NO_CHANNEL:
        return SendRefused(
            409,
            NO_CHANNEL,
            "No channel reaches the user: they hold no live grant for the template and do not follow "
            "the Official Account.",
            "channel",
        )
    return SendRefused(409, "no_grant", "The user holds no live grant for this template.", "template")


def find_existing(api_key: ApiKey, idempotency_key: str | None) -> Delivery | None:
    if not idempotency_key:
        return None
    return db.session.scalar(
        select(Delivery).where(Delivery.api_key_id == api_key.id, Delivery.idempotency_key == idempotency_key)
    )


def _delivery_fields(request: SendRequest, person: Person) -> dict[str, Any]:
    """Check the message(s) the channel may send and whether it reaches the person now; the delivery's
    columns. :raise SendRefused: nothing was written."""
    fields: dict[str, Any] = {"channel": request.channel.value}
    holds_credit = False
    if request.template is not None:
        assert person.user is not None  # only oa_template reaches a follower with no user
        template = _find_template(request.template)
        lang = request.lang or template.lang or "zh_CN"
        fields.update(
            template_id=template.template_id,
            data=_checked_data(template, person.user, request, lang),
            page=request.page if request.page is not None else (template.page or None),
            miniprogram_state=request.miniprogram_state or template.miniprogram_state or "formal",
            lang=lang,
        )
        holds_credit = has_live_grant(person.user.id, template.template_id)
    follows = False
    if request.oa is not None:
        oa_template = _find_oa_template(request.oa.template)
        fields.update(
            oa_template_id=oa_template.template_id,
            oa_data=_checked_oa_data(oa_template, request.oa),
            oa_pagepath=request.oa.pagepath,
            oa_openid=person.follower_openid,  # a user's follower openid is chosen at claim
        )
        if request.template is None:
            # No subscribe message: the row is known by the OA template (template_id is never empty).
            fields.update(template_id=oa_template.template_id, data={}, page=request.page)
        follows = _follows(person)
    choice = choose(
        request.channel, holds_credit=holds_credit, follows=follows, has_oa_template=request.oa is not None
    )
    if not choice.sends:
        raise _unreachable(choice.reason, request)
    return fields


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
    if request.oa is not None and not oa_configured(current_app.config):
        raise SendRefused(
            409,
            "channel_off",
            f"The Official Account channel is off (WECHAT_OA_APPID and WECHAT_OA_SECRET are not set): "
            f"{request.channel.value} cannot be used.",
            "channel",
        )
    person = _find_person(request)
    delivery = create_delivery(
        source=DeliverySource.api,
        openid=person.openid,
        api_key_id=api_key.id,
        idempotency_key=idempotency_key,
        request_digest=request_digest,
        **_delivery_fields(request, person),
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
    """The API's message object. ``channel``: the one the claim chose, else the one asked for."""
    return {
        "id": delivery.id,
        "state": delivery.state.value,
        "channel": delivery.channel_used or delivery.channel,
        "errcode": delivery.errcode,
        "errmsg": delivery.errmsg or None,
        "msgid": delivery.msgid,
    }
