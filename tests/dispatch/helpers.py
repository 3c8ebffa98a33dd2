"""Setting up sends for dispatch tests: users, grants in both ledgers (ours and the sandbox's), deliveries."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.grants.services import record_answers
from dashboard.models import Delivery, DeliverySource, DeliveryState, WechatUser
from dashboard.models.grants import GrantBalance, GrantEvent
from tests.sandbox_api import SandboxApi, example_data


def add_user(openid: str) -> int:
    user = WechatUser(openid=openid)
    db.session.add(user)
    db.session.flush()
    return user.id


def grant(user_id: int, template_id: str, times: int = 1) -> None:
    """Our ledger learns ``times`` accepts, as the mini-program would report them."""
    for _ in range(times):
        record_answers(user_id, [(template_id, "accept")], source="client")


def add_delivery(openid: str, template_id: str, data: dict[str, str], **extra: Any) -> int:
    extra.setdefault("source", DeliverySource.campaign)
    extra.setdefault("campaign_id", 1 if extra["source"] == DeliverySource.campaign else None)
    user_id = db.session.scalar(sa.select(WechatUser.id).where(WechatUser.openid == openid))
    delivery = Delivery(openid=openid, template_id=template_id, data=data, user_id=user_id, **extra)
    db.session.add(delivery)
    db.session.flush()
    return delivery.id


def register(template: dict) -> None:
    """Put a sandbox (gettemplate) template in our catalog, as a sync would."""
    from dashboard.catalog.schema import build_schema
    from dashboard.models.catalog import MessageTemplate, TemplateKind

    if db.session.scalar(
        sa.select(MessageTemplate.id).where(MessageTemplate.template_id == template["priTmplId"])
    ):
        return
    db.session.add(
        MessageTemplate(
            template_id=template["priTmplId"],
            title=template["title"],
            kind=TemplateKind.from_wechat_type(template["type"]),
            content=template["content"],
            example=template.get("example", ""),
            keywords=build_schema(template["content"]),
            source="sync",
        )
    )
    db.session.flush()


def prepare(
    app, sandbox: SandboxApi, count: int, template: dict, *, sandbox_grants: int = 1, our_grants: int = 1
):
    """``count`` users granted in both ledgers, and one pending campaign delivery each (template registered)."""
    openids = sandbox.openids_all()[:count]
    assert len(openids) == count
    for openid in openids:
        for _ in range(sandbox_grants):
            sandbox.grant(openid, template["priTmplId"])
    with app.app_context():
        register(template)
        for openid in openids:
            user_id = add_user(openid)
            if our_grants:
                grant(user_id, template["priTmplId"], our_grants)
            add_delivery(openid, template["priTmplId"], example_data(template))
        db.session.commit()
    return openids


def states(app) -> dict[str, int]:
    with app.app_context():
        rows = db.session.execute(sa.select(Delivery.state, sa.func.count()).group_by(Delivery.state)).all()
        return {state.value: count for state, count in rows}


def balance(app, openid: str, template_id: str) -> tuple[int, bool]:
    with app.app_context():
        row = db.session.execute(
            sa.select(GrantBalance.credits, GrantBalance.active)
            .join(WechatUser, WechatUser.id == GrantBalance.user_id)
            .where(WechatUser.openid == openid, GrantBalance.template_id == template_id)
        ).one()
        return row.credits, row.active


def ledger_statuses(app, delivery_id: int) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                sa.select(GrantEvent.status)
                .where(GrantEvent.delivery_id == delivery_id)
                .order_by(GrantEvent.id)
            )
        )


def final_states() -> set[str]:
    return {
        DeliveryState.sent.value,
        DeliveryState.failed.value,
        DeliveryState.skipped.value,
        DeliveryState.unknown.value,
    }
