"""Hand-made users for the segment tests, and a Python oracle that says who a filter should select."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dashboard.extensions import db
from dashboard.grants.services import record_answers
from dashboard.models import WechatUser
from dashboard.models.grants import GrantBalance

T_ONE = "TMPL_one_time_000000000000000000000000000"
T_LONG = "TMPL_long_term_00000000000000000000000000"
NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)  # 11:00 in Asia/Shanghai
TODAY = NOW.astimezone(ZoneInfo("Asia/Shanghai")).date()


@dataclass
class Person:
    """What the oracle knows of a user (the same facts written to the database)."""

    openid: str
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    unionid: str | None = None
    last_login_at: datetime | None = None
    main_switch: bool | None = None
    item_settings: dict[str, str] | None = None
    credits: dict[str, int] = field(default_factory=dict)  # one-time template -> credits
    active: dict[str, bool] = field(default_factory=dict)  # long-term template -> active
    scenes: list[str] = field(default_factory=list)  # scenes the user accepted a prompt in
    id: int = 0


def _day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


def make_people() -> list[Person]:
    cities = ["上海", "Beijing", "shanghai-pudong", "", None]
    tag_sets = [[], ["vip"], ["vip", "new"], ["new"], ["vip", "北京"], ["old"]]
    people = []
    for i in range(36):
        attributes: dict[str, Any] = {}
        city = cities[i % len(cities)]
        if city is not None:
            attributes["city"] = city
        if i % 3 == 0:
            attributes["birthday"] = _day((i // 3) % 9 - 4)  # -4 .. +4 days from today
        elif i % 3 == 1:
            attributes["birthday"] = _day(i * 10 - 200) + "T08:00:00+08:00"
        if i % 7 == 0:
            attributes["birthday"] = "not a date"
        people.append(
            Person(
                openid=f"oSeg{i:04d}aaaaaaaaaaaaaaaaaa",
                tags=list(tag_sets[i % len(tag_sets)]),
                attributes=attributes,
                unionid=(f"uSeg{i:04d}" if i % 4 == 0 else ("" if i % 4 == 1 else None)),
                last_login_at=(NOW - timedelta(days=(i - 1) * 3) if i % 5 else None),
                main_switch=[True, False, None][i % 3],
                item_settings=(
                    {T_ONE: "reject"} if i % 8 == 0 else {T_ONE: "accept"} if i % 8 == 1 else None
                ),
                credits={T_ONE: i % 4} if i % 6 != 5 else {},
                active={T_LONG: bool(i % 2)} if i % 3 != 2 else {},
                scenes=["1001"] if i % 5 == 1 else (["1047"] if i % 5 == 2 else []),
            )
        )
    return people


def store(people: list[Person]) -> None:
    """Write the people: users directly, grants through the ledger's own write path where it has one."""
    for person in people:
        user = WechatUser(
            openid=person.openid,
            unionid=person.unionid,
            nickname=person.openid[:8],
            tags=person.tags,
            attributes=person.attributes,
            last_login_at=person.last_login_at,
            main_switch=person.main_switch,
            item_settings=person.item_settings,
        )
        db.session.add(user)
        db.session.flush()
        person.id = user.id
        for scene in person.scenes:
            record_answers(user.id, [("TMPL_scene_only", "accept")], source="client", scene=scene)
        for template_id, credits in person.credits.items():
            db.session.add(
                GrantBalance(user_id=user.id, template_id=template_id, kind="one_time", credits=credits)
            )
        for template_id, active in person.active.items():
            db.session.add(
                GrantBalance(user_id=user.id, template_id=template_id, kind="long_term", active=active)
            )
    db.session.commit()


def _date_of(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def oracle(doc: dict, person: Person) -> bool:
    """What ``doc`` means, in plain Python (the specification the SQL must agree with)."""
    ((key, value),) = doc.items()
    if key == "all":
        return all(oracle(item, person) for item in value)
    if key == "any":
        return any(oracle(item, person) for item in value)
    if key == "not":
        return not oracle(value, person)
    if key == "grant":
        template_id, k = value["template_id"], value.get("min_credits", 1)
        if template_id in person.active:
            return person.active[template_id]
        return person.credits.get(template_id, 0) >= k
    if key == "tag":
        return value in person.tags
    if key == "tags":
        ((mode, tags),) = value.items()
        hits = [tag in person.tags for tag in tags]
        return {"any": any(hits), "all": all(hits), "none": not any(hits)}[mode]
    if key == "attribute":
        raw = person.attributes.get(value["key"])
        op = value["op"]
        if op == "eq":
            return raw == value["value"]
        if op == "contains":
            return raw is not None and value["value"].lower() in raw.lower()
        if op in ("set", "unset"):
            return bool(raw) == (op == "set")
        day = _date_of(raw)
        if day is None:
            return False
        if op == "before":
            return day < date.fromisoformat(value["value"])
        if op == "after":
            return day > date.fromisoformat(value["value"])
        span = timedelta(days=value["value"])
        if op == "within_next_days":
            return TODAY <= day <= TODAY + span
        return TODAY - span <= day <= TODAY
    if key == "seen_within_days":
        return person.last_login_at is not None and person.last_login_at >= NOW - timedelta(days=value)
    if key == "has_unionid":
        return bool(person.unionid) == value
    if key == "granted_in_scene":
        return value in person.scenes
    if key == "main_switch":
        return person.main_switch is value
    if key == "openids":
        return person.openid in value
    raise AssertionError(key)


@pytest.fixture
def people(app) -> list[Person]:
    crowd = make_people()
    with app.app_context():
        store(crowd)
    return crowd
