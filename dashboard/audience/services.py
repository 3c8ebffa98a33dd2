"""Users (mini-program users, ``WechatUser``): find them, show them, and import their attributes.

Services add to the session and return; the view commits once.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy import Select, Text, cast, func, or_, select, update

from ..bulk_writes import BulkWrite
from ..extensions import db
from ..grants.services import insert_ignoring_conflicts, live_condition
from ..models import Delivery, WechatUser, utcnow
from ..models.grants import GrantBalance, GrantEvent

OPENID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ATTRIBUTE_KEY_RE = re.compile(r"^\w[\w.\-]{0,39}$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
RESERVED_COLUMNS = {"openid", "nickname", "tags"}
REFUSED_COLUMNS = {"unionid", "id", "created_at", "last_login_at"}
TAG_SEPARATORS = re.compile(r"[;|]")
MAX_IMPORT_ROWS = 50_000
# 50,000 rows of openid, nickname, tags and a few attributes are about 3 MB; this leaves room for more columns.
MAX_IMPORT_BYTES = 10 * 1024 * 1024
# The example file offered for download: the fixed columns, then attributes of one's own (any name).
IMPORT_TEMPLATE_CSV = (
    "openid,nickname,tags,城市,会员等级\r\n"
    "o6_bmjrPTlm6_2sgVt7hMZOPfL2M,小明,vip;北京,北京,3\r\n"
    "oGZUI0egBJY1zhBYw2KhdUfwVJJE,小红,新客,上海,1\r\n"
)
MAX_TAGS = 20
MAX_TAG_LENGTH = 32
MAX_VALUE_LENGTH = 256
MAX_NICKNAME_LENGTH = 64


def ensure_user(openid: str, unionid: str | None = None) -> WechatUser:
    """The user with ``openid``, created if Tongzhi has not seen them (safe against a concurrent create)."""
    insert_ignoring_conflicts(
        db.session,
        WechatUser.__table__,
        {
            "openid": openid,
            "unionid": unionid,
            "nickname": "",
            "tags": [],
            "attributes": {},
            "created_at": utcnow(),
        },
        ("openid",),
    )
    user = db.session.scalar(
        select(WechatUser).where(WechatUser.openid == openid).execution_options(populate_existing=True)
    )
    assert user is not None
    if unionid and user.unionid != unionid:
        user.unionid = unionid
    return user


def _json_text_fragment(text: str) -> str:
    """How ``text`` appears inside the JSON text of tags and attributes: non-ASCII as \\uXXXX escapes on
    SQLite (the JSON kept as written), as itself on PostgreSQL (JSONB's text form, migration 0017)."""
    return json.dumps(text, ensure_ascii=db.session.get_bind().dialect.name != "postgresql")[1:-1].lower()


def search_users(q: str) -> Select[tuple[WechatUser]]:
    """Users matching ``q``: ``key=value`` matches one attribute exactly; anything else matches an openid
    or unionid (exact or prefix), a nickname, a tag or an attribute (substring, case-insensitive)."""
    query = select(WechatUser).order_by(WechatUser.id.desc())
    q = q.strip()
    if not q:
        return query
    key, sep, value = q.partition("=")
    key, value = key.strip(), value.strip()
    if sep and ATTRIBUTE_KEY_RE.fullmatch(key) and key not in RESERVED_COLUMNS:
        return query.where(WechatUser.attributes[key].as_string() == value)
    if sep and key in ("nickname", "tags", "openid") and value:
        q = value
    fragment = _json_text_fragment(q)
    return query.where(
        or_(
            WechatUser.openid == q,
            WechatUser.openid.startswith(q, autoescape=True),
            WechatUser.unionid == q,
            WechatUser.unionid.startswith(q, autoescape=True),
            func.lower(WechatUser.nickname).contains(q.lower(), autoescape=True),
            func.lower(cast(WechatUser.tags, Text)).contains(fragment, autoescape=True),
            func.lower(cast(WechatUser.attributes, Text)).contains(fragment, autoescape=True),
        )
    )


def live_grant_counts(user_ids: Iterable[int]) -> dict[int, int]:
    """Per user: how many templates they hold a live grant for."""
    ids = list(user_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        select(GrantBalance.user_id, func.count())
        .where(GrantBalance.user_id.in_(ids), live_condition())
        .group_by(GrantBalance.user_id)
    ).all()
    return {user_id: count for user_id, count in rows}


def timeline(user_id: int, before_id: int | None = None, limit: int = 50) -> list[GrantEvent]:
    """The user's ledger events, newest first; ``before_id`` pages back."""
    query = select(GrantEvent).where(GrantEvent.user_id == user_id)
    if before_id is not None:
        query = query.where(GrantEvent.id < before_id)
    return list(db.session.scalars(query.order_by(GrantEvent.id.desc()).limit(limit)))


def deliveries_for(user: WechatUser, limit: int = 50) -> list[Delivery]:
    return list(
        db.session.scalars(
            select(Delivery)
            .where(or_(Delivery.user_id == user.id, Delivery.openid == user.openid))
            .order_by(Delivery.id.desc())
            .limit(limit)
        )
    )


# -- CSV import of attributes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    line: int  # the line of the file (1 = header); 0 = the file as a whole
    column: str
    message: str


@dataclass
class ImportRow:
    line: int
    openid: str
    nickname: str | None = None
    tags: list[str] | None = None
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class ImportPlan:
    rows: list[ImportRow]
    errors: list[RowError]
    columns: list[str]
    encoding: str = "utf-8"

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.rows)


@dataclass(frozen=True)
class ImportResult:
    rows: int
    created: int
    updated: int


def _check_value(line: int, column: str, value: str, limit: int, errors: list[RowError]) -> None:
    if len(value) > limit:
        errors.append(RowError(line, column, _("Longer than %(limit)d characters.", limit=limit)))
    elif CONTROL_RE.search(value):
        errors.append(RowError(line, column, _("Contains a control character (a line break or tab).")))


def _header_errors(header: list[str]) -> list[RowError]:
    errors = []
    seen: set[str] = set()
    for index, name in enumerate(header, start=1):
        label = name or f"#{index}"
        if not name:
            errors.append(RowError(1, label, _("A column has no name.")))
        elif name in seen:
            errors.append(RowError(1, name, _("This column appears twice.")))
        elif name in REFUSED_COLUMNS:
            errors.append(RowError(1, name, _("This column comes from WeChat and cannot be imported.")))
        elif name not in RESERVED_COLUMNS and not ATTRIBUTE_KEY_RE.fullmatch(name):
            errors.append(
                RowError(1, name, _("Attribute names use letters, digits, _ . - and at most 40 characters."))
            )
        seen.add(name)
    if "openid" not in header:
        errors.append(RowError(1, "openid", _("The header must have an openid column.")))
    return errors


def decode_csv_bytes(raw: bytes) -> tuple[str, str] | None:
    """The text of a CSV file and the encoding it was in: UTF-8 (with or without a byte-order mark), else
    GB18030, which Excel on a Chinese Windows writes for "CSV (逗号分隔)" (GBK is a subset of it). None
    when it is neither."""
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        return None


def parse_import(raw: bytes, max_rows: int = MAX_IMPORT_ROWS) -> ImportPlan:
    """Read a CSV of user attributes: a header with ``openid`` and any of ``nickname``, ``tags`` (separated
    by ; or |) and custom attribute columns. Every problem is reported with its line and column; the
    plan is only usable (``ok``) when there is none. An empty cell leaves that value as it is."""
    errors: list[RowError] = []
    decoded = decode_csv_bytes(raw)
    if decoded is None:
        return ImportPlan(
            [],
            [RowError(0, "", _("The file is neither UTF-8 nor GBK/GB18030 text. Save it as CSV UTF-8."))],
            [],
        )
    text, encoding = decoded
    if "\x00" in text:
        return ImportPlan([], [RowError(0, "", _("The file is not a CSV text file."))], [])
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        return ImportPlan([], [RowError(0, "", _("The file is empty."))], [])
    except csv.Error as exc:
        return ImportPlan([], [RowError(1, "", _("Malformed CSV: %(reason)s", reason=str(exc)))], [])
    errors.extend(_header_errors(header))
    if errors:
        return ImportPlan([], errors, header)
    rows: list[ImportRow] = []
    seen: dict[str, int] = {}
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(RowError(reader.line_num, "", _("Malformed CSV: %(reason)s", reason=str(exc))))
            break
        line = reader.line_num
        if not values or all(not value.strip() for value in values):
            continue
        if len(rows) >= max_rows:
            errors.append(RowError(line, "", _("More than %(count)d rows: split the file.", count=max_rows)))
            break
        if len(values) != len(header):
            errors.append(
                RowError(
                    line,
                    "",
                    _(
                        "Expected %(expected)d fields, found %(found)d.",
                        expected=len(header),
                        found=len(values),
                    ),
                )
            )
            continue
        cells = {name: value.strip() for name, value in zip(header, values, strict=True)}
        openid = cells["openid"]
        if not OPENID_RE.fullmatch(openid):
            errors.append(
                RowError(line, "openid", _("Not an openid (letters, digits, _ and -, at most 64)."))
            )
            continue
        if openid in seen:
            errors.append(
                RowError(line, "openid", _("The same openid is on line %(line)d already.", line=seen[openid]))
            )
            continue
        seen[openid] = line
        row = ImportRow(line=line, openid=openid)
        if cells.get("nickname"):
            _check_value(line, "nickname", cells["nickname"], MAX_NICKNAME_LENGTH, errors)
            row.nickname = cells["nickname"]
        if cells.get("tags"):
            tags = list(dict.fromkeys(t.strip() for t in TAG_SEPARATORS.split(cells["tags"]) if t.strip()))
            if len(tags) > MAX_TAGS:
                errors.append(RowError(line, "tags", _("More than %(count)d tags.", count=MAX_TAGS)))
            for tag in tags:
                _check_value(line, "tags", tag, MAX_TAG_LENGTH, errors)
            row.tags = tags
        for name, value in cells.items():
            if name in RESERVED_COLUMNS or not value:
                continue
            _check_value(line, name, value, MAX_VALUE_LENGTH, errors)
            row.attributes[name] = value
        rows.append(row)
    if not rows and not errors:
        errors.append(RowError(0, "", _("The file has a header but no rows.")))
    return ImportPlan(rows, errors, header, encoding)


IMPORT_BATCH_SIZE = 1_000

_update_users = BulkWrite(
    update(WechatUser.__table__)
    .where(WechatUser.__table__.c.id == sa.bindparam("b_id"))
    .values(
        nickname=sa.bindparam("b_nickname"),
        tags=sa.bindparam("b_tags"),
        attributes=sa.bindparam("b_attributes"),
    )
)
_insert_users: dict[str, BulkWrite] = {}


def _insert_users_ignoring_conflicts(dialect_name: str) -> BulkWrite:
    """INSERT … ON CONFLICT (openid) DO NOTHING for many rows (a user the mini-program creates in the
    meantime is kept, and then updated like any user that existed before)."""
    if dialect_name not in _insert_users:
        if dialect_name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        _insert_users[dialect_name] = BulkWrite(
            dialect_insert(WechatUser.__table__).on_conflict_do_nothing(index_elements=["openid"])
        )
    return _insert_users[dialect_name]


@dataclass
class ImportProgress:
    done: int
    total: int
    created: int = 0
    updated: int = 0

    @property
    def percent(self) -> int:
        return 100 * self.done // self.total if self.total else 100

    def result(self) -> ImportResult:
        return ImportResult(rows=self.done, created=self.created, updated=self.updated)


def _stored_users(openids: list[str]) -> dict[str, tuple[int, str, list[str], dict[str, Any]]]:
    table = WechatUser.__table__
    rows = db.session.execute(
        select(table.c.openid, table.c.id, table.c.nickname, table.c.tags, table.c.attributes).where(
            table.c.openid.in_(openids)
        )
    )
    return {
        openid: (user_id, nickname, tags or [], attributes or {})
        for openid, user_id, nickname, tags, attributes in rows
    }


def import_batches(plan: ImportPlan, batch_size: int = IMPORT_BATCH_SIZE) -> Iterator[ImportProgress]:
    """Write a plan without errors, ``batch_size`` rows at a time, yielding the progress after each batch:
    create unknown users, set nickname and tags, merge attributes. Nothing is committed: the caller
    commits once at the end, so an import is written whole or not at all."""
    if not plan.ok:
        raise ValueError("an import with errors must not be applied")
    session = db.session
    insert_users = _insert_users_ignoring_conflicts(session.get_bind().dialect.name)
    table = WechatUser.__table__
    progress = ImportProgress(done=0, total=len(plan.rows))
    for start in range(0, len(plan.rows), batch_size):
        chunk = plan.rows[start : start + batch_size]
        stored = _stored_users([row.openid for row in chunk])
        new_rows = [row for row in chunk if row.openid not in stored]
        created_at = utcnow()
        insert_users.execute(
            session,
            [
                {
                    "openid": row.openid,
                    "unionid": None,
                    "nickname": row.nickname or "",
                    "tags": list(row.tags or []),
                    "attributes": row.attributes,
                    "created_at": created_at,
                }
                for row in new_rows
            ],
        )
        if new_rows:
            # A row the mini-program inserted first was skipped by the insert: update it instead.
            taken = set(
                session.scalars(
                    select(table.c.openid).where(
                        table.c.openid.in_([row.openid for row in new_rows]), table.c.created_at != created_at
                    )
                )
            )
            if taken:
                stored.update(_stored_users(list(taken)))
                new_rows = [row for row in new_rows if row.openid not in taken]
        changes = []
        for row in chunk:
            known = stored.get(row.openid)
            if known is None:
                continue
            user_id, nickname, tags, attributes = known
            changes.append(
                {
                    "b_id": user_id,
                    "b_nickname": row.nickname if row.nickname is not None else nickname,
                    "b_tags": list(row.tags) if row.tags is not None else tags,
                    "b_attributes": {**attributes, **row.attributes},
                }
            )
        _update_users.execute(session, changes)
        progress.created += len(new_rows)
        progress.updated += len(chunk) - len(new_rows)
        progress.done += len(chunk)
        yield progress
    # The session may hold some of these users with the values they had before.
    session.expire_all()


def apply_import(plan: ImportPlan) -> ImportResult:
    """Write a plan without errors in one go (see ``import_batches``)."""
    progress = ImportProgress(done=0, total=len(plan.rows))
    for progress in import_batches(plan):  # noqa: B007 (the last one is the result)
        pass
    return progress.result()


def describe_settings(user: WechatUser) -> dict[str, Any]:
    """The reported subscription settings, ready for the page."""
    return {
        "reported": user.settings_reported_at is not None,
        "main_switch": user.main_switch,
        "items": sorted((user.item_settings or {}).items()),
        "at": user.settings_reported_at,
    }
