"""The browser fixtures of tests/browser (Debian's Chromium through Playwright; skipped without it).

Playwright's sync API allows one running instance per thread, and tests/browser holds its own for the
whole session, so the browser here lives only as long as this module: it is closed before tests/browser
(which runs after tests/audience) starts its own.
"""

import shutil
from pathlib import Path

import pytest

from tests.audience.conftest import people  # noqa: F401 - fixture
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, backend, live_server, page, screenshot_dir  # noqa: F401


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM}: browser tests skipped (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
