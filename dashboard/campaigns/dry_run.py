"""The dry run: what a campaign's values would be for every user its segment holds now, before launch.

Each recipient's values are made by the same two steps the snapshot uses (``values.text_for`` then
``values.finish``, which together are ``values.fill``), so the counts here are what a launch now would
do: a value its rule refuses skips that recipient (``invalid_value``), a value the ``fix`` policy
changes is sent changed. Users are streamed from the database in batches by id, never loaded at once;
a value that is the same for everybody (no user variables) is judged once and counts for everybody.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..audience import segments
from ..extensions import db
from ..models import WechatUser
from ..models.catalog import MessageTemplate
from ..models.oa_template import OaTemplate
from ..models.types import utcnow
from . import values

BATCH = 1000
EXAMPLES = 3


def short_openid(openid: str) -> str:
    return openid if len(openid) <= 12 else f"{openid[:6]}…{openid[-4:]}"


@dataclass
class KeywordCount:
    """One keyword over every recipient: how many values pass, are changed by the fix, are refused."""

    key: str
    label: str
    constant: bool
    passed: int = 0
    changed: int = 0
    refused: int = 0
    changed_examples: list[tuple[str, str]] = field(default_factory=list)  # (before, after)
    refused_examples: list[tuple[str, str]] = field(default_factory=list)  # (short openid, value)

    def count(self, before: str, after: str | None, openid: str, times: int = 1) -> None:
        if after is None:
            self.refused += times
            if len(self.refused_examples) < EXAMPLES:
                self.refused_examples.append((short_openid(openid) if openid else "", before))
        elif after != before:
            self.changed += times
            if len(self.changed_examples) < EXAMPLES:
                self.changed_examples.append((before, after))
        else:
            self.passed += times


@dataclass
class DryRun:
    total: int = 0  # users in the segment now
    skipped: int = 0  # recipients a launch now would skip for a refused value (invalid_value)
    keywords: list[KeywordCount] = field(default_factory=list)
    reach: segments.Reach | None = None
    problem: str | None = None  # the values cannot be used at all (the compose form says the same)
    at: datetime | None = None

    @property
    def with_values(self) -> int:
        return self.total - self.skipped


def _user_rows(doc: dict, now: datetime):
    """The segment's users as the snapshot's ``_fill`` reads them, in batches of ids (keyset)."""
    user = WechatUser.__table__.c
    where = segments.filter_clause(doc, now)
    last = 0
    while True:
        rows = db.session.execute(
            sa.select(user.id, user.openid, user.unionid, user.nickname, user.attributes)
            .where(where, user.id > last)
            .order_by(user.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id


def dry_run(
    template: MessageTemplate | None,
    segment_filter: dict,
    data: Any,
    now: datetime | None = None,
    *,
    oa_template: OaTemplate | None = None,
    oa_data: Any = None,
) -> DryRun:
    """Judge ``data`` (a campaign's keyword sources) for every user of ``segment_filter`` now; with
    ``oa_template``, its Official Account values ``oa_data`` too (by the OA's rules; their rows are keyed
    ``oa.<key>``). ``template`` is None for a campaign only on the Official Account."""
    now = now or utcnow()
    result = DryRun(at=now)
    judged: list[tuple[str, values.KeywordSource, str]] = []  # (row key, source, label)
    try:
        if template is not None:
            labels = {
                spec["key"]: spec.get("label") or spec.get("content_label") or spec["key"]
                for spec in template.keyword_specs
            }
            for source in values.parse_sources(template.keyword_specs, data or {}):
                judged.append((source.key, source, labels.get(source.key, source.key)))
        if oa_template is not None:
            oa_labels = {spec["key"]: spec.get("label") or spec["key"] for spec in oa_template.keywords or []}
            for source in values.oa_sources(oa_template.keywords or [], oa_data or {}):
                judged.append((f"oa.{source.key}", source, oa_labels.get(source.key, source.key)))
    except values.BadValue as bad:
        result.problem = bad.message
        return result
    if template is not None:
        result.reach = segments.reach(segment_filter, template.template_id, now)
        result.total = result.reach.total
    else:
        result.total = segments.count_users(segment_filter, now)
    counts = {key: KeywordCount(key, label, not source.variables) for key, source, label in judged}
    result.keywords = [counts[key] for key, _, _ in judged]
    varying = [(key, source) for key, source, _ in judged if source.variables]
    for key, source, _ in judged:
        if not source.variables:  # the same text for everybody: judged once
            before = values.text_for(source, {})
            counts[key].count(before, values.finish(source, before), "", result.total)
    if not varying:
        return result
    for rows in _user_rows(segment_filter, now):
        for row in rows:
            user = row._mapping
            refused = False
            for key, source in varying:
                before = values.text_for(source, user)
                after = values.finish(source, before)
                counts[key].count(before, after, row.openid)
                refused = refused or after is None
            result.skipped += refused
    return result
