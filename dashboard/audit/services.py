"""Recording and reading the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import has_request_context, request
from flask_login import current_user
from sqlalchemy import Select, select

from ..extensions import db
from ..models import AuditEvent, Operator


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
        query = query.where(
            (AuditEvent.target_id == criteria.target) | (AuditEvent.target_type == criteria.target)
        )
    if criteria.since:
        query = query.where(AuditEvent.at >= criteria.since)
    if criteria.until:
        query = query.where(AuditEvent.at < criteria.until)
    return query


def known_actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))
