"""The one place that reads htmx's request headers.

A URL that answers htmx with a fragment and a browser with a full page must say so in ``Vary``,
and a history-restore request (back button, cache miss) must get the full page again.
"""

from __future__ import annotations

from typing import Any

from flask import Response, make_response, render_template, request


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true" and not request.headers.get(
        "HX-History-Restore-Request"
    )


def render_page_or_fragment(page_template: str, fragment_template: str, **context: Any) -> Response:
    """Render the fragment for htmx requests and the page (which includes it) otherwise."""
    response = make_response(render_template(fragment_template if is_htmx() else page_template, **context))
    response.headers.add("Vary", "HX-Request")
    return response
