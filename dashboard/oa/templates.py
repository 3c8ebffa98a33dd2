"""The Official Account's template messages in the catalog: sync, keys, card preview, test send.

**Sync** (``flask sync-templates`` when the OA is configured, or the Official Account tab of the
Templates page): ``template/get_all_private_template`` compared with the ``oa_template`` table, as the
mini-program catalog does it (``dashboard.catalog.sync``): a new template is registered, one whose
title, industry, content or keys moved is updated and flagged ``changed`` (until an operator marks it
reviewed), one gone from WeChat is kept with its history and flagged ``removed``.

**Keys and values**: the content's placeholders are parsed by the one keyword parser
(``dashboard.wechat.keywords.parse_content``): classic ``first`` / ``keywordN`` / ``remark`` and typed
keys (``thing3``, ``amount5`` …). Values are checked by the one checker with the Official Account's
rule set (``OFFICIAL_ACCOUNT_RULES``: ``amount`` ≤ 12 digits, ``const``, no ``phrase``).

**Test send**: only to an openid Tongzhi knows as a follower; a delivery like any other (source
``test``, channel ``oa_template``) sent by ``deliveries.services.send_now`` through the OA client's
``send_template_message`` with ``miniprogram {appid, pagepath}`` and the delivery's ``client_msg_id``;
the audit log keeps ``oa_template.test_sent`` with the delivery's id and WeChat's answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from ..audit.services import record
from ..deliveries.services import create_delivery, send_now
from ..dispatch.channels import client_msg_id as client_msg_id_of
from ..extensions import db
from ..models import Channel, DeliverySource
from ..models.catalog import Drift
from ..models.oa import OaFollower
from ..models.oa_template import OaTemplate
from ..models.types import utcnow
from ..wechat.keywords import (
    OFFICIAL_ACCOUNT_RULES,
    Violation,
    parse_content,
    render_content,
    suggest_fix,
    validate_value,
)
from ..wechat.oa import OaTemplate as RemoteOaTemplate
from ..wechat.oa import OfficialAccountClient, get_oa_client
from .followers import user_for_follower

#: The differences a sync reports.
FIELDS = ("restored", "title", "industry", "content", "keys")
NOT_FOLLOWING = 43004


# -- keys --------------------------------------------------------------------------------------------------


def parse_keys(content: str) -> list[dict[str, str]]:
    """The content's keys in order with their types and labels (the text before them on their line).

    ``"{{first.DATA}}\\n订单号：{{keyword1.DATA}}"`` → ``[{key: first, type: first, label: ""},
    {key: keyword1, type: keyword, label: 订单号}]``; ``{{amount5.DATA}}`` has type ``amount``.
    """
    return [{"key": kw.key, "type": kw.type, "label": kw.label} for kw in parse_content(content)]


def is_classic(template: OaTemplate) -> bool:
    """Classic templates (first / keywordN / remark) predate the typed category templates."""
    return any(spec["type"] in ("first", "keyword", "remark") for spec in template.keywords or [])


# -- sync --------------------------------------------------------------------------------------------------


def _snapshot(row: RemoteOaTemplate) -> dict[str, Any]:
    return {
        "title": row.title,
        "primary_industry": row.primary_industry,
        "deputy_industry": row.deputy_industry,
        "content": row.content,
        "example": row.example,
    }


def _differences(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    fields = []
    if before.get("title") != after["title"]:
        fields.append("title")
    if (before.get("primary_industry"), before.get("deputy_industry")) != (
        after["primary_industry"],
        after["deputy_industry"],
    ):
        fields.append("industry")
    if before.get("content") != after["content"]:
        fields.append("content")
    old_keys = [(k["key"], k["type"]) for k in parse_keys(str(before.get("content") or ""))]
    new_keys = [(k["key"], k["type"]) for k in parse_keys(after["content"])]
    if old_keys != new_keys:
        fields.append("keys")
    return fields


@dataclass
class OaSyncResult:
    """What a sync did: template ids (and titles) per outcome, with the changed fields."""

    new: list[tuple[str, str]] = field(default_factory=list)
    changed: list[tuple[str, str, list[str]]] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)
    unchanged: int = 0

    def summary(self) -> str:
        return (
            f"{len(self.new)} new, {len(self.changed)} changed, {len(self.removed)} removed, "
            f"{self.unchanged} unchanged"
        )


def sync_oa_templates(
    client: OfficialAccountClient | None = None, *, actor_email: str | None = None, apply: bool = True
) -> OaSyncResult:
    """Read the OA's templates and make the table match (adds to the session; the caller commits).

    With ``apply=False`` nothing is changed (a dry run). :raise WeChatError: as the client does, before
    anything was written.
    """
    remote = (client or get_oa_client()).get_oa_templates()
    local = {t.template_id: t for t in db.session.scalars(select(OaTemplate).order_by(OaTemplate.id))}
    result = OaSyncResult()
    now = utcnow()
    actor = {"actor_email": actor_email} if actor_email is not None else {}
    seen: set[str] = set()
    for row in remote:
        if row.template_id in seen:
            continue
        seen.add(row.template_id)
        after = _snapshot(row)
        template = local.get(row.template_id)
        if template is None:
            result.new.append((row.template_id, row.title))
            if apply:
                template = OaTemplate(
                    template_id=row.template_id,
                    keywords=parse_keys(row.content),
                    synced_at=now,
                    wechat_snapshot=after,
                    drift=Drift.none,
                    drift_note="",
                    **after,
                )
                db.session.add(template)
                db.session.flush()
                record("oa_template.created", template, template_id=row.template_id, title=row.title, **actor)
            continue
        fields = _differences(template.wechat_snapshot or {}, after)
        if template.drift is Drift.removed:
            fields.insert(0, "restored")
        if not fields:
            result.unchanged += 1
            if apply:
                template.example = row.example
                template.wechat_snapshot = after
                template.synced_at = now
            continue
        result.changed.append((row.template_id, row.title, fields))
        if apply:
            for name, value in after.items():
                setattr(template, name, value)
            template.keywords = parse_keys(row.content)
            template.wechat_snapshot = after
            template.synced_at = now
            template.removed_at = None
            template.drift = Drift.changed
            template.drift_note = ",".join(fields)
            template.drift_at = now
            record(
                "oa_template.changed_in_wechat", template, template_id=row.template_id, fields=fields, **actor
            )
    for template_id, template in local.items():
        if template_id in seen or template.drift is Drift.removed:
            continue
        result.removed.append((template_id, template.title))
        if apply:
            template.drift = Drift.removed
            template.drift_note = ""
            template.drift_at = now
            template.removed_at = now
            record("oa_template.removed_in_wechat", template, template_id=template_id, **actor)
    if apply:
        record(
            "oa_catalog.synced",
            target_type="oa_template",
            new=len(result.new),
            changed=len(result.changed),
            removed=len(result.removed),
            unchanged=result.unchanged,
            **actor,
        )
    return result


def oa_template_usable(template: OaTemplate | None) -> tuple[bool, str]:
    """May a send use this OA template now? ``(ok, reason)`` as the mini-program catalog's
    ``template_usable`` answers: ``unknown``, ``removed`` (gone from WeChat: 40037) or ``changed`` (its
    keys may have moved; an operator reviews it first), else ``ok``."""
    if template is None:
        return False, "unknown"
    if template.drift is Drift.removed:
        return False, "removed"
    if template.drift is Drift.changed:
        return False, "changed"
    return True, "ok"


def mark_reviewed(template: OaTemplate) -> bool:
    """A changed template was checked by an operator: clear the flag. False when nothing to review."""
    if template.drift is not Drift.changed:
        return False
    record("oa_template.reviewed", template, template_id=template.template_id, fields=template.drift_note)
    template.drift = Drift.none
    template.drift_note = ""
    template.drift_at = utcnow()
    return True


# -- preview -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyCheck:
    key: str
    type: str
    label: str
    value: str
    violations: list[Violation]
    fix: str | None

    @property
    def errors(self) -> list[Violation]:
        return [v for v in self.violations if v.is_error]


@dataclass(frozen=True)
class CardLine:
    """One line of the card. ``kind``: ``first`` (the opening line), ``remark`` (the closing one), or
    ``row`` (label and value)."""

    kind: str
    label: str
    value: str
    checks: list[KeyCheck]

    @property
    def invalid(self) -> bool:
        return any(check.errors for check in self.checks)


@dataclass(frozen=True)
class OaPreview:
    title: str
    lines: list[CardLine]
    checks: dict[str, KeyCheck]

    @property
    def error_count(self) -> int:
        return sum(1 for check in self.checks.values() if check.errors)

    @property
    def blocking(self) -> bool:
        return self.error_count > 0

    def send_data(self) -> dict[str, str]:
        return {key: check.value for key, check in self.checks.items()}


def example_values(template: OaTemplate) -> dict[str, str]:
    """Values to start the preview with: the example's text at each placeholder's line, when the
    example has as many lines as the content and the line's label matches."""
    values = {spec["key"]: "" for spec in template.keywords or []}
    content_lines = [line for line in (template.content or "").splitlines() if line.strip()]
    example_lines = [line for line in (template.example or "").splitlines() if line.strip()]
    if len(content_lines) != len(example_lines):
        return values
    for content_line, example_line in zip(content_lines, example_lines, strict=True):
        keys = parse_content(content_line)
        if len(keys) != 1:
            continue
        label = content_line.split("{{", 1)[0]
        if example_line.startswith(label):
            values[keys[0].key] = example_line[len(label) :].strip()
    return values


def build_preview(template: OaTemplate, typed: Mapping[str, str]) -> OaPreview:
    """Check ``typed`` against the template with the OA's rules and lay out its card."""
    checks: dict[str, KeyCheck] = {}
    for spec in template.keywords or []:
        key = spec["key"]
        value = str(typed.get(key) or "")
        violations = validate_value(key, value, type_name=spec["type"], rules=OFFICIAL_ACCOUNT_RULES)
        fix = None
        if any(v.is_error for v in violations):
            fix = suggest_fix(key, value, type_name=spec["type"], rules=OFFICIAL_ACCOUNT_RULES)
        checks[key] = KeyCheck(key, spec["type"], spec.get("label") or "", value, violations, fix)
    lines: list[CardLine] = []
    for line in (template.content or "").splitlines():
        if not line.strip():
            continue
        keys = [kw.key for kw in parse_content(line)]
        rows = render_content(line, {k: typed.get(k) or "" for k in keys})
        label, value = rows[0] if rows else ("", "")
        kind = "row"
        if keys and not label:
            kind = "remark" if checks.get(keys[0]) and checks[keys[0]].type == "remark" else "first"
        lines.append(CardLine(kind, label, value, [checks[k] for k in keys if k in checks]))
    return OaPreview(template.title, lines, checks)


# -- test send ---------------------------------------------------------------------------------------------


class OaTestRefused(Exception):
    """Nothing was sent. ``reason``: ``not_follower``, ``invalid_values``, ``removed``, ``not_configured``."""

    def __init__(self, reason: str, preview: OaPreview | None = None):
        super().__init__(reason)
        self.reason = reason
        self.preview = preview


@dataclass(frozen=True)
class OaTestResult:
    openid: str
    client_msg_id: str
    state: str  # the delivery's: sent | failed | unknown | retry_wait | skipped
    errcode: int | None
    errmsg: str
    msgid: str
    delivery_id: int | None = None
    reason: str = ""


def followers_to_choose(limit: int = 200) -> list[OaFollower]:
    return list(
        db.session.scalars(
            select(OaFollower)
            .where(OaFollower.following.is_(True))
            .order_by(OaFollower.id.desc())
            .limit(limit)
        )
    )


def send_test(
    template: OaTemplate,
    *,
    openid: str,
    typed: Mapping[str, str],
    pagepath: str = "",
    client: OfficialAccountClient | None = None,
    operator_id: int | None = None,
) -> tuple[OaPreview, OaTestResult]:
    """Send one test message to a follower as a delivery like any other (source ``test``, channel
    ``oa_template``), through ``deliveries.services.send_now``: the engine's channel rule, the OA client,
    ``decide()`` for its state, so it shows on the Deliveries page with WeChat's answer. Commits (once
    before calling WeChat, once with its answer); the audit event is added after, for the caller to
    commit. :raise OaTestRefused: nothing was sent (WeChat was not called)."""
    preview = build_preview(template, typed)
    if template.is_removed:
        raise OaTestRefused("removed", preview)
    follower = db.session.scalar(select(OaFollower).where(OaFollower.openid == openid))
    if follower is None or not follower.following:
        raise OaTestRefused("not_follower", preview)
    if preview.blocking:
        raise OaTestRefused("invalid_values", preview)
    client = client or get_oa_client()
    if not client.configured:
        raise OaTestRefused("not_configured", preview)
    # The person's mini-program openid when Tongzhi knows one (the delivery shows on their page), else
    # the follower's: the message goes to the follower's OA openid either way.
    user = user_for_follower(follower)
    delivery = create_delivery(
        source=DeliverySource.test,
        openid=user.openid if user is not None else openid,
        template_id=template.template_id,
        data={},
        requested_by_id=operator_id,
        channel=Channel.oa_template.value,
        oa_openid=openid,
        oa_template_id=template.template_id,
        oa_data=preview.send_data(),
        oa_pagepath=pagepath or None,
    )
    send_now(delivery)
    state = delivery.state.value
    result = OaTestResult(
        openid,
        client_msg_id_of(delivery.id),
        state,
        delivery.errcode,
        delivery.errmsg or "",
        delivery.msgid or "",
        delivery.id,
        delivery.reason or "",
    )
    record(
        "oa_template.test_sent",
        template,
        template_id=template.template_id,
        openid=openid,
        pagepath=pagepath,
        client_msg_id=result.client_msg_id,
        delivery_id=delivery.id,
        state=state,
        errcode=result.errcode,
        errmsg=result.errmsg,
        msgid=result.msgid,
    )
    return preview, result
