"""A campaign's keyword values: where each comes from, and its value for one user.

Per keyword the campaign stores ``{"value": "...", "fallback": "..."}``: fixed text, or text with user
variables (``{{user.nickname}}``, ``{{user.openid}}``, ``{{user.unionid}}``, ``{{user.attributes.city}}``);
when a variable a value uses is empty for a user, the fallback is sent instead. A variable may end in a
filter: ``{{user.attributes.membership_expires_at|date}}`` writes a date (``YYYY-MM-DD``) or date-time
attribute as WeChat's ``date``/``time`` keywords take it (``2026-12-31``, ``2026-12-31 09:30``). A keyword left out takes
the template's default. Each filled value is checked against its keyword's rule, and the template's fit
policy decides: ``fix`` sends the suggested fix, ``reject`` refuses that user's send.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..models.catalog import FitPolicy
from ..wechat.keywords import (
    MINIPROGRAM_RULES,
    OFFICIAL_ACCOUNT_RULES,
    RuleSet,
    suggest_fix,
    validate_value,
)

VARIABLE_RE = re.compile(r"\{\{\s*user\.([A-Za-z_][A-Za-z0-9_]*(?:\.[^{}\s]+)?)\s*\}\}")
USER_FIELDS = ("nickname", "openid", "unionid")
FILTERS = ("date",)
# The front of a date or date-time attribute (date-times are stored in the operator's zone, so their text
# is the local wall clock): the day, and the clock when there is one.
DATE_TEXT_RE = re.compile(r"^([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[T ]([0-9]{2}:[0-9]{2}))?")


class BadValue(ValueError):
    """A keyword's source is malformed or can never pass its rule: ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key, self.message = key, message


@dataclass(frozen=True)
class KeywordSource:
    key: str
    type: str
    value: str
    fallback: str | None
    enums: tuple[str, ...]
    fit: str
    # The channel's value rules: the mini-program's, or the Official Account's (``oa_sources``).
    rules: RuleSet = MINIPROGRAM_RULES

    @property
    def variables(self) -> list[str]:
        return VARIABLE_RE.findall(self.value)


def _split_filter(name: str) -> tuple[str, str | None]:
    base, bar, flt = name.partition("|")
    return base, (flt if bar else None)


def variable_known(name: str) -> bool:
    name, flt = _split_filter(name)
    if flt is not None and flt not in FILTERS:
        return False
    return name in USER_FIELDS or (name.startswith("attributes.") and len(name) > len("attributes."))


def date_text(value: str) -> str:
    """``|date``: a date or date-time attribute as a WeChat ``date``/``time`` keyword takes it, "" when the
    value is not one (the fallback is then sent)."""
    match = DATE_TEXT_RE.match(value)
    if match is None:
        return ""
    day, clock = match.groups()
    return f"{day} {clock}" if clock else day


def parse_sources(
    specs: list[Mapping[str, Any]], data: Any, rules: RuleSet = MINIPROGRAM_RULES, *, judge: bool = True
) -> list[KeywordSource]:
    """The campaign's ``data`` read against the template's keyword specs, judged by ``rules``.

    :raise BadValue: an unknown keyword, a malformed entry, an unknown variable, or a value (or
        fallback) without variables that breaks its rule under a ``reject`` policy.
    """
    if not isinstance(data, Mapping):
        raise BadValue("data", "data must be an object of keywords.")
    keys = {spec["key"] for spec in specs}
    for key in data:
        if key not in keys:
            raise BadValue(str(key), f"{key}: the template has no such keyword.")
    sources = []
    for spec in specs:
        key = spec["key"]
        entry = data.get(key)
        if entry is None:
            entry = {"value": spec.get("default") or ""}
        if not isinstance(entry, Mapping) or not isinstance(entry.get("value"), str):
            raise BadValue(key, f"{key}: give an object with a string value.")
        fallback = entry.get("fallback")
        if fallback is not None and not isinstance(fallback, str):
            raise BadValue(key, f"{key}: the fallback must be a string.")
        extra = set(entry) - {"value", "fallback"}
        if extra:
            raise BadValue(key, f"{key}: unknown field {sorted(extra)[0]!r}.")
        source = KeywordSource(
            key,
            spec["type"],
            entry["value"],
            fallback,
            tuple(spec.get("enum_values") or ()),
            spec.get("fit") or FitPolicy.reject.value,
            rules,
        )
        for name in source.variables:
            if not variable_known(name):
                raise BadValue(key, f"{key}: there is no user variable {{{{user.{name}}}}}.")
        # Text that is the same for every user can be judged now: a value without variables, and the
        # fallback of one with them.
        fixed = source.value if not source.variables else source.fallback
        if judge and fixed is not None and finish(source, fixed) is None:
            raise BadValue(key, f"{key}: {fixed!r} breaks the rule of a {source.type} keyword.")
        sources.append(source)
    return sources


def finish(source: KeywordSource, text: str) -> str | None:
    """``text`` as it would be sent for this keyword, or None when its rule refuses it."""
    violations = validate_value(
        source.key, text, list(source.enums), type_name=source.type, rules=source.rules
    )
    if not any(v.is_error for v in violations):
        return text
    if source.fit == FitPolicy.fix.value:
        return suggest_fix(source.key, text, list(source.enums), type_name=source.type, rules=source.rules)
    return None


def user_value(name: str, user: Mapping[str, Any]) -> str:
    name, flt = _split_filter(name)
    if flt == "date":
        return date_text(user_value(name, user))
    if name.startswith("attributes."):
        value = (user.get("attributes") or {}).get(name[len("attributes.") :])
    else:
        value = user.get(name)
    return "" if value is None else str(value).strip()


def text_for(source: KeywordSource, user: Mapping[str, Any]) -> str:
    """The keyword's text for ``user`` before its rule is applied: user variables filled in, or the
    fallback when one of them is empty. (``fill`` is this and ``finish``; the dry run shows both.)"""
    if not source.variables:
        return source.value
    found = {name: user_value(name, user) for name in source.variables}
    if any(not v for v in found.values()) and source.fallback is not None:
        return source.fallback
    return VARIABLE_RE.sub(lambda m: found[m.group(1)], source.value)


def fill(sources: list[KeywordSource], user: Mapping[str, Any]) -> dict[str, str] | str:
    """The data sent to ``user``, or the key of the first keyword whose value its rule refuses."""
    data: dict[str, str] = {}
    for source in sources:
        sent = finish(source, text_for(source, user))
        if sent is None:
            return source.key
        data[source.key] = sent
    return data


def oa_sources(keywords: list[Mapping[str, Any]], data: Any, *, judge: bool = True) -> list[KeywordSource]:
    """An Official Account template's values (``Campaign.oa_data``, the same form as ``data``) read against
    its keys (``OaTemplate.keywords``) and judged by the OA's rules, the checker of the catalog's OA
    preview (``oa.templates.build_preview``). A key left out is empty (the OA has no template defaults:
    only ``first``, ``remark`` and ``const`` may be); a value its rule refuses is never fixed, the user is
    skipped. ``judge=False``: fixed text is not judged (a preview marks it instead).
    :raise BadValue: as ``parse_sources``."""
    specs = [{"key": k["key"], "type": k["type"], "fit": FitPolicy.reject.value} for k in keywords]
    return parse_sources(specs, data, OFFICIAL_ACCOUNT_RULES, judge=judge)


def constant(sources: list[KeywordSource]) -> bool:
    return not any(source.variables for source in sources)
