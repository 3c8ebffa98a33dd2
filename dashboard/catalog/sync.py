"""Sync with WeChat (``gettemplate``): compare first, show the difference, then apply it.

:func:`plan_sync` reads WeChat and the catalog and changes nothing. :func:`apply_sync` makes the
catalog match the plan: new templates are registered, changed ones updated and flagged ``changed``,
templates gone from WeChat are kept (with their history), disabled and flagged ``removed``.

The page shows a plan and posts back its ``fingerprint``; the apply step plans again and refuses when
the fingerprint differs, so what is applied is exactly what the operator saw.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from ..audit.services import record
from ..extensions import db
from ..grants.kinds import convert_balances
from ..models import utcnow
from ..models.catalog import Drift, MessageTemplate, TemplateKind, TemplateSource
from ..wechat import get_client
from ..wechat.client import WeChatClient
from ..wechat.keywords import enum_values_from_template
from . import schema
from .services import new_template

#: The differences a sync reports, in the order the page lists them.
FIELDS = ("restored", "title", "type", "content", "keywords", "enum_values")


@dataclass(frozen=True)
class RemoteTemplate:
    """One ``gettemplate`` row, read defensively."""

    template_id: str
    title: str
    type: int
    content: str
    example: str
    enum_values: dict[str, list[str]]

    @classmethod
    def from_api(cls, row: Mapping[str, Any]) -> RemoteTemplate:
        return cls(
            template_id=str(row.get("priTmplId") or ""),
            title=str(row.get("title") or ""),
            type=TemplateKind.from_wechat_type(row.get("type")).wechat_type,
            content=str(row.get("content") or ""),
            example=str(row.get("example") or ""),
            enum_values=enum_values_from_template(row.get("keywordEnumValueList")),
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "type": self.type,
            "content": self.content,
            "example": self.example,
            "enum_values": self.enum_values,
        }


@dataclass(frozen=True)
class TemplateChange:
    """One line of the diff. ``status`` is new, changed or removed; ``before``/``after`` are snapshots."""

    status: str
    template_id: str
    title: str
    fields: tuple[str, ...] = ()
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    local_id: int | None = None

    def describe(self) -> str:
        """One line for the command line."""
        if self.status == "changed":
            return f"{self.template_id} {self.title} ({', '.join(self.fields)})"
        return f"{self.template_id} {self.title}"


@dataclass(frozen=True)
class SyncPlan:
    new: list[TemplateChange] = field(default_factory=list)
    changed: list[TemplateChange] = field(default_factory=list)
    removed: list[TemplateChange] = field(default_factory=list)
    unchanged: int = 0
    remote: list[RemoteTemplate] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(self.new or self.changed or self.removed)

    @property
    def fingerprint(self) -> str:
        """A digest of what WeChat said and what would change; stable for the same situation."""
        payload = {
            "remote": [r.snapshot() | {"id": r.template_id} for r in self.remote],
            "changes": [
                [c.status, c.template_id, list(c.fields)] for c in (*self.new, *self.changed, *self.removed)
            ],
        }
        encoded = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(encoded).hexdigest()[:32]


def fetch_remote(client: WeChatClient | None = None) -> list[RemoteTemplate]:
    """The account's templates as WeChat lists them. :raise WeChatError: as the client does."""
    rows = (client or get_client()).get_templates()
    remote = [RemoteTemplate.from_api(row) for row in rows if isinstance(row, Mapping)]
    # New-style one-time templates (set_user_notify) have no content and no subscribe/send: skip them.
    return [r for r in remote if r.template_id and r.content]


def _local_facts(template: MessageTemplate) -> dict[str, Any]:
    """What Tongzhi last knew of WeChat's side of ``template``."""
    if template.wechat_snapshot:
        return dict(template.wechat_snapshot)
    return {
        "title": template.title,
        "type": template.kind.wechat_type,
        "content": template.content,
        "example": template.example,
        "enum_values": {
            spec["key"]: list(spec["enum_values"])
            for spec in template.keyword_specs
            if schema.is_enum(spec["type"]) and spec["enum_values"]
        },
    }


def _differences(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    fields: list[str] = []
    if before.get("title") != after["title"]:
        fields.append("title")
    if int(before.get("type") or 2) != after["type"]:
        fields.append("type")
    if before.get("content") != after["content"]:
        fields.append("content")
    if schema.keyword_pairs(str(before.get("content") or "")) != schema.keyword_pairs(after["content"]):
        fields.append("keywords")
    if dict(before.get("enum_values") or {}) != after["enum_values"]:
        fields.append("enum_values")
    return fields


def plan_sync(remote: Sequence[RemoteTemplate]) -> SyncPlan:
    """Compare WeChat's templates with the catalog; changes nothing."""
    local = {
        t.template_id: t for t in db.session.scalars(select(MessageTemplate).order_by(MessageTemplate.id))
    }
    new: list[TemplateChange] = []
    changed: list[TemplateChange] = []
    unchanged = 0
    seen: set[str] = set()
    for row in remote:
        if row.template_id in seen:
            continue
        seen.add(row.template_id)
        after = row.snapshot()
        template = local.get(row.template_id)
        if template is None:
            new.append(TemplateChange("new", row.template_id, row.title, after=after))
            continue
        before = _local_facts(template)
        fields = _differences(before, after)
        if template.drift is Drift.removed:
            fields.insert(0, "restored")
        if fields:
            changed.append(
                TemplateChange(
                    "changed", row.template_id, row.title, tuple(fields), before, after, local_id=template.id
                )
            )
        else:
            unchanged += 1
    removed = [
        TemplateChange("removed", t.template_id, t.title, before=_local_facts(t), local_id=t.id)
        for template_id, t in local.items()
        if template_id not in seen and t.drift is not Drift.removed
    ]
    return SyncPlan(new=new, changed=changed, removed=removed, unchanged=unchanged, remote=list(remote))


def register_remote(row: RemoteTemplate, source: TemplateSource, **extra: Any) -> MessageTemplate:
    """Register a template as WeChat's gettemplate lists it (a sync, or one just added from the library)."""
    return new_template(
        template_id=row.template_id,
        title=row.title,
        kind=TemplateKind.from_wechat_type(row.type),
        content=row.content,
        example=row.example,
        enum_values=row.enum_values,
        source=source,
        snapshot=row.snapshot(),
        **extra,
    )


def apply_sync(plan: SyncPlan, *, actor_email: str | None = None) -> SyncPlan:
    """Make the catalog match ``plan`` (adds to the session; the caller commits once)."""
    now = utcnow()
    by_id = {r.template_id: r for r in plan.remote}
    actor = {"actor_email": actor_email} if actor_email is not None else {}
    for change in plan.new:
        row = by_id[change.template_id]
        template = register_remote(row, TemplateSource.sync)
        record(
            "template.created", template, source="sync", template_id=row.template_id, title=row.title, **actor
        )
    for change in plan.changed:
        row = by_id[change.template_id]
        template = db.session.get(MessageTemplate, change.local_id)
        if template is None:
            continue
        template.keywords = list(schema.build_schema(row.content, row.enum_values, template.keyword_specs))
        template.title = row.title
        template.kind = TemplateKind.from_wechat_type(row.type)
        template.content = row.content
        template.example = row.example
        template.wechat_snapshot = row.snapshot()
        template.synced_at = now
        template.removed_at = None
        template.drift = Drift.changed
        template.drift_note = ",".join(change.fields)
        template.drift_at = now
        # A changed type changes what every user's grant means: the ledger converts the balances.
        converted = convert_balances(
            db.session, template.template_id, template.kind.value, reason="catalog sync"
        )
        record(
            "template.changed_in_wechat",
            template,
            template_id=template.template_id,
            fields=list(change.fields),
            balances_converted=len(converted),
            **actor,
        )
    for change in plan.removed:
        template = db.session.get(MessageTemplate, change.local_id)
        if template is None:
            continue
        template.drift = Drift.removed
        template.drift_note = ""
        template.drift_at = now
        template.removed_at = now
        template.enabled = False
        record("template.removed_in_wechat", template, template_id=template.template_id, **actor)
    # Templates WeChat still lists unchanged: remember when we last saw them (and their example).
    touched = {c.template_id for c in (*plan.new, *plan.changed)}
    for template in db.session.scalars(
        select(MessageTemplate).where(MessageTemplate.template_id.in_(set(by_id) - touched))
    ):
        row = by_id[template.template_id]
        template.example = row.example
        template.wechat_snapshot = row.snapshot()
        template.synced_at = now
    record(
        "catalog.synced",
        target_type="message_template",
        new=len(plan.new),
        changed=len(plan.changed),
        removed=len(plan.removed),
        unchanged=plan.unchanged,
        **actor,
    )
    return plan
