"""Keyword schemas: built from a template's content, merged across WeChat changes, and filled in.

Pure functions (no Flask, no database), so the sync, the forms and the preview agree on one reading
of a template.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..models.catalog import FitPolicy, KeywordSpec
from ..wechat.keywords import parse_content

ENUM_TYPES = frozenset({"enum", "enum_string"})

# User variables a default value may use. Their real values come with segments (later); until then
# the preview shows these samples, and says so.
USER_VARIABLE_RE = re.compile(r"\{\{\s*user\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
SAMPLE_USER: dict[str, str] = {"nickname": "张三", "openid": "oSample0000000000000000000000"}

_PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\.DATA\s*\}\}")
_LABEL_TRAILER = " \t:：\u3000"


def build_schema(
    content: str,
    enum_values: Mapping[str, Iterable[str]] | None = None,
    previous: Iterable[Mapping[str, Any]] | None = None,
) -> list[KeywordSpec]:
    """The keyword schema of ``content``, in content order.

    ``enum_values`` (from ``keywordEnumValueList``, keyed by data key) are WeChat's and win over
    anything stored. From ``previous`` (the schema before a change) an entry with the same key and
    type keeps the operator's default, fit policy and enum values, and its label when the operator
    changed it (a label still equal to the old content label follows the new content).
    """
    remote_enums = {key: [str(v) for v in values] for key, values in (enum_values or {}).items()}
    before = {spec["key"]: spec for spec in previous or ()}
    schema: list[KeywordSpec] = []
    for keyword in parse_content(content):
        old = before.get(keyword.key)
        if old is not None and old.get("type") != keyword.type:
            old = None
        label = keyword.label
        if old is not None and old.get("label") and old.get("label") != old.get("content_label"):
            label = str(old["label"])
        enums: list[str] = []
        if keyword.key in remote_enums:
            enums = remote_enums[keyword.key]
        elif old is not None:
            enums = [str(v) for v in old.get("enum_values") or ()]
        schema.append(
            KeywordSpec(
                key=keyword.key,
                type=keyword.type,
                label=label,
                content_label=keyword.label,
                enum_values=enums,
                default=(old or {}).get("default") or None,
                fit=str((old or {}).get("fit") or FitPolicy.reject.value),
            )
        )
    return schema


def keyword_pairs(content: str) -> list[tuple[str, str]]:
    """``[(key, type)]`` of a content, in order: what a send's ``data`` must match."""
    return [(k.key, k.type) for k in parse_content(content)]


def example_values(content: str, example: str) -> dict[str, str]:
    """Sample values per key, read from ``example`` (which mirrors ``content`` line by line)."""
    values: dict[str, str] = {}
    for content_line, example_line in zip(content.splitlines(), example.splitlines(), strict=False):
        match = _PLACEHOLDER_RE.search(content_line)
        if match is None:
            continue
        prefix = content_line[: match.start()]
        if example_line.startswith(prefix):
            value = example_line[len(prefix) :]
        else:  # the example's label differs from the content's: take what follows the first colon
            parts = re.split(r"[:：]", example_line, maxsplit=1)
            value = parts[1] if len(parts) == 2 else example_line
        values[match.group(1)] = value.strip()
    return values


def parse_enum_text(text: str | None) -> list[str]:
    """Enum values typed one per line (commas and 、 also separate); blanks and repeats dropped."""
    values: list[str] = []
    for part in re.split(r"[\n,，、]", text or ""):
        value = part.strip()
        if value and value not in values:
            values.append(value)
    return values


def user_variables(text: str | None) -> list[str]:
    """Names of the user variables used in ``text`` (``{{user.nickname}}`` → ``nickname``)."""
    return list(dict.fromkeys(USER_VARIABLE_RE.findall(text or "")))


def fill_user_variables(text: str, values: Mapping[str, str]) -> str:
    """Replace ``{{user.x}}`` with ``values[x]``; variables without a value stay as typed."""

    def substitute(match: re.Match[str]) -> str:
        return values.get(match.group(1), match.group(0))

    return USER_VARIABLE_RE.sub(substitute, text)


def is_enum(type_name: str) -> bool:
    return type_name in ENUM_TYPES


def content_lines(content: str) -> list[tuple[str, list[str], str]]:
    """The card's rows: ``(label, [keys on the line], line template after the label)``.

    Lines without placeholders are kept as ``(text, [], "")``; blank lines are dropped.
    """
    rows: list[tuple[str, list[str], str]] = []
    for line in (content or "").splitlines():
        if not line.strip():
            continue
        match = _PLACEHOLDER_RE.search(line)
        if match is None:
            rows.append((line.strip(), [], ""))
            continue
        label = line[: match.start()].strip().rstrip(_LABEL_TRAILER).strip()
        keys = list(dict.fromkeys(_PLACEHOLDER_RE.findall(line)))
        rows.append((label, keys, line[match.start() :]))
    return rows


def render_line(template: str, values: Mapping[str, str]) -> str:
    """A line's value part with its placeholders replaced."""
    return _PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), ""), template).strip()
