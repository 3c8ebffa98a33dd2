"""Which kind a template is (one-time or long-term), as far as the catalog knows.

The catalog (``dashboard.models.catalog.MessageTemplate``) is the authority. Until it knows a template,
the ledger treats it as one-time and flags it unknown: an unknown template's accepts are still recorded
and credited, never dropped, so nothing is lost while an operator registers it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, scoped_session

from ..models.grants import TemplateKindName


@dataclass(frozen=True)
class TemplateInfo:
    kind: str  # a TemplateKindName value
    known: bool
    title: str = ""


UNKNOWN = TemplateInfo(kind=TemplateKindName.one_time.value, known=False)


def _catalog_model():
    """The catalog's model, or None while it is not part of this build."""
    try:
        from ..models.catalog import MessageTemplate
    except ImportError:
        return None
    if not all(hasattr(MessageTemplate, name) for name in ("template_id", "kind", "title")):
        return None
    return MessageTemplate


def lookup_templates(
    session: Session | scoped_session, template_ids: Iterable[str]
) -> dict[str, TemplateInfo]:
    """``TemplateInfo`` for each of ``template_ids`` (``UNKNOWN`` for those the catalog does not know)."""
    wanted = sorted(set(template_ids))
    found = dict.fromkeys(wanted, UNKNOWN)
    model = _catalog_model()
    if model is None or not wanted:
        return found
    rows = session.execute(
        select(model.template_id, model.kind, model.title).where(model.template_id.in_(wanted))
    ).all()
    for template_id, kind, title in rows:
        value = getattr(kind, "value", kind)
        kind_name = (
            TemplateKindName.long_term.value
            if str(value) == TemplateKindName.long_term.value
            else TemplateKindName.one_time.value
        )
        found[template_id] = TemplateInfo(kind=kind_name, known=True, title=title or "")
    return found


def template_info(session: Session | scoped_session, template_id: str) -> TemplateInfo:
    return lookup_templates(session, [template_id])[template_id]
