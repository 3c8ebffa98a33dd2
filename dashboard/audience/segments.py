"""Segment filters: a JSON document that says which users a segment holds, checked and compiled to SQL.

The document is a tree of combinators (``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}``) around
leaves (one key each, see ``LEAVES``). ``validate_filter`` checks a document and returns it normalised;
``filter_clause`` turns a valid one into a WHERE over ``WechatUser``, so counts and recipient lists are
computed by the database, never by loading users into Python.

Every leaf compiles to a condition that is TRUE or FALSE, never NULL (a missing attribute, a user who never
logged in), so ``not`` is always the exact complement of what it wraps.

``reach`` says, for one template, how many of a segment's users a campaign could message now and why the
others cannot. "Live" is the ledger's own rule (``dashboard.grants.ledger.reserve_credit``): an active
long-term grant, or more one-time credits than the template's credit budget keeps for transactional sends.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.dialects import postgresql

from ..extensions import db
from ..grants.services import LONG_TERM
from ..models import UserAttributeValue, UserTag, WechatUser
from ..models.audience import INDEXED_TAG_LENGTH, INDEXED_VALUE_LENGTH
from ..models.catalog import MessageTemplate
from ..models.grants import ACCEPT_STATUSES, GrantBalance, GrantEvent

ATTRIBUTE_KEY_RE = re.compile(r"^\w[\w.\-]{0,39}$")  # at most INDEXED_KEY_LENGTH (40)
OPENID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

COMBINATORS = ("all", "any", "not")
LEAVES = (
    "grant",
    "tag",
    "tags",
    "attribute",
    "seen_within_days",
    "has_unionid",
    "granted_in_scene",
    "main_switch",
    "openids",
)
ATTRIBUTE_OPS = ("eq", "contains", "set", "unset", "before", "after", "within_next_days", "within_last_days")
TAG_MODES = ("any", "all", "none")

MAX_DEPTH = 8
MAX_NODES = 200
MAX_OPENIDS = 100_000
MAX_DAYS = 36_500
MAX_TEXT = 256
# Filters never name a tag or a value longer than the segment index holds (models.audience).
MAX_TAG_LENGTH = INDEXED_TAG_LENGTH
MAX_TAGS_PER_LEAF = 100
MAX_MIN_CREDITS = 1_000

# What an unreachable user lacks, in the order they are checked: each user is counted under the first.
UNREACHABLE_REASONS = ("main_switch_off", "always_reject", "no_credit", "budget")
# ``itemSettings`` values that mean "always keep this choice" with a refusal (``ban``: WeChat blocked it).
REJECT_SETTINGS = ("reject", "ban")


class FilterError(ValueError):
    """A filter document that cannot be used. ``path`` says where (``all[2].attribute.op``).

    The sentence is translated when it is read (``message``), so a page shows it in the operator's
    language and the API (under ``force_locale("en")``) in English.
    """

    def __init__(self, path: str, sentence: Any, **params: Any) -> None:
        self.path = path
        self.sentence = sentence
        self.params = params
        super().__init__(path)

    @property
    def message(self) -> str:
        return str(self.sentence) % self.params if self.params else str(self.sentence)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


# -- validation ----------------------------------------------------------------------------------------


class _Counter:
    def __init__(self) -> None:
        self.nodes = 0


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _single_key(doc: Any, path: str) -> tuple[str, Any]:
    if not isinstance(doc, dict):
        raise FilterError(path, _l('A filter must be an object with one key, such as {"tag": "vip"}.'))
    if len(doc) != 1:
        keys = ", ".join(sorted(map(str, doc))) or "none"
        raise FilterError(path, _l("A filter must have exactly one key (found: %(keys)s)."), keys=keys)
    ((key, value),) = doc.items()
    return str(key), value


def _check_keys(value: Any, path: str, allowed: tuple[str, ...], required: tuple[str, ...]) -> dict:
    if not isinstance(value, dict):
        raise FilterError(path, _l("Must be an object with %(fields)s."), fields=", ".join(required))
    for key in value:
        if key not in allowed:
            raise FilterError(
                _join(path, str(key)),
                _l("Unknown field '%(name)s' (allowed: %(names)s)."),
                name=key,
                names=", ".join(allowed),
            )
    for key in required:
        if key not in value:
            raise FilterError(_join(path, key), _l("'%(name)s' is required."), name=key)
    return value


def _text(value: Any, path: str, limit: int = MAX_TEXT, *, allow_empty: bool = False) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise FilterError(path, _l("Must be text."))
    text = str(value).strip() if isinstance(value, int) else value
    if "\x00" in text:  # no column can hold it, and PostgreSQL's JSON operators refuse it
        raise FilterError(path, _l("Must not contain a NUL character."))
    if not text.strip() and not allow_empty:
        raise FilterError(path, _l("Must not be empty."))
    if len(text) > limit:
        raise FilterError(path, _l("Must be at most %(limit)s characters."), limit=limit)
    return text


def _int(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON has one number type: 30.0 is the integer 30
    if isinstance(value, bool) or not isinstance(value, int):
        raise FilterError(path, _l("Must be a whole number."))
    if not low <= value <= high:
        raise FilterError(path, _l("Must be between %(low)s and %(high)s."), low=low, high=high)
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise FilterError(path, _l("Must be true or false."))
    return value


def _date(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise FilterError(path, _l("Must be a date such as 2026-03-01."))
    try:
        return date.fromisoformat(value.strip()[:10]).isoformat()
    except ValueError:
        raise FilterError(path, _l("Must be a date such as 2026-03-01.")) from None


def _tag(value: Any, path: str) -> str:
    tag = _text(value, path, MAX_TAG_LENGTH).strip()
    return tag


def _leaf(key: str, value: Any, path: str) -> Any:
    if key == "grant":
        body = _check_keys(value, path, ("template_id", "min_credits"), ("template_id",))
        return {
            "template_id": _text(body["template_id"], _join(path, "template_id"), 64).strip(),
            "min_credits": _int(body.get("min_credits", 1), _join(path, "min_credits"), 1, MAX_MIN_CREDITS),
        }
    if key == "tag":
        return _tag(value, path)
    if key == "tags":
        if not isinstance(value, dict) or len(value) != 1:
            raise FilterError(path, _l("Must be an object with one of: any, all, none."))
        ((mode, tags),) = value.items()
        if mode not in TAG_MODES:
            raise FilterError(
                _join(path, str(mode)), _l("Unknown tag match '%(name)s' (use any, all or none)."), name=mode
            )
        if not isinstance(tags, list) or not tags:
            raise FilterError(_join(path, mode), _l("Must be a non-empty list of tags."))
        if len(tags) > MAX_TAGS_PER_LEAF:
            raise FilterError(_join(path, mode), _l("At most %(limit)s tags."), limit=MAX_TAGS_PER_LEAF)
        clean = [_tag(tag, f"{_join(path, mode)}[{i}]") for i, tag in enumerate(tags)]
        return {mode: list(dict.fromkeys(clean))}
    if key == "attribute":
        body = _check_keys(value, path, ("key", "op", "value"), ("key", "op"))
        name = body["key"]
        if not isinstance(name, str) or not ATTRIBUTE_KEY_RE.fullmatch(name):
            raise FilterError(_join(path, "key"), _l("Must be an attribute name (letters, digits, _ . -)."))
        op = body["op"]
        if op not in ATTRIBUTE_OPS:
            raise FilterError(
                _join(path, "op"),
                _l("Unknown attribute operator '%(name)s' (use %(names)s)."),
                name=op,
                names=", ".join(ATTRIBUTE_OPS),
            )
        out: dict[str, Any] = {"key": name, "op": op}
        where = _join(path, "value")
        if op in ("set", "unset"):
            return out
        if "value" not in body:
            raise FilterError(where, _l("'value' is required for '%(op)s'."), op=op)
        if op == "eq":
            out["value"] = _text(body["value"], where, INDEXED_VALUE_LENGTH, allow_empty=True)
        elif op == "contains":
            out["value"] = _text(body["value"], where)
        elif op in ("before", "after"):
            out["value"] = _date(body["value"], where)
        else:
            out["value"] = _int(body["value"], where, 0, MAX_DAYS)
        return out
    if key == "seen_within_days":
        return _int(value, path, 0, MAX_DAYS)
    if key in ("has_unionid", "main_switch"):
        return _bool(value, path)
    if key == "granted_in_scene":
        return _text(value, path, 64).strip()
    if key == "openids":
        if not isinstance(value, list):
            raise FilterError(path, _l("Must be a list of openids."))
        if len(value) > MAX_OPENIDS:
            raise FilterError(path, _l("At most %(limit)s openids."), limit=MAX_OPENIDS)
        for i, openid in enumerate(value):
            if not isinstance(openid, str) or not OPENID_RE.fullmatch(openid):
                raise FilterError(f"{path}[{i}]", _l("Not an openid (letters, digits, _ and -, up to 64)."))
        return list(dict.fromkeys(value))
    raise AssertionError(key)  # pragma: no cover - callers check LEAVES first


def _validate(doc: Any, path: str, depth: int, counter: _Counter) -> dict:
    counter.nodes += 1
    if counter.nodes > MAX_NODES:
        raise FilterError(path, _l("A filter may have at most %(limit)s parts."), limit=MAX_NODES)
    if depth > MAX_DEPTH:
        raise FilterError(path, _l("Filters may nest at most %(limit)s deep."), limit=MAX_DEPTH)
    key, value = _single_key(doc, path)
    where = _join(path, key)
    if key in ("all", "any"):
        if not isinstance(value, list):
            raise FilterError(where, _l("'%(name)s' takes a list of filters."), name=key)
        return {key: [_validate(item, f"{where}[{i}]", depth + 1, counter) for i, item in enumerate(value)]}
    if key == "not":
        return {"not": _validate(value, where, depth + 1, counter)}
    if key not in LEAVES:
        raise FilterError(
            path,
            _l("Unknown filter '%(name)s' (use %(names)s)."),
            name=key,
            names=", ".join(COMBINATORS + LEAVES),
        )
    return {key: _leaf(key, value, where)}


def validate_filter(doc: Any) -> dict:
    """``doc`` checked and normalised (defaults filled, lists de-duplicated), or ``FilterError``."""
    if isinstance(doc, str | bytes):
        try:
            doc = json.loads(doc)
        except ValueError as exc:
            raise FilterError("", _l("Not valid JSON (%(reason)s)."), reason=str(exc)) from None
    return _validate(doc, "", 0, _Counter())


def leaves_of(doc: dict) -> list[tuple[str, Any]]:
    """Every leaf of a valid document, in order (for summaries)."""
    ((key, value),) = doc.items()
    if key in ("all", "any"):
        return [leaf for item in value for leaf in leaves_of(item)]
    if key == "not":
        return leaves_of(value)
    return [(key, value)]


# -- compilation -----------------------------------------------------------------------------------------


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def _local_today(now: datetime) -> date:
    zone = current_app.config.get("TIMEZONE", "UTC") if has_app_context() else "UTC"
    return now.astimezone(ZoneInfo(zone)).date()


def _has_any_tag(tags: list[str]) -> ColumnElement[bool]:
    if _dialect() == "postgresql":
        # From the segment index's primary key (tag, user_id): no user row is read (models.audience).
        return WechatUser.id.in_(select(UserTag.user_id).where(UserTag.tag.in_(tags)))
    values = func.json_each(WechatUser.tags).table_valued("value")
    return exists(select(literal(1)).select_from(values).where(values.c.value.in_(tags)))


def _attribute_text(key: str):
    return WechatUser.attributes[key].as_string()


def _date_prefix(key: str):
    """The first ten characters of the attribute, when they look like YYYY-MM-DD (else never matched)."""
    return func.substr(_attribute_text(key), 1, 10)


def _date_condition(key: str, low: str | None, high: str | None, *, strict: bool) -> ColumnElement[bool]:
    text = _attribute_text(key)
    prefix = _date_prefix(key)
    parts = [
        text.is_not(None),
        prefix.between("0001-01-01", "9999-12-31"),
        func.substr(text, 5, 1) == "-",
        func.substr(text, 8, 1) == "-",
    ]
    if low is not None:
        parts.append(prefix > low if strict else prefix >= low)
    if high is not None:
        parts.append(prefix < high if strict else prefix <= high)
    return and_(*parts)


def _attribute(leaf: dict, now: datetime) -> ColumnElement[bool]:
    key, op, value = leaf["key"], leaf["op"], leaf.get("value")
    text = _attribute_text(key)
    # coalesce(..., false): a missing attribute is FALSE, not NULL, with the JSON read only once.
    if op == "eq":
        if _dialect() == "postgresql":
            # The segment index holds each attribute as the same ``->>`` text, keyed (key, value, user_id).
            return WechatUser.id.in_(
                select(UserAttributeValue.user_id).where(
                    UserAttributeValue.key == key, UserAttributeValue.value == value
                )
            )
        return func.coalesce(text == value, false())
    if op == "contains":
        return func.coalesce(func.lower(text).contains(value.lower(), autoescape=True), false())
    if op == "set":
        return func.coalesce(text != "", false())
    if op == "unset":
        return not_(func.coalesce(text != "", false()))
    if op == "before":
        return _date_condition(key, None, value, strict=True)
    if op == "after":
        return _date_condition(key, value, None, strict=True)
    today = _local_today(now)
    span = timedelta(days=value)
    if op == "within_next_days":
        return _date_condition(key, today.isoformat(), (today + span).isoformat(), strict=False)
    return _date_condition(key, (today - span).isoformat(), today.isoformat(), strict=False)


def _openids(openids: list[str]) -> ColumnElement[bool]:
    if not openids:
        return false()
    # One parameter however long the list: SQLite caps a statement's parameters at 32,766.
    if _dialect() == "postgresql":
        return WechatUser.openid == func.any(literal(openids, postgresql.ARRAY(String(64))))
    values = func.json_each(literal(json.dumps(openids))).table_valued("value")
    return WechatUser.openid.in_(select(values.c.value))


def live_grant_condition(template_id: str, min_credits: int = 1) -> ColumnElement[bool]:
    """On ``GrantBalance``: the grant allows a send (long-term active, or at least ``min_credits`` credits)."""
    return and_(
        GrantBalance.template_id == template_id,
        or_(
            and_(GrantBalance.kind == LONG_TERM, GrantBalance.active.is_(True)),
            and_(GrantBalance.kind != LONG_TERM, GrantBalance.credits >= min_credits),
        ),
    )


def _leaf_clause(key: str, value: Any, now: datetime) -> ColumnElement[bool]:
    if key == "grant":
        # IN on the primary key lets SQLite drive the query from the (indexed) balances of one template.
        return WechatUser.id.in_(
            select(GrantBalance.user_id).where(
                live_grant_condition(value["template_id"], value["min_credits"])
            )
        )
    if key == "tag":
        return _has_any_tag([value])
    if key == "tags":
        ((mode, tags),) = value.items()
        if mode == "any":
            return _has_any_tag(tags)
        if mode == "all":
            return and_(*(_has_any_tag([tag]) for tag in tags))
        return not_(_has_any_tag(tags))
    if key == "attribute":
        return _attribute(value, now)
    if key == "seen_within_days":
        return and_(
            WechatUser.last_login_at.is_not(None), WechatUser.last_login_at >= now - timedelta(days=value)
        )
    if key == "has_unionid":
        has = and_(WechatUser.unionid.is_not(None), WechatUser.unionid != "")
        return has if value else not_(has)
    if key == "granted_in_scene":
        return exists(
            select(literal(1)).where(
                GrantEvent.user_id == WechatUser.id,
                GrantEvent.scene == value,
                GrantEvent.status.in_(ACCEPT_STATUSES),
            )
        )
    if key == "main_switch":
        return WechatUser.main_switch.is_(value)
    if key == "openids":
        return _openids(value)
    raise AssertionError(key)  # validate_filter refuses unknown leaves


# Relative cost of testing a condition on one user row (plain columns < one JSON read < a subquery).
_COSTS = {
    "main_switch": 0,
    "has_unionid": 0,
    "seen_within_days": 0,
    "openids": 1,
    "grant": 1,  # an IN on the primary key: SQLite drives the query from it wherever it stands
    "attribute": 2,
    "tag": 3,
    "tags": 3,
    "granted_in_scene": 4,
}


def _cost(doc: dict) -> int:
    return _COSTS.get(next(iter(doc)), 5)


def filter_clause(doc: dict, now: datetime) -> ColumnElement[bool]:
    """A WHERE over ``WechatUser`` selecting the users ``doc`` (validated) describes at ``now``."""
    ((key, value),) = doc.items()
    if key == "all":
        # SQLite tests conditions in the order written: the cheap ones first, so fewer rows reach the
        # JSON and subquery tests. (PostgreSQL orders them by its own costs.)
        ordered = sorted(value, key=_cost)
        return and_(true(), *(filter_clause(item, now) for item in ordered))
    if key == "any":
        return or_(false(), *(filter_clause(item, now) for item in value))
    if key == "not":
        return not_(filter_clause(value, now))
    return _leaf_clause(key, value, now)


def segment_user_ids(doc: dict, now: datetime) -> Select:
    """``SELECT wechat_user.id WHERE <doc>``: the segment's users, for a count or a snapshot."""
    return select(WechatUser.id).where(filter_clause(doc, now))


def count_users(doc: dict, now: datetime) -> int:
    return int(
        db.session.scalar(select(func.count()).select_from(WechatUser).where(filter_clause(doc, now))) or 0
    )


def sample_users(doc: dict, now: datetime, limit: int = 10) -> list[WechatUser]:
    return list(
        db.session.scalars(
            select(WechatUser).where(filter_clause(doc, now)).order_by(WechatUser.id.desc()).limit(limit)
        )
    )


# -- reach ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reach:
    """How many of a segment's users a campaign of one template could message now, and why not the rest."""

    template_id: str
    total: int
    reachable: int
    unreachable: dict[str, int] = field(default_factory=dict)


def credit_budget(template_id: str) -> int:
    """Credits a campaign must leave each user (kept for transactional sends): ``MessageTemplate.credit_budget``."""
    budget = db.session.scalar(
        select(MessageTemplate.credit_budget).where(MessageTemplate.template_id == template_id)
    )
    return int(budget or 0)


def reach_reason(template_id: str, keep: int):
    """SQL CASE over ``WechatUser`` outer-joined to its ``GrantBalance`` for ``template_id``: the first
    reason a campaign send would not go ahead (``UNREACHABLE_REASONS``), or NULL when it would."""
    setting = WechatUser.item_settings[template_id].as_string()
    return case(
        (WechatUser.main_switch.is_(False), "main_switch_off"),
        (and_(setting.is_not(None), setting.in_(REJECT_SETTINGS)), "always_reject"),
        (GrantBalance.id.is_(None), "no_credit"),
        (GrantBalance.kind == LONG_TERM, case((GrantBalance.active.is_(True), None), else_="no_credit")),
        (GrantBalance.credits <= 0, "no_credit"),
        (GrantBalance.credits <= keep, "budget"),
        else_=None,
    )


def reach(doc: dict, template_id: str, now: datetime) -> Reach:
    """Counts, in one SQL statement grouped by reason, of the segment's users for ``template_id``."""
    reason = reach_reason(template_id, max(credit_budget(template_id), 0)).label("reason")
    per_user = (
        select(reason)
        .select_from(WechatUser)
        .outerjoin(
            GrantBalance,
            and_(GrantBalance.user_id == WechatUser.id, GrantBalance.template_id == template_id),
        )
        .where(filter_clause(doc, now))
        .subquery()
    )
    query = select(per_user.c.reason, func.count()).group_by(per_user.c.reason)
    counts = {name: 0 for name in UNREACHABLE_REASONS}
    reachable = 0
    for name, n in db.session.execute(query):
        if name is None:
            reachable += n
        else:
            counts[name] += n
    return Reach(template_id, reachable + sum(counts.values()), reachable, counts)
