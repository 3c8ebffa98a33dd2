"""Users written by the company's back end (``/api/v1/users``): parse each row, then write a batch set-based.

Semantics, one row after the other in the order given (the same openid twice in a batch is applied twice):

- ``attributes`` **merge** into what the user has: a key given replaces its value, ``null`` deletes the
  key (declared or not, so old undeclared keys can be cleared), keys not named are kept;
- ``tags`` **replace** the user's tags (``[]`` clears them); absent, the tags are kept;
- ``nickname`` and ``unionid`` replace theirs when given;
- an openid Tongzhi has not seen is created (``created``), any other is ``updated`` (also when nothing
  changed: a re-sent row writes nothing and answers ``updated``).

Every row is checked before anything is written (``parse_row``); a refused row is reported and skipped.
The good rows of a batch are written in one transaction by plain statements on ``wechat_user`` (so its
triggers see ordinary INSERTs and UPDATEs): one SELECT of the stored users (``FOR UPDATE`` on PostgreSQL),
one INSERT of the new users and one UPDATE of the changed ones, whatever the number of rows — the rows
travel as arrays (PostgreSQL ``unnest``) or one JSON document (SQLite ``json_each``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..dispatch.write_lock import write_transaction
from ..extensions import db
from ..models import WechatUser, utcnow
from ..models.types import UTCDateTime
from .attributes import CONTROL_RE, ValueRefused, json_kind, stored_value
from .segments import ATTRIBUTE_KEY_RE, OPENID_RE

MAX_BATCH = 1_000
MAX_TAGS = 20
MAX_TAG_LENGTH = 32
MAX_NICKNAME_LENGTH = 64
MAX_ATTRIBUTES = 100  # keys named in one row
UNIONID_RE = OPENID_RE  # WeChat's unionids use the same alphabet, at most 64 characters
FIELDS = ("attributes", "tags", "unionid", "nickname")
WRITE_ATTEMPTS = 3


class RowRefused(ValueError):
    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def as_json(self) -> dict[str, str]:
        error = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return error


@dataclass(frozen=True)
class UserRow:
    """One checked row: only the parts given (None: keep what the user has)."""

    openid: str
    attributes: dict[str, Any] | None = None  # value to store, or None to delete the key
    tags: list[str] | None = None
    unionid: str | None = None
    nickname: str | None = None


def _tags(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise RowRefused("invalid_tags", f"tags must be a list of strings, not {json_kind(value)}.", "tags")
    tags: list[str] = []
    for index, tag in enumerate(value):
        if not isinstance(tag, str):
            raise RowRefused("invalid_tags", f"tags[{index}] must be a string.", f"tags[{index}]")
        # Spaces only: the document's \s, as generators read it, is ASCII; other blanks are characters.
        tag = tag.strip(" ")
        if not tag or len(tag) > MAX_TAG_LENGTH or CONTROL_RE.search(tag):
            raise RowRefused(
                "invalid_tags",
                f"tags[{index}] must be 1 to {MAX_TAG_LENGTH} characters without control characters.",
                f"tags[{index}]",
            )
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise RowRefused("invalid_tags", f"At most {MAX_TAGS} tags.", "tags")
    return tags


def _attributes(value: Any, declared: dict[str, str], zone: ZoneInfo) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RowRefused(
            "invalid_attributes", f"attributes must be an object, not {json_kind(value)}.", "attributes"
        )
    if len(value) > MAX_ATTRIBUTES:
        raise RowRefused(
            "invalid_attributes", f"At most {MAX_ATTRIBUTES} attributes in one row.", "attributes"
        )
    out: dict[str, Any] = {}
    for key, given in value.items():
        field = f"attributes.{key[:40]}"
        if not ATTRIBUTE_KEY_RE.fullmatch(key):
            raise RowRefused("unknown_attribute", f"{key[:40]!r} is not an attribute key.", field)
        if given is None:
            out[key] = None  # deletes the key, declared or not
            continue
        kind = declared.get(key)
        if kind is None:
            raise RowRefused(
                "unknown_attribute",
                f"Attribute {key!r} is not declared: declare it in Settings → User attributes or with "
                f"PUT /api/v1/attributes/{key}.",
                field,
            )
        try:
            out[key] = stored_value(key, kind, given, zone)
        except ValueRefused as refused:
            raise RowRefused("invalid_attribute_value", str(refused), field) from None
    return out


def parse_row(body: Any, declared: dict[str, str], zone: ZoneInfo, *, openid: str | None = None) -> UserRow:
    """Check one user: the PUT body (``openid`` from the path) or a batch row (``openid`` inside).

    :raise RowRefused: with a code, an English message naming the key or field, and the field.
    """
    if not isinstance(body, dict):
        raise RowRefused("invalid_body", f"A user must be a JSON object, not {json_kind(body)}.")
    allowed = FIELDS if openid is not None else ("openid", *FIELDS)
    for name in body:
        if name not in allowed:
            raise RowRefused("unknown_field", f"Unknown field {name[:40]!r}.", name[:40])
    if openid is None:
        openid = body.get("openid")
        if openid is None:
            raise RowRefused("invalid_openid", "openid is required.", "openid")
    if not isinstance(openid, str) or not OPENID_RE.fullmatch(openid):
        raise RowRefused(
            "invalid_openid", "openid is 1 to 64 letters, digits, _ or - (WeChat's openid).", "openid"
        )
    row: dict[str, Any] = {"openid": openid}
    if body.get("attributes") is not None:
        row["attributes"] = _attributes(body["attributes"], declared, zone)
    if body.get("tags") is not None:
        row["tags"] = _tags(body["tags"])
    unionid = body.get("unionid")
    if unionid is not None:
        if not isinstance(unionid, str) or not UNIONID_RE.fullmatch(unionid):
            raise RowRefused(
                "invalid_unionid", "unionid is 1 to 64 letters, digits, _ or - (WeChat's unionid).", "unionid"
            )
        row["unionid"] = unionid
    nickname = body.get("nickname")
    if nickname is not None:
        if (
            not isinstance(nickname, str)
            or len(nickname) > MAX_NICKNAME_LENGTH
            or CONTROL_RE.search(nickname)
        ):
            raise RowRefused(
                "invalid_nickname",
                f"nickname is text of at most {MAX_NICKNAME_LENGTH} characters without control characters.",
                "nickname",
            )
        row["nickname"] = nickname
    return UserRow(**row)


# -- writing -----------------------------------------------------------------------------------------------


@dataclass
class _User:
    id: int | None
    openid: str
    unionid: str | None
    nickname: str
    tags: list[str]
    attributes: dict[str, Any]
    created_at: Any
    changed: bool = False

    def apply(self, row: UserRow) -> None:
        before = (self.unionid, self.nickname, self.tags, self.attributes)
        if row.attributes is not None:
            merged = dict(self.attributes)
            for key, value in row.attributes.items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            self.attributes = merged
        if row.tags is not None:
            self.tags = list(row.tags)
        if row.unionid is not None:
            self.unionid = row.unionid
        if row.nickname is not None:
            self.nickname = row.nickname
        if (self.unionid, self.nickname, self.tags, self.attributes) != before:
            self.changed = True

    def as_json(self) -> dict[str, Any]:
        return {
            "openid": self.openid,
            "unionid": self.unionid,
            "nickname": self.nickname,
            "tags": self.tags,
            "attributes": self.attributes,
            "created_at": self.created_at.isoformat().replace("+00:00", "Z"),
        }


@dataclass(frozen=True)
class Written:
    statuses: list[str]  # "created" or "updated", one per row given
    users: dict[str, dict[str, Any]]  # openid -> the user as stored now


def _dumps(value: Any) -> str:
    # As SQLAlchemy's JSON type writes it (json.dumps' defaults), so the text on SQLite is the same
    # whichever path wrote it (the user search matches on it).
    return json.dumps(value)


_STORED_COLUMNS = ("id", "openid", "unionid", "nickname", "tags", "attributes", "created_at")


def _stored(session: Session, openids: list[str]) -> dict[str, _User]:
    table = WechatUser.__table__
    query = sa.select(*(table.c[name] for name in _STORED_COLUMNS))
    if session.get_bind().dialect.name == "postgresql":
        # One array parameter rather than 1,000 (planning an IN list of 1,000 costs more than the read).
        # Two batches naming the same user take turns (FOR UPDATE, in id order so they cannot deadlock):
        # the second merges into what the first wrote.
        openids_array = sa.cast(sa.bindparam("openids", openids, type_=ARRAY(sa.String)), ARRAY(sa.String))
        query = query.where(table.c.openid == sa.any_(openids_array)).order_by(table.c.id).with_for_update()
    else:
        query = query.where(table.c.openid.in_(openids))
    return {
        row.openid: _User(
            row.id,
            row.openid,
            row.unionid,
            row.nickname,
            list(row.tags or []),
            dict(row.attributes or {}),
            row.created_at,
        )
        for row in session.execute(query)
    }


_PG_INSERT = sa.text(
    "INSERT INTO wechat_user (openid, unionid, nickname, tags, attributes, created_at) "
    "SELECT v.openid, v.unionid, v.nickname, CAST(v.tags AS jsonb), CAST(v.attributes AS jsonb), :created_at "
    "FROM unnest(CAST(:openids AS varchar[]), CAST(:unionids AS varchar[]), CAST(:nicknames AS varchar[]), "
    "CAST(:tags AS text[]), CAST(:attributes AS text[])) AS v(openid, unionid, nickname, tags, attributes) "
    "RETURNING id, openid"
).bindparams(sa.bindparam("created_at", type_=UTCDateTime()))
_PG_UPDATE = sa.text(
    "UPDATE wechat_user SET unionid = v.unionid, nickname = v.nickname, tags = CAST(v.tags AS jsonb), "
    "attributes = CAST(v.attributes AS jsonb) "
    "FROM unnest(CAST(:ids AS integer[]), CAST(:unionids AS varchar[]), CAST(:nicknames AS varchar[]), "
    "CAST(:tags AS text[]), CAST(:attributes AS text[])) AS v(id, unionid, nickname, tags, attributes) "
    "WHERE wechat_user.id = v.id"
)
_SQLITE_INSERT = sa.text(
    "INSERT INTO wechat_user (openid, unionid, nickname, tags, attributes, created_at) "
    "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), "
    "json_extract(value, '$[3]'), json_extract(value, '$[4]'), :created_at "
    "FROM json_each(:rows) ORDER BY key "
    "RETURNING id, openid"
).bindparams(sa.bindparam("created_at", type_=UTCDateTime()))
_SQLITE_UPDATE = sa.text(
    "UPDATE wechat_user SET unionid = v.unionid, nickname = v.nickname, tags = v.tags, attributes = v.attributes "
    "FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS unionid, "
    "json_extract(value, '$[2]') AS nickname, json_extract(value, '$[3]') AS tags, "
    "json_extract(value, '$[4]') AS attributes FROM json_each(:rows)) AS v "
    "WHERE wechat_user.id = v.id"
)


def _insert(session: Session, users: list[_User], now) -> None:
    if not users:
        return
    if session.get_bind().dialect.name == "postgresql":
        result = session.execute(
            _PG_INSERT,
            {
                "openids": [u.openid for u in users],
                "unionids": [u.unionid for u in users],
                "nicknames": [u.nickname for u in users],
                "tags": [_dumps(u.tags) for u in users],
                "attributes": [_dumps(u.attributes) for u in users],
                "created_at": now,
            },
        )
    else:
        rows = [[u.openid, u.unionid, u.nickname, _dumps(u.tags), _dumps(u.attributes)] for u in users]
        result = session.execute(_SQLITE_INSERT, {"rows": json.dumps(rows), "created_at": now})
    ids = dict((openid, user_id) for user_id, openid in result)
    for user in users:
        user.id = ids[user.openid]


def _update(session: Session, users: list[_User]) -> None:
    if not users:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            _PG_UPDATE,
            {
                "ids": [u.id for u in users],
                "unionids": [u.unionid for u in users],
                "nicknames": [u.nickname for u in users],
                "tags": [_dumps(u.tags) for u in users],
                "attributes": [_dumps(u.attributes) for u in users],
            },
        )
    else:
        rows = [[u.id, u.unionid, u.nickname, _dumps(u.tags), _dumps(u.attributes)] for u in users]
        session.execute(_SQLITE_UPDATE, {"rows": json.dumps(rows)})


def _write(session: Session, rows: list[UserRow]) -> Written:
    openids = list(dict.fromkeys(row.openid for row in rows))
    users = _stored(session, openids)
    now = utcnow()
    new: list[_User] = []
    statuses: list[str] = []
    for row in rows:
        user = users.get(row.openid)
        if user is None:
            user = users[row.openid] = _User(None, row.openid, None, "", [], {}, now)
            new.append(user)
            statuses.append("created")
        else:
            statuses.append("updated")
        user.apply(row)
    changed = [user for user in users.values() if user.id is not None and user.changed]
    _insert(session, new, now)
    _update(session, changed)
    return Written(statuses, {openid: users[openid].as_json() for openid in openids})


def upsert_users(rows: Iterable[UserRow]) -> Written:
    """Write checked rows in one transaction of its own (committed here); see the module's docstring.

    The request's session is ended first, so on SQLite the write lock is taken before the stored users
    are read (``BEGIN IMMEDIATE``) and nothing can change between the read and the write. A user created
    by someone else between the read and the INSERT (PostgreSQL) makes the batch start again, once it is
    stored: then it is updated like any other.
    """
    rows = list(rows)
    if not rows:
        return Written([], {})
    db.session.commit()
    for attempt in range(WRITE_ATTEMPTS):
        try:
            with write_transaction(db.engine) as session:
                return _write(session, rows)
        except IntegrityError:
            if attempt == WRITE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")
