"""The grant ledger as the dispatch engine uses it, with the credit budget applied to campaign sends."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..grants.ledger import GrantLedger
from ..models.catalog import MessageTemplate
from .ledger import ReservationRequest


class BudgetedLedger(GrantLedger):
    """Campaign sends must leave each user the template's credit budget, kept for transactional sends."""

    def __init__(self) -> None:
        super().__init__(keep_for=lambda template_id, source: 0)

    def reserve(self, session: Session, rows: Sequence[ReservationRequest]) -> dict[int, str | None]:
        campaign_templates = {row.template_id for row in rows if row.source == "campaign"}
        budgets: dict[str, int] = {}
        if campaign_templates:
            budgets = {
                template_id: int(budget or 0)
                for template_id, budget in session.execute(
                    select(MessageTemplate.template_id, MessageTemplate.credit_budget).where(
                        MessageTemplate.template_id.in_(campaign_templates)
                    )
                )
            }
        # Read within the claim's own transaction, so the budget and the balances agree.
        self.keep_for = lambda template_id, source: budgets.get(template_id, 0) if source == "campaign" else 0
        return super().reserve(session, rows)


def grants_ledger() -> BudgetedLedger:
    return BudgetedLedger()
