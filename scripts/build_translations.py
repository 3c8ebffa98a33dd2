"""Build the gettext catalogs from the code and ``dashboard/translations/zh*.py``.

    python scripts/build_translations.py          # extract, fill zh, compile .mo files
    python scripts/build_translations.py --check  # exit 1 listing strings with no Chinese entry

Run by ``make run`` and ``make test``; the compiled ``.mo`` files are build output, not committed.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import write_po

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "dashboard" / "translations"
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "_l": None,
    "lazy_gettext": None,
    "lazy_ngettext": (1, 2),
}
METHODS = [("dashboard/**.py", "python"), ("templates/**.html", "jinja2")]


def _walk_into(dirpath: str) -> bool:
    """Babel's default skips every folder starting with ``_``, so ``templates/_macros`` (the pager, the
    charts) went untranslated; skip only hidden folders and caches."""
    name = os.path.basename(dirpath)
    return not name.startswith(".") and name not in {"__pycache__", "node_modules", "instance"}


def extract() -> Catalog:
    catalog = Catalog(project="Tongzhi")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(ROOT),
        METHODS,
        keywords=KEYWORDS,
        options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        directory_filter=_walk_into,
    ):
        if filename.startswith("dashboard/sandbox"):
            continue  # the sandbox has its own fixed bilingual labels
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def chinese_strings() -> dict:
    """Merge ``ZH`` from every ``dashboard/translations/zh*.py`` (one file per feature, so features never collide)."""
    import importlib

    sys.path.insert(0, str(ROOT))
    merged: dict = {}
    for path in sorted((ROOT / "dashboard" / "translations").glob("zh*.py")):
        module = importlib.import_module(f"dashboard.translations.{path.stem}")
        merged.update(module.ZH)
    return merged


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    ZH = chinese_strings()

    source = extract()
    zh = Catalog(locale="zh", project="Tongzhi")
    en = Catalog(locale="en", project="Tongzhi")
    missing = []
    for message in source:
        if not message.id:
            continue
        key = tuple(message.id) if isinstance(message.id, (list, tuple)) else message.id
        text = ZH.get(key)
        if text is None:
            missing.append(key)
            continue
        string = (text,) if isinstance(key, tuple) else text
        zh.add(message.id, string, message.locations)
        en.add(message.id, None, message.locations)
    if missing:
        print("No Chinese entry in dashboard/translations/zh*.py for:", file=sys.stderr)
        for key in missing:
            print(f"  {key!r}", file=sys.stderr)
        if args.check:
            return 1
    if args.check:
        return 0
    for locale, catalog in (("zh", zh), ("en", en)):
        folder = OUT / locale / "LC_MESSAGES"
        folder.mkdir(parents=True, exist_ok=True)
        po, mo = io.BytesIO(), io.BytesIO()
        write_po(po, catalog, omit_header=False, sort_output=True)
        write_mo(mo, catalog)
        replace_if_changed(folder / "messages.po", po.getvalue())
        replace_if_changed(folder / "messages.mo", mo.getvalue())
    print(f"Built catalogs: {len(zh)} strings translated, {len(missing)} missing.")
    return 0


def replace_if_changed(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` whole or not at all: a server, or a test process started beside this
    one (``make test`` runs one per core), reading the catalog never sees half of it."""
    if path.exists() and path.read_bytes() == content:
        return
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_bytes(content)
    os.replace(partial, path)


if __name__ == "__main__":
    raise SystemExit(main())
