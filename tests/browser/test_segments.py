"""A marketer builds a segment in a real browser: the count follows the filter as it is typed (htmx), and
the editor fits a 390 px phone screen."""

from playwright.sync_api import expect

from tests.browser.test_pages import log_in
from tests.segments.conftest import people  # noqa: F401 - fixture


def widest(page) -> int:
    """The right edge of the page's content (``main``; the shared top bar is not the segments' to fix)."""
    return page.evaluate(
        "Math.max(...[...document.querySelectorAll('main, main *')].map(e => e.getBoundingClientRect().right))"
    )


def test_the_live_count_follows_typing_and_fits_a_phone(
    app,
    live_server,
    browser,
    personas,
    people,  # noqa: F811 - the fixture imported above
    screenshot_dir,
):
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        log_in(page, live_server, "mark@example.com", personas["marketer"].password)
        page.wait_for_url(f"{live_server}/")
        page.goto(f"{live_server}/segments/new")
        count = page.locator("#segment-count")
        expect(count).to_have_text(str(len(people)))
        page.fill("textarea[name=filter]", '{"tag": "vip"}')
        expect(count).to_have_text(str(sum("vip" in p.tags for p in people)))
        page.fill("textarea[name=filter]", '{"sparkle": 1}')
        expect(page.locator("#filter-problem")).to_contain_text("sparkle")
        page.fill("textarea[name=filter]", '{"all": [{"tag": "vip"}, {"has_unionid": true}]}')
        expect(count).to_have_text(str(sum("vip" in p.tags and bool(p.unionid) for p in people)))
        assert widest(page) <= 390
        page.screenshot(path=str(screenshot_dir / "segment-editor-390.png"), full_page=True)
        page.fill("input[name=name]", "VIP with unionid")
        page.click("button[value=save]")
        page.wait_for_url(f"{live_server}/segments/*")
        expect(page.locator("#segment-count")).to_have_text(
            str(sum("vip" in p.tags and bool(p.unionid) for p in people))
        )
        assert widest(page) <= 390
        page.screenshot(path=str(screenshot_dir / "segment-390.png"), full_page=True)
        assert errors == []
    finally:
        context.close()
