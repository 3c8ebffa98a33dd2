"""Waiting for htmx in a browser test: a select that fetches new rows must be answered and swapped before
the rows are filled, or the swap replaces what the test typed (a race a loaded machine loses)."""

from __future__ import annotations


def settled(page) -> None:
    """Wait until htmx has swapped and settled what it asked for (no request, swap or settle in progress)."""
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")


def choose(page, select: str, value: str, answered_by: str) -> None:
    """Select ``value`` in ``select`` and wait for the htmx answer from the URL containing ``answered_by``
    to be swapped in."""
    with page.expect_response(lambda response: answered_by in response.url):
        page.select_option(select, value)
    settled(page)
