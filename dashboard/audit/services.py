"""Recording and reading the audit log."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app, has_request_context, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import Select, select

from ..access import declared_access
from ..extensions import db
from ..models import AuditEvent, Operator, Role


def record(
    action: str,
    target: object | None = None,
    *,
    target_type: str = "",
    target_id: str = "",
    actor: Operator | None = None,
    actor_email: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Add one audit event to the session (the caller commits it with the change it describes).

    ``target`` may be a model instance: its table name and primary key become the target.
    Never pass secrets in ``detail``.
    """
    if target is not None:
        target_type = target_type or getattr(target, "__tablename__", type(target).__name__.lower())
        target_id = target_id or str(getattr(target, "id", "") or "")
    if actor is None and has_request_context() and current_user.is_authenticated:
        actor = current_user._get_current_object()
    event = AuditEvent(
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        actor_id=actor.id if actor is not None else None,
        actor_email=actor_email if actor_email is not None else (actor.email if actor else ""),
        detail=detail,
        ip=(request.remote_addr or "") if has_request_context() else "",
    )
    db.session.add(event)
    return event


@dataclass(frozen=True)
class AuditFilter:
    action: str = ""
    actor: str = ""
    target: str = ""
    since: datetime | None = None
    until: datetime | None = None


def filtered_events(criteria: AuditFilter) -> Select[tuple[AuditEvent]]:
    query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    if criteria.action:
        query = query.where(AuditEvent.action.startswith(criteria.action))
    if criteria.actor:
        query = query.where(AuditEvent.actor_email.contains(criteria.actor.lower()))
    if criteria.target:
        target_type, target_id = parse_target(criteria.target)
        if target_type and target_id:
            query = query.where(AuditEvent.target_type == target_type, AuditEvent.target_id == target_id)
        else:
            word = target_type or target_id
            query = query.where((AuditEvent.target_id == word) | (AuditEvent.target_type == word))
    if criteria.since:
        query = query.where(AuditEvent.at >= criteria.since)
    if criteria.until:
        query = query.where(AuditEvent.at < criteria.until)
    return query


def known_actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))


# "operator / 12" (the filter's placeholder), "operator/12", "operator 12", "operator #12", "operator:12";
# a lone word is a type or an id, "#12" an id.
_TARGET_RE = re.compile(r"^(?P<type>[A-Za-z_]\w*)\s*[/#:\s]\s*#?\s*(?P<id>[^\s/#:]+)$")
# Words an operator may type for a target type.
TARGET_ALIASES = {
    "template": "message_template",
    "user": "wechat_user",
    "key": "api_key",
    "apikey": "api_key",
}


def parse_target(text: str) -> tuple[str, str]:
    """``(target_type, target_id)`` from what an operator typed; either may be empty."""
    text = text.strip()
    match = _TARGET_RE.match(text)
    if match:
        target_type = match["type"].lower()
        return TARGET_ALIASES.get(target_type, target_type), match["id"]
    bare = text.lstrip("#").strip()
    if text.startswith("#") or bare.isdigit():
        return "", bare
    word = text.lower().rstrip("/#: ")
    return TARGET_ALIASES.get(word, word), ""


# What an event's target names: a label with the id, and the page that shows it.
# (endpoint, URL argument for the id or None for a list page, anchor made from the id or None)
TARGET_PAGES: dict[str, tuple[Any, Any, str, str | None, str | None]] = {
    "operator": (_l("Operator #%(id)s"), _l("Operators"), "operators.index", None, "operator-{id}"),
    "message_template": (_l("Template #%(id)s"), _l("Templates"), "catalog.detail", "template_id", None),
    "api_key": (_l("API key #%(id)s"), _l("API keys"), "apikeys.index", None, None),
    "campaign": (_l("Campaign #%(id)s"), _l("Campaigns"), "campaigns.detail", "campaign_id", None),
    "segment": (_l("Segment #%(id)s"), _l("Segments"), "segments.detail", "segment_id", None),
    "delivery": (_l("Delivery #%(id)s"), _l("Deliveries"), "deliveries.detail", "delivery_id", None),
    "wechat_user": (_l("User #%(id)s"), _l("Users"), "audience.detail", "user_id", None),
    "user_attribute": (
        _l("User attribute #%(id)s"),
        _l("User attributes"),
        "user_attributes.index",
        None,
        "attribute-{id}",
    ),
    "dispatch_state": (_l("Sending limits"), _l("Sending limits"), "settings.index", None, None),
    "oa_template": (
        _l("Official Account template #%(id)s"),
        _l("Official Account templates"),
        "oa_templates.detail",
        "template_id",
        None,
    ),
}
LIST_PAGES = {
    "catalog.detail": "catalog.index",
    "campaigns.detail": "campaigns.index",
    "segments.detail": "segments.index",
    "deliveries.detail": "deliveries.index",
    "audience.detail": "audience.index",
    "oa_templates.detail": "oa_templates.index",
}


def _may_open(endpoint: str) -> bool:
    """The endpoint exists and the operator looking at the log may open it."""
    needed = declared_access(current_app, endpoint)
    if needed is None:
        return False
    if needed == "public":
        return True
    return bool(current_user.is_authenticated and Role(current_user.role).allows(Role(needed)))


def describe_target(event: AuditEvent) -> tuple[str, str | None]:
    """The target as words (in the operator's language) and a link to it, or None when there is no
    page for it or the operator may not open that page."""
    known = TARGET_PAGES.get(event.target_type)
    if known is None:
        label = f"{event.target_type} #{event.target_id}" if event.target_id else event.target_type
        return label, None
    one, many, endpoint, id_arg, anchor = known
    target_id = event.target_id
    if event.target_type == "dispatch_state":
        target_id = ""
    if target_id and id_arg and not target_id.isdigit():
        return str(one % {"id": target_id}), None
    if not target_id and id_arg:
        endpoint = LIST_PAGES.get(endpoint, endpoint)
        id_arg = None
    label = str(one % {"id": target_id}) if target_id else str(many)
    if not _may_open(endpoint):
        return label, None
    values: dict[str, Any] = {}
    if id_arg:
        values[id_arg] = int(target_id)
    if anchor and target_id:
        values["_anchor"] = anchor.format(id=target_id)
    return label, url_for(endpoint, **values)


# What each action is called on the page; an action missing here shows as its code.
ACTION_LABELS: dict[str, Any] = {
    "api_key.created": _l("API key created"),
    "api_key.revoked": _l("API key revoked"),
    "auth.locked": _l("Account locked after failed logins"),
    "auth.login": _l("Logged in"),
    "auth.login_failed": _l("Login failed"),
    "auth.login_refused": _l("Login refused"),
    "auth.logout": _l("Logged out"),
    "campaign.created": _l("Campaign created"),
    "campaign.duplicated": _l("Campaign duplicated"),
    "campaign.edited": _l("Campaign edited"),
    "campaign.launch": _l("Campaign launched"),
    "campaign.pause": _l("Campaign paused"),
    "campaign.resume": _l("Campaign resumed"),
    "campaign.cancel": _l("Campaign cancelled"),
    "campaign.retry_failed": _l("Campaign's failed sends retried"),
    "campaign.test_sent": _l("Campaign test send"),
    "catalog.synced": _l("Templates synced from WeChat"),
    "delivery.force_resent": _l("Delivery force-resent"),
    "oa_catalog.synced": _l("Official Account templates synced from WeChat"),
    "oa_template.created": _l("Official Account template added"),
    "oa_template.changed_in_wechat": _l("Official Account template changed in WeChat"),
    "oa_template.removed_in_wechat": _l("Official Account template removed in WeChat"),
    "oa_template.reviewed": _l("Official Account template change reviewed"),
    "oa_template.test_sent": _l("Official Account template test send"),
    "operator.created": _l("Operator added"),
    "operator.locale_changed": _l("Language changed"),
    "operator.password_changed": _l("Own password changed"),
    "operator.password_reset": _l("Password reset by an admin"),
    "operator.unlocked": _l("Operator unlocked"),
    "operator.updated": _l("Operator changed (role or disabled)"),
    "segment.created": _l("Segment created"),
    "segment.changed": _l("Segment changed"),
    "sending.resumed": _l("Sending resumed"),
    "sending_limits.updated": _l("Sending limits changed"),
    "template.changed_in_wechat": _l("Template changed in WeChat"),
    "template.created": _l("Template added"),
    "template.deleted": _l("Template deleted"),
    "template.drift_reviewed": _l("Template change in WeChat reviewed"),
    "template.removed_in_wechat": _l("Template removed in WeChat"),
    "template.test_sent": _l("Template test send"),
    "template.updated": _l("Template edited"),
    "users.imported": _l("Users imported from CSV"),
    "user_attribute.declared": _l("User attribute declared"),
    "user_attribute.changed": _l("User attribute changed"),
}


def action_label(action: str) -> str:
    label = ACTION_LABELS.get(action)
    return str(label) if label is not None else action


# The details an event records, in words: a label per key, and how its value reads.
DETAIL_LABELS: dict[str, Any] = {
    "reason": _l("Reason"),
    "failures": _l("Failed attempts"),
    "until": _l("Locked until"),
    "role": _l("Role"),
    "disabled": _l("Disabled"),
    "email": _l("Email"),
    "after_reset": _l("After a reset by an admin"),
    "generated": _l("Password generated"),
    "locale": _l("Language"),
    "name": _l("Name"),
    "scopes": _l("Scopes"),
    "template_id": _l("Template ID"),
    "changed": _l("Changed"),
    "fields": _l("Changed"),
    "note": _l("Note"),
    "resend_id": _l("Resent as delivery"),
    "openid": "openid",
    "segment_id": _l("Segment"),
    "original_id": _l("Copied from campaign"),
    "rows": _l("Rows"),
    "rate_per_second": _l("Messages per second"),
    "concurrency": _l("Requests in flight per worker"),
    "frequency_cap_messages": _l("Campaign messages per user"),
    "frequency_cap_days": _l("Window in days"),
}
LOGIN_REASON_LABELS: dict[str, Any] = {
    "password": _l("wrong password"),
    "disabled": _l("account disabled"),
    "locked": _l("account locked"),
    "unknown": _l("no such operator"),
}
LOCALE_LABELS = {"zh": "中文", "en": "English"}
# Values that are codes on purpose (ids, field names, scopes): shown as code, after their label.
CODE_VALUES = {"scopes", "template_id", "changed", "fields", "openid"}


@dataclass(frozen=True)
class DetailItem:
    key: str
    label: str
    value: str
    code: bool  # the value is an identifier, shown as code


def detail_items(event: AuditEvent) -> list[DetailItem]:
    """An event's details as labelled values in the operator's language (unknown keys show as code)."""
    from ..labels import role_label

    items = []
    for key, value in (event.detail or {}).items():
        label = DETAIL_LABELS.get(key)
        code = key in CODE_VALUES or label is None
        if isinstance(value, bool):
            shown, code = str(_l("yes") if value else _l("no")), False
        elif isinstance(value, list | tuple):
            shown = ", ".join(str(item) for item in value)
        elif key == "role":
            shown = role_label(str(value))
        elif key == "reason" and value in LOGIN_REASON_LABELS:
            shown = str(LOGIN_REASON_LABELS[value])
        elif key == "locale":
            shown = LOCALE_LABELS.get(str(value), str(value))
        elif key in ("resend_id", "original_id", "segment_id") and value is not None:
            shown = f"#{value}"
        else:
            shown = "—" if value is None else str(value)
        items.append(DetailItem(key, str(label) if label is not None else key, shown, code))
    return items
