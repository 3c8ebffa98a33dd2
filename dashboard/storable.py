"""Input no database column can hold is refused at the door, before any view or query sees it.

PostgreSQL refuses a NUL character in text and an integer at or above 2^31 in an ``integer`` column;
either used to reach a query and come back as a 500. So, once for the whole app:

- ``<int:...>`` in every route only matches ids the database's integer can hold, and text in URL paths
  never holds a NUL: anything else is no address at all (404);
- a NUL in a query string or a console form is a 400 (JSON under ``/api/``), as is a page number beyond
  the integer range (Flask-SQLAlchemy reads ``page`` and ``per_page`` from any request);
- views that read a number from the query string use ``db_int`` so the same bound applies.

JSON bodies are parsed with ``loads_storable`` (both APIs, WeChat's pushes): NUL and lone surrogates are
refused there too, with nesting deeper than any body of ours and the non-JSON NaN and Infinity.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Flask, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter, PathConverter, UnicodeConverter

from .body_limit import SELF_READ_BODY_PATHS

# PostgreSQL's ``integer``; SQLite's are wider, but the schema is the same on both.
DB_INT_MIN = -(2**31)
DB_INT_MAX = 2**31 - 1
# A NUL, or half of a UTF-16 surrogate pair: neither can be stored as text (nor encoded as UTF-8).
UNSTORABLE_CHARACTER = re.compile("[\x00\ud800-\udfff]")
PAGINATION_ARGS = ("page", "per_page")
# Our bodies (and WeChat's pushes) are at most four levels deep; a little room, and nothing a parser or a
# walk chokes on.
MAX_JSON_DEPTH = 32


def is_storable(text: str) -> bool:
    return UNSTORABLE_CHARACTER.search(text) is None


def db_int(raw: str) -> int:
    """``int`` for a number a database integer can hold; use as ``request.args.get(name, type=db_int)``.

    :raise ValueError: not an integer, or out of range (``args.get`` then answers its default).
    """
    value = int(raw)
    if not DB_INT_MIN <= value <= DB_INT_MAX:
        raise ValueError(f"{raw!r} is beyond the database's integer range")
    return value


class UnstorableJson(ValueError):
    """JSON no view should walk or store; ``str(error)`` says why in a sentence fit for a client."""


def loads_storable(raw: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads``, refusing what it accepts but nothing downstream can hold.

    :raise UnstorableJson: not JSON (nor UTF-8), NaN or Infinity, nested deeper than ``max_depth``, or a
        string or key holding a NUL or a lone surrogate.
    """
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise UnstorableJson("The body is not valid JSON (UTF-8).") from None
    # Iterative, so the walk itself cannot run out of stack however the body is shaped.
    pending = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > max_depth:
            raise UnstorableJson(f"The body is nested deeper than {max_depth} levels.")
        if isinstance(node, dict):
            texts, children = list(node), list(node.values())
        elif isinstance(node, list):
            texts, children = [], node
        elif isinstance(node, str):
            texts, children = [node], []
        else:
            continue
        if not all(is_storable(text) for text in texts):
            raise UnstorableJson("The body holds a NUL character or a lone surrogate, which text cannot.")
        pending.extend((child, depth + 1) for child in children)
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class DatabaseIdConverter(IntegerConverter):
    """``<int:...>``: an id the database's integer can hold; a larger one matches no route (404)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", DB_INT_MAX)
        super().__init__(map, *args, **kwargs)


class StorableTextConverter(UnicodeConverter):
    """``<name>`` / ``<string:name>``: one path segment without a NUL."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, *args, **kwargs)
        self.regex = self.regex.replace("[^/]", "[^/\\x00]", 1)


class StorablePathConverter(PathConverter):
    """``<path:name>``: any path without a NUL."""

    regex = "[^\\x00]*?"


class UnstorableInput(BadRequest):
    """A query string or form holds something no column can hold."""

    description = "unstorable"  # the error page's key for its sentence (templates/errors/_inline.html)
    api_message = "The request contains a NUL character or a number too large to store."


def _has_unstorable(values: MultiDict) -> bool:
    return any(not is_storable(key) or not is_storable(value) for key, value in values.items(multi=True))


def refuse_unstorable_input() -> None:
    if _has_unstorable(request.args):
        raise UnstorableInput()
    for name in PAGINATION_ARGS:
        raw = request.args.get(name)
        if raw is not None and raw.strip().lstrip("+-").isdigit():
            try:
                db_int(raw)
            except ValueError:
                raise UnstorableInput() from None
    # The console's forms. The JSON APIs and WeChat's pushes read their bodies themselves, whatever the
    # Content-Type says (and check them there): parsing those as a form would swallow them.
    if request.path.startswith(SELF_READ_BODY_PATHS):
        return
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        if _has_unstorable(request.form):
            raise UnstorableInput()


def register_converters(app: Flask) -> None:
    """Before any blueprint is registered: a rule binds its converters when it is added."""
    app.url_map.converters.update(
        int=DatabaseIdConverter,
        default=StorableTextConverter,
        string=StorableTextConverter,
        path=StorablePathConverter,
    )


def init_app(app: Flask) -> None:
    app.before_request(refuse_unstorable_input)
