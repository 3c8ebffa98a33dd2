"""Catalog actions: register, edit, enable, review drift, delete, and ask whether a template may be used.

Services add to the session and return; the view or command that called them commits once (so a
failure never leaves half a change). Every state-changing action writes an audit event in the same
transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from sqlalchemy import Select, func, select

from ..audit.services import record
from ..deliveries.services import create_delivery, send_now
from ..extensions import db
from ..grants.kinds import convert_balances
from ..models import Delivery, DeliverySource, WechatUser, utcnow
from ..models.campaign import Campaign, CampaignState
from ..models.catalog import Drift, FitPolicy, MessageTemplate, TemplateKind, TemplateSource
from ..models.grants import GrantBalance
from ..wechat import get_client
from ..wechat.keywords import enum_values_from_template, parse_content, validate_value
from . import schema
from .preview import Preview, build_preview

SCENE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
TEMPLATE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MINIPROGRAM_STATES = ("developer", "trial", "formal")
LANGS = ("zh_CN", "en_US", "zh_HK", "zh_TW")


class CatalogError(Exception):
    """An action was refused; ``field`` names the form field it concerns, when there is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# -- reading -----------------------------------------------------------------------------------------


def get_by_template_id(template_id: str) -> MessageTemplate | None:
    return db.session.scalar(select(MessageTemplate).where(MessageTemplate.template_id == template_id))


@dataclass(frozen=True)
class CatalogFilter:
    kind: str = ""  # one_time | long_term
    enabled: str = ""  # yes | no
    scene: str = ""  # substring of the scene label; "-" = templates without one
    drift: str = ""  # none | changed | removed | any (= changed or removed)
    q: str = ""  # substring of the title or template ID


def filtered_templates(criteria: CatalogFilter) -> Select[tuple[MessageTemplate]]:
    query = select(MessageTemplate)
    if criteria.kind in TemplateKind.__members__:
        query = query.where(MessageTemplate.kind == TemplateKind(criteria.kind))
    if criteria.enabled in ("yes", "no"):
        query = query.where(MessageTemplate.enabled.is_(criteria.enabled == "yes"))
    if criteria.scene == "-":
        query = query.where(MessageTemplate.scene.is_(None))
    elif criteria.scene:
        query = query.where(MessageTemplate.scene.contains(criteria.scene.strip().lower(), autoescape=True))
    if criteria.drift == "any":
        query = query.where(MessageTemplate.drift != Drift.none)
    elif criteria.drift in Drift.__members__:
        query = query.where(MessageTemplate.drift == Drift(criteria.drift))
    if criteria.q:
        text = criteria.q.strip()
        query = query.where(
            MessageTemplate.title.contains(text, autoescape=True)
            | MessageTemplate.template_id.contains(text, autoescape=True)
        )
    # Removed templates sink to the bottom; the rest read alphabetically.
    removed_last = (MessageTemplate.drift == Drift.removed).label("removed_last")
    return query.order_by(removed_last, MessageTemplate.title, MessageTemplate.id)


def duplicate_titles() -> dict[str, list[MessageTemplate]]:
    """Titles shared by two or more templates still in WeChat.

    WeChat shows one subscribe popup per title: requesting two templates with the same title in one
    ``wx.requestSubscribeMessage`` call gets the second one ``filter``.
    """
    shared = (
        select(MessageTemplate.title)
        .where(MessageTemplate.drift != Drift.removed)
        .group_by(MessageTemplate.title)
        .having(func.count() > 1)
    )
    rows = db.session.scalars(
        select(MessageTemplate)
        .where(MessageTemplate.title.in_(shared), MessageTemplate.drift != Drift.removed)
        .order_by(MessageTemplate.id)
    )
    result: dict[str, list[MessageTemplate]] = {}
    for template in rows:
        result.setdefault(template.title, []).append(template)
    return result


def same_title_as(template: MessageTemplate) -> list[MessageTemplate]:
    """The other templates (still in WeChat) that share ``template``'s title."""
    if template.drift is Drift.removed:
        return []
    query = select(MessageTemplate).where(
        MessageTemplate.title == template.title,
        MessageTemplate.id != template.id,
        MessageTemplate.drift != Drift.removed,
    )
    return list(db.session.scalars(query.order_by(MessageTemplate.id)))


@dataclass(frozen=True)
class CatalogFigures:
    total: int
    enabled: int
    drift: int


def catalog_figures() -> CatalogFigures:
    """For the home page: templates registered, enabled (and not removed), and flagged by drift."""
    total = db.session.scalar(select(func.count()).select_from(MessageTemplate)) or 0
    enabled = (
        db.session.scalar(
            select(func.count())
            .select_from(MessageTemplate)
            .where(MessageTemplate.enabled.is_(True), MessageTemplate.drift != Drift.removed)
        )
        or 0
    )
    drift = (
        db.session.scalar(
            select(func.count()).select_from(MessageTemplate).where(MessageTemplate.drift != Drift.none)
        )
        or 0
    )
    return CatalogFigures(total=total, enabled=enabled, drift=drift)


class Usability(NamedTuple):
    """``(ok, reason)``. ``reason`` is a stable code: ``ok``, ``unknown`` (not registered),
    ``removed`` (gone from WeChat: 40037), ``disabled`` (switched off here), or ``changed`` (WeChat
    changed it since it was registered; an operator must review the schema first)."""

    ok: bool
    reason: str


def template_usable(template_id: str) -> Usability:
    """May a campaign or an API send use ``template_id`` now? Send paths ask this before sending.

    A drifted template is refused rather than sent, so a change at WeChat shows up here, flagged,
    instead of as 40037/47003 answers later.
    """
    template = get_by_template_id(template_id)
    if template is None:
        return Usability(False, "unknown")
    if template.drift is Drift.removed:
        return Usability(False, "removed")
    if not template.enabled:
        return Usability(False, "disabled")
    if template.drift is Drift.changed:
        return Usability(False, "changed")
    return Usability(True, "ok")


# -- registering ---------------------------------------------------------------------------------------


def new_template(
    *,
    template_id: str,
    title: str,
    kind: TemplateKind,
    content: str,
    example: str = "",
    enum_values: Mapping[str, Sequence[str]] | None = None,
    source: TemplateSource,
    tid: str | None = None,
    scene_desc: str = "",
    snapshot: dict[str, Any] | None = None,
) -> MessageTemplate:
    """Add a template to the session with its keyword schema parsed from ``content``.

    :raise CatalogError: the content has no ``{{key.DATA}}`` placeholder, or the ID is registered.
    """
    template_id = template_id.strip()
    if not parse_content(content):
        raise CatalogError("no_placeholders", "content")
    if get_by_template_id(template_id) is not None:
        raise CatalogError("duplicate_template_id", "template_id")
    now = utcnow()
    template = MessageTemplate(
        template_id=template_id,
        title=title.strip(),
        kind=kind,
        content=content,
        example=example or "",
        keywords=list(schema.build_schema(content, enum_values)),
        source=source,
        tid=tid,
        scene_desc=scene_desc or "",
        page="",
        miniprogram_state="formal",
        lang="zh_CN",
        enabled=True,
        credit_budget=0,
        drift=Drift.none,
        drift_note="",
        wechat_snapshot=snapshot,
        synced_at=now if snapshot is not None else None,
    )
    db.session.add(template)
    db.session.flush()  # the audit event names the new row's id
    # Answers recorded while the template was unknown made one-time balances: a long-term template
    # converts them (and every balance of it is now known).
    convert_balances(db.session, template_id, kind.value, reason="registered")
    return template


def register_manual(
    *, template_id: str, title: str, kind: str, content: str, example: str = "", scene: str = ""
) -> MessageTemplate:
    """A template typed in from the WeChat console; its schema is parsed from ``content``."""
    content = normalise_content(content)
    template = new_template(
        template_id=template_id,
        title=title,
        kind=TemplateKind(kind),
        content=content,
        example=normalise_content(example),
        source=TemplateSource.manual,
    )
    if scene:
        set_scene(template, scene)
    record(
        "template.created",
        template,
        source="manual",
        template_id=template.template_id,
        title=template.title,
        keywords=[k["key"] for k in template.keywords],
    )
    return template


def normalise_content(text: str | None) -> str:
    """Content as pasted from a browser: Windows line breaks and literal ``\\n`` become newlines."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    if "\n" not in text and "\\n" in text:
        text = text.replace("\\n", "\n")
    return text.strip("\n") + ("\n" if text.strip() else "")


def set_scene(template: MessageTemplate, scene: str | None) -> None:
    """Give ``template`` the business scene label ``scene`` (``None``/blank clears it).

    :raise CatalogError: not a lower-case identifier, or another template has it.
    """
    scene = (scene or "").strip().lower() or None
    if scene is not None:
        if not SCENE_RE.fullmatch(scene):
            raise CatalogError("bad_scene", "scene")
        holder = db.session.scalar(
            select(MessageTemplate).where(MessageTemplate.scene == scene, MessageTemplate.id != template.id)
        )
        if holder is not None:
            raise CatalogError("scene_taken", "scene")
    template.scene = scene


# -- editing ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeywordEdit:
    label: str
    enum_values: list[str]
    default: str | None
    fit: str


@dataclass(frozen=True)
class TemplateSettings:
    page: str
    miniprogram_state: str
    lang: str
    enabled: bool
    scene: str
    credit_budget: int = 0


def default_problem(spec: Mapping[str, Any], default: str | None, enum_values: Iterable[str], locale: str):
    """The first rule a default value breaks (user variables filled with samples), or ``None``."""
    if not default:
        return None
    filled = schema.fill_user_variables(default, schema.SAMPLE_USER)
    for violation in validate_value(spec["key"], filled, list(enum_values), type_name=spec["type"]):
        if violation.is_error:
            return violation.message(locale)
    return None


def update_template(
    template: MessageTemplate, settings: TemplateSettings, keywords: Sequence[KeywordEdit]
) -> list[str]:
    """Apply an edit and audit it; returns the names of what changed (empty: nothing did).

    :raise CatalogError: bad scene, or a keyword list that does not match the schema.
    """
    specs = template.keyword_specs
    if len(keywords) != len(specs):
        raise CatalogError("schema_mismatch")
    if template.drift is Drift.removed:
        settings = replace(settings, enabled=False)  # gone from WeChat: nothing to enable
    changed: list[str] = []
    for name in ("page", "miniprogram_state", "lang", "enabled", "credit_budget"):
        value = getattr(settings, name)
        if getattr(template, name) != value:
            setattr(template, name, value)
            changed.append(name)
    old_scene = template.scene
    set_scene(template, settings.scene)
    if template.scene != old_scene:
        changed.append("scene")
    new_specs = []
    for spec, edit in zip(specs, keywords, strict=True):
        updated = {
            **spec,
            "label": edit.label.strip() or spec.get("content_label") or spec["key"],
            "enum_values": list(edit.enum_values) if schema.is_enum(spec["type"]) else spec["enum_values"],
            "default": (edit.default or "").strip() or None,
            "fit": FitPolicy(edit.fit).value,
        }
        if updated != spec:
            changed.append(f"keyword:{spec['key']}")
        new_specs.append(updated)
    template.keywords = new_specs  # a new list, so the JSON column is written
    if changed:
        record("template.updated", template, template_id=template.template_id, changed=changed)
    return changed


def review_drift(template: MessageTemplate) -> None:
    """An operator checked a template WeChat changed: it may be used again."""
    if template.drift is not Drift.changed:
        raise CatalogError("no_drift")
    record("template.drift_reviewed", template, template_id=template.template_id, note=template.drift_note)
    template.drift = Drift.none
    template.drift_note = ""
    template.drift_at = None


class DeletionImpact(NamedTuple):
    """What refers to a template by its WeChat ID, for the confirmation before deleting it."""

    deliveries: int  # every send attempt recorded with it (they stay)
    live_grants: int  # users who hold a live grant of it (the grants stay, unused while it is gone)
    campaigns: list[Campaign]  # campaigns not finished (draft … paused) that use it: they cannot start


def deletion_impact(template: MessageTemplate) -> DeletionImpact:
    deliveries = db.session.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.template_id == template.template_id)
    )
    live = select(func.count()).where(
        GrantBalance.template_id == template.template_id,
        (GrantBalance.credits > 0) | GrantBalance.active.is_(True),
    )
    unfinished = (CampaignState.draft, CampaignState.scheduled, CampaignState.running, CampaignState.paused)
    campaigns = db.session.scalars(
        select(Campaign)
        .where(Campaign.template_id == template.template_id, Campaign.state.in_(unfinished))
        .order_by(Campaign.id)
    ).all()
    return DeletionImpact(int(deliveries or 0), int(db.session.scalar(live) or 0), list(campaigns))


def delete_template(template: MessageTemplate, *, at_wechat: bool) -> None:
    """Remove ``template`` from the catalog (deliveries keep its ID); with ``at_wechat``, delete it in
    WeChat first (``deltemplate``), so a refusal there changes nothing here.

    :raise WeChatError: WeChat refused the deletion.
    """
    if at_wechat and template.drift is not Drift.removed:
        get_client().delete_template(template.template_id)
    record(
        "template.deleted",
        template,
        template_id=template.template_id,
        title=template.title,
        at_wechat=bool(at_wechat),
    )
    db.session.delete(template)


def enum_values_by_key(row: Mapping[str, Any]) -> dict[str, list[str]]:
    """``keywordEnumValueList`` of a gettemplate row as ``{key: values}``."""
    return enum_values_from_template(row.get("keywordEnumValueList"))


# -- test sends ------------------------------------------------------------------------------------------


class TestSendRefused(CatalogError):
    """The values break rules whose fit policy is ``reject`` (or have no fix): nothing was sent."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, preview: Preview) -> None:
        super().__init__("invalid_values")
        self.preview = preview


def send_test(
    template: MessageTemplate,
    *,
    openid: str,
    typed: Mapping[str, str],
    miniprogram_state: str,
    lang: str,
    page: str,
    operator_id: int | None,
) -> tuple[Preview, Delivery]:
    """Validate, then send one test message to ``openid`` as a delivery like any other.

    User variables take the user's own values when Tongzhi knows the openid, else the samples.
    Commits (through ``send_now``: once before calling WeChat, once with its answer), with the
    audit event in the first commit.

    :raise TestSendRefused: a value breaks its rule and its policy is ``reject`` (or there is no fix).
    :raise CatalogError: the template was removed in WeChat.
    """
    if template.drift is Drift.removed:
        raise CatalogError("template_removed")
    user = db.session.scalar(select(WechatUser).where(WechatUser.openid == openid))
    user_values = {"openid": openid}
    if user is not None and user.nickname:
        user_values["nickname"] = user.nickname
    result = build_preview(template, typed, lang, user_values)
    if result.blocking:
        raise TestSendRefused(result)
    data = result.send_data()
    delivery = create_delivery(
        source=DeliverySource.test,
        openid=openid,
        template_id=template.template_id,
        data=data,
        page=page or None,
        miniprogram_state=miniprogram_state,
        lang=lang,
        requested_by_id=operator_id,
    )
    db.session.flush()
    record(
        "template.test_sent",
        template,
        template_id=template.template_id,
        openid=openid,
        delivery_id=delivery.id,
        miniprogram_state=miniprogram_state,
        fixed=[key for key, check in result.checks.items() if check.sent_value != check.value],
    )
    send_now(delivery)
    return result, delivery
