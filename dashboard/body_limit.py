"""A console request's body without a Content-Length (``Transfer-Encoding: chunked``) beyond
``MAX_CONTENT_LENGTH`` is a 413, as one with a Content-Length is.

Werkzeug stops reading such a body at the maximum without saying whether more was coming, so a form
cut off there would be parsed as if it were whole. Reading one byte past the limit tells the two apart.
The JSON APIs and WeChat's pushes read their bodies themselves, each with its own smaller limit.
"""

from __future__ import annotations

from flask import Flask, request
from werkzeug.exceptions import RequestEntityTooLarge

# The JSON APIs and WeChat's pushes read their bodies themselves, whatever the Content-Type says.
SELF_READ_BODY_PATHS = ("/api/", "/wechat/")


def refuse_oversized_stream() -> None:
    limit = request.max_content_length
    if limit is None or request.content_length is not None or request.path.startswith(SELF_READ_BODY_PATHS):
        return
    if "wsgi.input_terminated" not in request.environ:
        return  # no Content-Length and no terminated stream: Werkzeug reads no body at all
    request.max_content_length = limit + 1
    # Cached: the form is parsed from these bytes afterwards.
    if len(request.get_data(cache=True)) > limit:
        raise RequestEntityTooLarge()
    request.max_content_length = limit


def init_app(app: Flask) -> None:
    app.before_request(refuse_oversized_stream)
