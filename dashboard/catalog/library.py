"""The public template library: categories, title search, keywords, and adding a template.

WeChat's title list has no text search (``getpubtemplatetitles`` pages through a category 30 at a
time), so a search reads up to :data:`MAX_SCAN` titles and keeps those containing the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..audit.services import record
from ..models.catalog import MessageTemplate, TemplateKind, TemplateSource
from ..wechat import get_client
from .services import CatalogError
from .sync import RemoteTemplate, fetch_remote, register_remote

PAGE = 30  # WeChat's largest page
MAX_SCAN = 300
MIN_KEYWORDS, MAX_KEYWORDS = 2, 5
SCENE_DESC_MAX = 15


@dataclass(frozen=True)
class Category:
    id: int
    name: str


@dataclass(frozen=True)
class TitleHit:
    tid: int
    title: str
    kind: TemplateKind
    category_id: str


@dataclass(frozen=True)
class TitleSearch:
    hits: list[TitleHit]
    scanned: int  # titles read from WeChat
    total: int  # titles the category has
    start: int  # where this search started reading

    @property
    def next_start(self) -> int | None:
        """Where a "search further" would continue, or ``None`` when the category was read to the end."""
        end = self.start + self.scanned
        return end if end < self.total else None


@dataclass(frozen=True)
class PublicKeyword:
    kid: int
    name: str
    example: str
    rule: str


def categories() -> list[Category]:
    """The account's categories (``getcategory``). :raise WeChatError:"""
    result = []
    for row in get_client().get_category():
        try:
            result.append(Category(int(row["id"]), str(row.get("name") or row["id"])))
        except (KeyError, TypeError, ValueError):
            continue
    return result


def search_titles(category_id: int, text: str = "", start: int = 0, max_scan: int = MAX_SCAN) -> TitleSearch:
    """Titles of ``category_id`` containing ``text`` (all of them when blank), reading at most
    ``max_scan`` titles from ``start``. :raise WeChatError:"""
    client = get_client()
    wanted = text.strip().casefold()
    hits: list[TitleHit] = []
    scanned, total, offset = 0, 0, max(0, start)
    while scanned < max_scan:
        page = client.get_pub_template_titles([category_id], start=offset, limit=PAGE)
        total = page["count"]
        rows = page["data"]
        for row in rows:
            title = str(row.get("title") or "")
            if wanted and wanted not in title.casefold():
                continue
            try:
                tid = int(row["tid"])
            except (KeyError, TypeError, ValueError):
                continue
            hits.append(
                TitleHit(
                    tid,
                    title,
                    TemplateKind.from_wechat_type(row.get("type")),
                    str(row.get("categoryId") or ""),
                )
            )
        scanned += len(rows)
        offset += len(rows)
        if not rows or offset >= total:
            break
    return TitleSearch(hits=hits, scanned=scanned, total=total, start=max(0, start))


def keywords(tid: int) -> list[PublicKeyword]:
    """The keywords a title offers (``getpubtemplatekeywords``). :raise WeChatError:"""
    result = []
    for row in get_client().get_pub_template_keywords(tid):
        try:
            result.append(
                PublicKeyword(
                    int(row["kid"]),
                    str(row.get("name") or ""),
                    str(row.get("example") or ""),
                    str(row.get("rule") or ""),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return result


def add_from_library(tid: int, kids: Sequence[int], scene_desc: str = "") -> MessageTemplate:
    """``addtemplate`` in WeChat, then register what WeChat made of it (read back with ``gettemplate``).

    :raise CatalogError: bad keyword count or scene description (checked before calling WeChat), or
        the new template is not in WeChat's list yet (a later sync registers it).
    :raise WeChatError: WeChat refused (200012 limit reached, 200014 bad tid, …).
    """
    kids = [int(k) for k in kids]
    if not MIN_KEYWORDS <= len(kids) <= MAX_KEYWORDS or len(set(kids)) != len(kids):
        raise CatalogError("bad_kids", "kid1")
    if len(scene_desc) > SCENE_DESC_MAX:
        raise CatalogError("scene_desc_too_long", "scene_desc")
    pri_tmpl_id = get_client().add_template(tid, kids, scene_desc)
    row: RemoteTemplate | None = next((r for r in fetch_remote() if r.template_id == pri_tmpl_id), None)
    if not pri_tmpl_id or row is None:
        raise CatalogError("added_not_listed")
    template = register_remote(row, TemplateSource.library, tid=str(tid), scene_desc=scene_desc)
    record(
        "template.created",
        template,
        source="library",
        template_id=template.template_id,
        title=template.title,
        tid=tid,
        kids=kids,
        scene_desc=scene_desc,
    )
    return template
