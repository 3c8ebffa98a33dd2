"""Reading a push body, XML or JSON, into one shape: ``PushMessage`` with ``List`` always a list.

XML goes through ``defusedxml`` (no entities, no DTDs, no external anything). JSON's ``List`` is an object
for one item and an array for several (docs/wechat-rules.md, "Push events"); XML has the items inside a wrapper element
(``SubscribeMsgPopupEvent``...). Both come out the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from ..storable import loads_storable

SUBSCRIBE_EVENTS = {
    "subscribe_msg_popup_event": "SubscribeMsgPopupEvent",
    "subscribe_msg_change_event": "SubscribeMsgChangeEvent",
    "subscribe_msg_sent_event": "SubscribeMsgSentEvent",
}
MAX_ITEMS = 100


class PushFormatError(ValueError):
    """The body is neither the JSON nor the XML WeChat sends."""


@dataclass
class PushMessage:
    body_format: str  # "json" | "xml"
    fields: dict[str, Any]
    items: list[dict[str, str]] = field(default_factory=list)

    @property
    def event(self) -> str:
        return str(self.fields.get("Event") or "")

    @property
    def openid(self) -> str:
        return str(self.fields.get("FromUserName") or "")

    @property
    def create_time(self) -> int:
        try:
            return int(str(self.fields.get("CreateTime") or "0").strip())
        except ValueError:
            raise PushFormatError("CreateTime is not a number") from None


def detect_format(raw: bytes) -> str:
    start = raw.lstrip()[:1]
    if start == b"<":
        return "xml"
    if start == b"{":
        return "json"
    raise PushFormatError("neither XML nor JSON")


def _as_text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PushFormatError("a List field is not text")
    return str(value)


def _items(raw_list: Any) -> list[dict[str, str]]:
    if raw_list is None:
        return []
    entries = raw_list if isinstance(raw_list, list) else [raw_list]
    if len(entries) > MAX_ITEMS:
        raise PushFormatError("too many List items")
    items = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise PushFormatError("a List item is not an object")
        items.append({str(k): _as_text(v) for k, v in entry.items()})
    return items


def parse_json(raw: bytes) -> PushMessage:
    try:
        body = loads_storable(raw)  # no NUL, lone surrogate or deep nesting gets to the database
    except (ValueError, RecursionError):
        raise PushFormatError("not JSON") from None
    if not isinstance(body, dict):
        raise PushFormatError("not a JSON object")
    raw_list = body.get("List")
    if raw_list is None:
        wrapper = SUBSCRIBE_EVENTS.get(str(body.get("Event") or ""))
        inner = body.get(wrapper) if wrapper else None
        if isinstance(inner, dict):
            raw_list = inner.get("List")
    fields = {k: v for k, v in body.items() if k != "List" and not isinstance(v, dict | list)}
    return PushMessage("json", fields, _items(raw_list))


def parse_xml(raw: bytes) -> PushMessage:
    try:
        root = fromstring(raw, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError):
        raise PushFormatError("not well-formed XML") from None
    fields: dict[str, Any] = {}
    items: list[dict[str, str]] = []
    for child in root:
        if len(child):
            lists = [child] if child.tag == "List" else [e for e in child if e.tag == "List"]
            for entry in lists:
                items.append({leaf.tag: (leaf.text or "").strip() for leaf in entry})
        else:
            fields[child.tag] = (child.text or "").strip()
    if len(items) > MAX_ITEMS:
        raise PushFormatError("too many List items")
    return PushMessage("xml", fields, items)


def parse(raw: bytes) -> PushMessage:
    """:raise PushFormatError: a body that is neither well-formed JSON nor XML of the expected shape."""
    return parse_xml(raw) if detect_format(raw) == "xml" else parse_json(raw)
