"""Composing a campaign in the browser: the card filled for one sample user, test sends, duplicates.

Values are always made by ``values.fill`` (what a launch would send, fix policy applied); the card is
drawn by the catalog's ``build_preview`` from those values, and test sends go through the deliveries'
own test-send path (``create_delivery`` + ``send_now``: a credit reserved from the ledger, WeChat's
answer recorded), as ``source = test`` rows that belong to no campaign.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _

from ..audience import segments
from ..audit.services import record
from ..catalog.preview import Preview, build_preview
from ..deliveries.services import create_delivery, send_now
from ..extensions import db
from ..models import Delivery, DeliverySource, WechatUser
from ..models.campaign import Campaign
from ..models.catalog import Drift, MessageTemplate
from ..models.oa_template import OaTemplate
from ..models.segment import Segment
from ..models.types import utcnow
from ..oa import templates as oa_templates
from . import services, values

SAMPLE_SIZE = 10
MAX_TEST_RECIPIENTS = 5


def user_mapping(user: WechatUser | None, openid: str = "") -> dict[str, Any]:
    """A user as ``values.fill`` reads one (the columns the snapshot selects)."""
    if user is None:
        return {"openid": openid, "unionid": None, "nickname": None, "attributes": {}}
    return {
        "openid": user.openid,
        "unionid": user.unionid,
        "nickname": user.nickname,
        "attributes": user.attributes or {},
    }


def sample(segment: Segment | None, now: datetime | None = None) -> list[WechatUser]:
    if segment is None:
        return []
    return segments.sample_users(segment.filter, now or utcnow(), SAMPLE_SIZE)


@dataclass
class SamplePreview:
    """The card for one user: ``preview`` drawn from the filled values, or why this user is skipped."""

    preview: Preview | None
    problem: str | None  # the values cannot be used at all (a keyword named)
    refused_key: str | None  # this user would be skipped: this keyword's value breaks its rule
    problem_key: str | None = None  # the keyword ``problem`` names


def preview_for(template: MessageTemplate, data: Any, user: dict[str, Any], lang: str) -> SamplePreview:
    try:
        sources = values.parse_sources(template.keyword_specs, data or {})
    except values.BadValue as bad:
        return SamplePreview(None, bad.message, None, bad.key)
    filled = values.fill(sources, user)
    if isinstance(filled, str):
        # Skipped at launch: the card shows the text as it came out, with its rule's complaint marked.
        shown = {source.key: values.text_for(source, user) for source in sources}
        return SamplePreview(build_preview(template, shown, lang), None, filled)
    return SamplePreview(build_preview(template, filled, lang), None, None)


def oa_preview_for(template: OaTemplate, oa_data: Any, user: dict[str, Any]) -> SamplePreview:
    """The Official Account card for one user, drawn by the OA catalog's ``build_preview`` (which marks
    each value its rules refuse) from the values a launch would send (``values.fill``), or, for a user
    who would be skipped, from the text as it came out (fixed text that breaks a rule included: the
    card marks it, as the catalog's preview does)."""
    try:
        sources = values.oa_sources(template.keywords or [], oa_data or {}, judge=False)
    except values.BadValue as bad:
        return SamplePreview(None, bad.message, None, bad.key)
    filled = values.fill(sources, user)
    if isinstance(filled, str):
        shown = {source.key: values.text_for(source, user) for source in sources}
        return SamplePreview(oa_templates.build_preview(template, shown), None, filled)
    return SamplePreview(oa_templates.build_preview(template, filled), None, None)


# -- test sends ------------------------------------------------------------------------------------------


@dataclass
class TestSendResult:
    __test__ = False  # not a pytest class

    openid: str
    delivery: Delivery | None
    refused_key: str | None = None


def test_send(campaign: Campaign, openids: list[str], operator_id: int | None) -> list[TestSendResult]:
    """Send the campaign's message, filled for each user, to ``openids`` now, on the campaign's channel
    (a subscribe credit, or the Official Account for a follower, chosen as the engine chooses:
    ``deliveries.services.send_now``); commits per send.

    :raise services.CampaignError: the template is gone, or the values cannot be used.
    """
    sources: list[values.KeywordSource] = []
    if services.uses_mp(campaign.channel):
        template = db.session.scalar(
            sa.select(MessageTemplate).where(MessageTemplate.template_id == campaign.template_id)
        )
        if template is None or template.drift is Drift.removed:
            raise services.CampaignError(
                409, "template_removed", _("The template was removed in WeChat."), "template_id"
            )
        sources = services.check_sources(template, campaign.data)
    oa_sources = services.oa_sources_of(campaign)
    results = []
    for openid in openids[:MAX_TEST_RECIPIENTS]:
        user = db.session.scalar(sa.select(WechatUser).where(WechatUser.openid == openid))
        variables = user_mapping(user, openid)
        filled = values.fill(sources, variables) if sources else {}
        oa_filled = values.fill(oa_sources, variables) if oa_sources is not None else None
        refused = next((f for f in (filled, oa_filled) if isinstance(f, str)), None)
        if refused is not None:
            results.append(TestSendResult(openid, None, refused))
            continue
        delivery = create_delivery(
            source=DeliverySource.test,
            openid=openid,
            template_id=campaign.template_id,
            data=filled,
            page=campaign.page,
            miniprogram_state=campaign.miniprogram_state,
            lang=campaign.lang,
            requested_by_id=operator_id,
            channel=campaign.channel,
            oa_template_id=campaign.oa_template_id if oa_filled is not None else None,
            oa_data=oa_filled,
        )
        db.session.flush()
        record(
            "campaign.test_sent",
            campaign,
            template_id=campaign.template_id,
            openid=openid,
            delivery_id=delivery.id,
            channel=campaign.channel,
        )
        send_now(delivery)
        results.append(TestSendResult(openid, delivery))
    return results


# -- duplicates ------------------------------------------------------------------------------------------


def duplicate(campaign: Campaign, name: str, operator_id: int | None) -> Campaign:
    """A new draft with the campaign's template, segment, values and settings, and no start time (a
    recurring campaign's copy keeps its repeat schedule); commits.

    :raise services.CampaignError: the copy cannot be made as it is (its segment was deleted, or its
        template's rules changed so its values no longer pass).
    """
    if campaign.segment_id is None:
        raise services.CampaignError(
            409, "unknown_segment", _("The campaign's segment no longer exists."), "segment_id"
        )
    copy = services.create_campaign(
        {
            "name": name[:120],
            "template_id": campaign.template_id,
            "segment_id": campaign.segment_id,
            "data": dict(campaign.data or {}),
            "channel": campaign.channel,
            "oa_template_id": campaign.oa_template_id,
            "oa_data": dict(campaign.oa_data or {}),
            "page": campaign.page,
            "miniprogram_state": campaign.miniprogram_state,
            "lang": campaign.lang,
            "scheduled_at": None,
            # A recurring campaign's copy repeats the same way; a run's copy is a one-off campaign.
            "schedule": campaign.schedule,
            "rate_per_second": campaign.rate_per_second,
            "quiet_start": campaign.quiet_start,
            "quiet_end": campaign.quiet_end,
        },
        created_by_id=operator_id,
    )
    record("campaign.duplicated", copy, original_id=campaign.id)
    db.session.commit()
    return copy
