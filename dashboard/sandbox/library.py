"""Template management (``/wxaapi/newtmpl/*``): the public title library and the account's private templates.

Functions take raw request values and return either the result or an errcode, so the route layer only
translates. Error codes follow docs/wechat-rules.md, "Templates" (200012–200021; 20002 for a bad priTmplId on delete).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any

from .state import PrivateTemplate, PublicTitle, SandboxState

MAX_TITLE_PAGE = 30
SCENE_DESC_MAX = 15


def _int(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    try:
        return int(str(raw).strip())
    except (TypeError, ValueError):
        return None


def make_private(
    title: PublicTitle, kids: list[int], scene_desc: str = "", pri_tmpl_id: str | None = None
) -> PrivateTemplate:
    """Build the private template WeChat would create from ``title`` with keywords ``kids`` (in that order).

    Content lines are ``"<name>:{{<rule><kid>.DATA}}\\n"``; the example mirrors them with sample values.
    """
    content, example = [], []
    enum_values: dict[str, list[str]] = {}
    for kid in kids:
        keyword = title.keyword(kid)
        if keyword is None:
            raise ValueError(f"tid {title.tid} has no kid {kid}")
        key = f"{keyword.rule}{keyword.kid}"
        content.append(f"{keyword.name}:{{{{{key}.DATA}}}}\n")
        example.append(f"{keyword.name}:{keyword.example}\n")
        if keyword.enum_values:
            enum_values[f"{key}.DATA"] = list(keyword.enum_values)
    return PrivateTemplate(
        pri_tmpl_id=pri_tmpl_id or secrets.token_urlsafe(32),
        tid=title.tid,
        title=title.title,
        content="".join(content),
        example="".join(example),
        type=title.type,
        enum_values=enum_values,
        scene_desc=scene_desc,
    )


def stable_template_id(appid: str, tid: int, kids: list[int]) -> str:
    """A 43-character id derived from (appid, tid, kids), so seeded ids survive sandbox restarts."""
    digest = hashlib.sha256(f"{appid}|{tid}|{','.join(map(str, kids))}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:43]


def categories(state: SandboxState) -> list[dict[str, Any]]:
    with state.lock:
        return [{"id": cid, "name": name} for cid, name in state.categories]


def titles(
    state: SandboxState, ids: str | None, start: str | None, limit: str | None
) -> dict[str, Any] | int:
    """``getpubtemplatetitles``: ``{"count", "data": [{tid, title, type, categoryId}]}`` or an errcode."""
    if not ids:
        return 200018
    with state.lock:
        known = {cid for cid, _ in state.categories}
        wanted: set[int] = set()
        for part in ids.split(","):
            cid = _int(part) if part.strip().isdigit() else None
            if cid is None or cid not in known:
                return 200019
            wanted.add(cid)
        start_n = _int(start)
        if start_n is None or start_n < 0:
            return 200016
        limit_n = _int(limit)
        if limit_n is None or not 1 <= limit_n <= MAX_TITLE_PAGE:
            return 200017
        matching = [t for t in state.titles.values() if t.category_id in wanted]
        page = matching[start_n : start_n + limit_n]
        return {
            "count": len(matching),
            "data": [
                {"tid": t.tid, "title": t.title, "type": t.type, "categoryId": str(t.category_id)}
                for t in page
            ],
        }


def keywords(state: SandboxState, tid: str | None) -> list[dict[str, Any]] | int:
    """``getpubtemplatekeywords``: ``[{kid, name, example, rule}]`` or 200014 for an unknown tid."""
    with state.lock:
        title = state.titles.get(_int(tid) or -1)
        if title is None:
            return 200014
        return [{"kid": k.kid, "name": k.name, "example": k.example, "rule": k.rule} for k in title.keywords]


def add_template(state: SandboxState, tid: Any, kid_list: Any, scene_desc: Any) -> str | int:
    """``addtemplate``: the new priTmplId, or 200014 / 200020 / 200021 / 200012."""
    with state.lock:
        title = state.titles.get(_int(tid) or -1)
        if title is None:
            return 200014
        if not isinstance(kid_list, list) or not 2 <= len(kid_list) <= 5:
            return 200020
        kids = [_int(k) for k in kid_list]
        if any(k is None or title.keyword(k) is None for k in kids) or len(set(kids)) != len(kids):
            return 200020
        scene = "" if scene_desc is None else str(scene_desc)
        if len(scene) > SCENE_DESC_MAX:
            return 200021
        if len(state.private) >= int(state.config["PRIVATE_TEMPLATE_LIMIT"]):
            return 200012
        template = make_private(title, [k for k in kids if k is not None], scene)
        state.private[template.pri_tmpl_id] = template
        return template.pri_tmpl_id


def delete_template(state: SandboxState, pri_tmpl_id: Any) -> int:
    """``deltemplate``: 0, or 20002 when the id is missing or unknown."""
    with state.lock:
        if not pri_tmpl_id or state.private.pop(str(pri_tmpl_id), None) is None:
            return 20002
        return 0


def list_private(state: SandboxState) -> list[dict[str, Any]]:
    """``gettemplate`` rows, in creation order."""
    with state.lock:
        return [t.to_api() for t in state.private.values()]
