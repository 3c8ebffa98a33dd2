from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select

from ..catalog.services import CatalogFigures, catalog_figures
from ..extensions import db
from ..grants.services import LiveGrantFigures, live_grant_figures
from ..models import AuditEvent, Operator, Role, utcnow


@dataclass(frozen=True)
class HomeFigures:
    operators_by_role: dict[str, int]
    operators_disabled: int
    audit_events_today: int
    templates: CatalogFigures | None = None
    live_grants: LiveGrantFigures | None = None


def home_figures() -> HomeFigures:
    rows = db.session.execute(
        select(Operator.role, func.count()).where(Operator.is_disabled.is_(False)).group_by(Operator.role)
    ).all()
    by_role = {role.value: 0 for role in Role}
    by_role.update({role.value: count for role, count in rows})
    disabled = db.session.scalar(
        select(func.count()).select_from(Operator).where(Operator.is_disabled.is_(True))
    )
    since = utcnow() - timedelta(hours=24)
    events = db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.at >= since))
    return HomeFigures(
        operators_by_role=by_role,
        operators_disabled=disabled or 0,
        audit_events_today=events or 0,
        templates=catalog_figures(),
        live_grants=live_grant_figures(top=3),
    )
