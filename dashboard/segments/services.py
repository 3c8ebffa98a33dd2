"""Saving segments and reading an uploaded list of openids. Services add to the session; callers commit."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from ..audience.segments import MAX_OPENIDS, OPENID_RE, FilterError, validate_filter
from ..extensions import db
from ..models import Segment, utcnow

MAX_NAME_LENGTH = 80
MAX_CSV_BYTES = 8 * 1024 * 1024


class SegmentRefused(Exception):
    """A segment that cannot be saved: ``code`` for the API, ``field`` and a sentence for people."""

    def __init__(self, code: str, field: str, sentence: Any, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.field = field
        self.sentence = sentence
        self.params = params

    @property
    def message(self) -> str:
        return str(self.sentence) % self.params if self.params else str(self.sentence)


def clean_name(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise SegmentRefused("invalid_name", "name", _l("A segment needs a name."))
    name = raw.strip()
    if len(name) > MAX_NAME_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise SegmentRefused(
            "invalid_name",
            "name",
            _l("A name is at most %(limit)s characters, without control characters."),
            limit=MAX_NAME_LENGTH,
        )
    return name


def clean_filter(raw: Any) -> dict:
    try:
        return validate_filter(raw)
    except FilterError as error:
        raise SegmentRefused(
            "invalid_filter",
            "filter" + (f".{error.path}" if error.path else ""),
            error.sentence,
            **error.params,
        ) from None


def _name_taken(name: str, except_id: int | None) -> bool:
    query = select(Segment.id).where(func.lower(Segment.name) == name.lower())
    if except_id is not None:
        query = query.where(Segment.id != except_id)
    return db.session.scalar(query) is not None


def save_segment(segment: Segment | None, name: Any, doc: Any, operator_id: int | None) -> Segment:
    """Create (``segment`` None) or change a segment; ``SegmentRefused`` when the name or filter is bad.

    The unique index on ``name`` still decides between two concurrent saves: the caller turns its
    ``IntegrityError`` into the same refusal.
    """
    clean = clean_name(name)
    document = clean_filter(doc)
    if _name_taken(clean, segment.id if segment else None):
        raise SegmentRefused("name_taken", "name", _l("Another segment is called %(name)s."), name=clean)
    if segment is None:
        segment = Segment(name=clean, filter=document, created_by_id=operator_id)
        db.session.add(segment)
    else:
        segment.name, segment.filter, segment.updated_at = clean, document, utcnow()
    db.session.flush()
    return segment


def narrow(doc: dict, leaf: Any) -> dict:
    """``doc`` with one more condition: added to its top-level ``all`` (or both under a new ``all``)."""
    if set(doc) == {"all"}:
        return {"all": [*doc["all"], leaf]}
    return {"all": [doc, leaf]}


@dataclass(frozen=True)
class RowError:
    line: int  # the line of the file; 0 = the file as a whole
    message: str


@dataclass
class OpenidList:
    openids: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def parse_openid_csv(raw: bytes) -> OpenidList:
    """Every openid of a CSV file (first column; an ``openid`` header line is skipped), or every problem.

    The whole file is read before anything is used: one bad row and the list is not used at all.
    """
    result = OpenidList()
    if len(raw) > MAX_CSV_BYTES:
        result.errors.append(RowError(0, str(_l("The file is larger than 8 MB."))))
        return result
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        result.errors.append(RowError(0, str(_l("The file is not UTF-8 text."))))
        return result
    seen: set[str] = set()
    try:
        for line, row in enumerate(csv.reader(io.StringIO(text)), start=1):
            cell = row[0].strip() if row else ""
            if not cell or (line == 1 and cell.lower() == "openid"):
                continue
            if not OPENID_RE.fullmatch(cell):
                result.errors.append(
                    RowError(line, str(_l("Not an openid (letters, digits, _ and -, up to 64).")))
                )
            elif cell not in seen:
                seen.add(cell)
                result.openids.append(cell)
    except csv.Error:
        result.errors.append(RowError(0, str(_l("The file is not a CSV file."))))
        return result
    if not result.openids and not result.errors:
        result.errors.append(RowError(0, str(_l("The file holds no openids."))))
    if len(result.openids) > MAX_OPENIDS:
        result.errors.append(RowError(0, str(_l("At most %(limit)s openids.") % {"limit": MAX_OPENIDS})))
    return result
