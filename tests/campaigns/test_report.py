"""A campaign's report: the outcome chart (server-rendered SVG, accessible), opens and the open rate, the
delivery log with its filters and pages, and its CSV, streamed in batches with a BOM and local times."""

from __future__ import annotations

import csv
import io
import re
import types

import sqlalchemy as sa
from sqlalchemy.orm import load_only

from dashboard.campaigns import report
from dashboard.deliveries.opens import record_open
from dashboard.extensions import db
from dashboard.models import Delivery
from dashboard.models.campaign import Campaign
from tests.campaigns.helpers import prepared_campaign
from tests.campaigns.test_progress import shape, started
from tests.conftest import base_config

HX = {"HX-Request": "true"}


def test_the_report_charts_outcomes_with_their_numbers_and_the_open_rate(
    app, client, auth, sandbox, template
):
    campaign_id = started(app, sandbox, template, page="pages/order/detail?id=7")
    ids = shape(app, campaign_id)
    with app.app_context():
        opened = db.session.execute(
            sa.select(Delivery.user_id, Delivery.open_token).where(Delivery.id.in_(ids[:3]))
        ).all()
        for user_id, token in opened:
            assert record_open(user_id, token)
        db.session.commit()
    auth.login("viewer")
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    chart = page[page.index('<figure class="chart" id="campaign-outcomes">') : page.index("</figure>")]
    assert (
        'role="img"' in chart and 'aria-labelledby="campaign-outcomes-title campaign-outcomes-desc"' in chart
    )
    assert '<title id="campaign-outcomes-title">发送结果（按错误类别和 errcode）</title>' in chart
    # Each bar: its words, and its number written next to it.
    for label, count in [
        ("已发送 sent", 4),
        ("内容不合规 (47003)", 2),
        ("无可发送次数", 1),
        ("次数保留给单条发送", 1),
        ("微信的应答丢失", 1),
    ]:
        assert f">{label}</text>" in chart, label
        assert f'data-count="{count}"' in chart
    assert "<script" not in chart and "http" not in chart.replace("http://www.w3.org/2000/svg", "")
    assert 'data-count="report-opens">3<' in page and 'data-count="open-rate">75.0%<' in page  # 3 of 4 sent


def test_the_log_filters_by_state_class_errcode_skip_reason_and_openid(app, client, auth, sandbox, template):
    campaign_id = started(app, sandbox, template)
    ids = shape(app, campaign_id)
    with app.app_context():
        openid = db.session.scalar(sa.select(Delivery.openid).where(Delivery.id == ids[4]))
    auth.login("viewer")
    url = f"/campaigns/{campaign_id}/deliveries"

    def listed(**args):
        html = client.get(url, query_string=args, headers=HX).get_data(as_text=True)
        assert "<html" not in html
        return {int(i) for i in re.findall(r"/deliveries/(\d+)\"", html)}, html

    assert listed(state="failed")[0] == set(ids[4:9])
    assert listed(**{"class": "content"})[0] == set(ids[4:6])
    assert listed(**{"class": "config"})[0] == {ids[7]}  # no errcode: the last attempt's class
    assert listed(errcode="-1")[0] == {ids[6], ids[13]}
    assert listed(skip="budget")[0] == {ids[10]}
    assert listed(openid=openid[3:12])[0] == {ids[4]}
    everything, html = listed()
    assert everything == set(ids)
    assert "内容不合规 (47003)" in html and "no_grant" not in html.replace('value="no_grant"', "")
    assert listed(state="nonsense", errcode="x" * 40)[0] == set(ids)  # a bad filter is ignored, never a 500
    # Without htmx the address is the campaign's page, filtered.
    plain = client.get(url, query_string={"state": "failed"})
    assert (
        plain.status_code == 302
        and f"/campaigns/{campaign_id}?state=failed#campaign-log" in plain.headers["Location"]
    )


def test_the_log_is_paged(app, client, auth, sandbox, template, monkeypatch):
    from dashboard.campaigns import views

    monkeypatch.setattr(views, "LOG_PAGE_SIZE", 5)
    campaign_id = started(app, sandbox, template)
    auth.login("viewer")
    first = client.get(f"/campaigns/{campaign_id}/deliveries", headers=HX).get_data(as_text=True)
    assert "1 / 3" in first and "page=2" in first
    third = client.get(f"/campaigns/{campaign_id}/deliveries?page=3", headers=HX).get_data(as_text=True)
    assert "3 / 3" in third and third.count('class="badge state-') == 4


def test_the_csv_has_a_bom_local_times_and_the_same_filters(app, client, auth, sandbox, template):
    campaign_id = started(app, sandbox, template)
    ids = shape(app, campaign_id)
    auth.login("viewer")
    response = client.get(f"/campaigns/{campaign_id}/deliveries.csv?state=failed")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")
    table = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert [int(r["delivery_id"]) for r in table] == ids[4:9]
    assert [r["error_class"] for r in table] == ["content", "content", "transient", "config", "no_grant"]
    assert table[0]["errcode"] == "47003"
    assert all(r["created_at"].endswith("+08:00") for r in table)  # Asia/Shanghai, with its offset


def test_the_csv_streams_in_batches_without_holding_every_row(
    app, client, auth, sandbox, template, monkeypatch
):
    campaign_id = started(app, sandbox, template, 30)
    monkeypatch.setattr(report, "CSV_BATCH", 4)
    original = report.csv_rows
    monkeypatch.setattr(report, "csv_rows", lambda cid, criteria: original(cid, criteria, batch=4))
    queries = []

    def count(conn, cursor, statement, *args):
        if "FROM delivery" in statement and "LIMIT" in statement:
            queries.append(statement)

    auth.login("viewer")
    with app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        response = client.get(f"/campaigns/{campaign_id}/deliveries.csv")
        assert response.is_streamed
        assert isinstance(response.response, types.GeneratorType) or not isinstance(response.response, list)
        chunks = response.response
        iterator = iter(chunks)
        header = next(iterator)
        first = next(iterator)
        # After the first batch only one batch query ran: the rest is not fetched yet.
        assert len(queries) == 1
        assert (header if isinstance(header, bytes) else header.encode()).startswith(b"\xef\xbb\xbf")
        assert (first if isinstance(first, str) else first.decode()).count("\n") == 4
        rest = list(iterator)
        assert len(queries) == 30 // 4 + 2  # 8 batches of at most 4, then the empty one that ends it
        assert sum((c if isinstance(c, str) else c.decode()).count("\n") for c in rest) == 26
    finally:
        with app.app_context():
            sa.event.remove(db.engine, "before_cursor_execute", count)


def test_a_draft_has_no_report_and_the_log_of_an_unknown_campaign_is_404(
    app, client, auth, sandbox, template
):
    campaign_id, _ = prepared_campaign(app, sandbox, template, 2)
    auth.login("viewer")
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "campaign-report" not in page and "campaign-log" not in page
    assert client.get("/campaigns/999999/deliveries").status_code == 404
    assert client.get("/campaigns/999999/deliveries.csv").status_code == 404


def test_the_migration_reads_old_sentences_back_into_codes_and_writes_them_out_again(tmp_path):
    from dashboard import create_app

    url = f"sqlite:///{tmp_path / 'old.db'}"
    app = create_app(base_config(url, tmp_path))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade", "0015"]).exit_code == 0
    sentences = [
        "",
        "Paused by an operator.",
        "WeChat's daily sending quota is used up (45009).",
        "30 of 55 sends failed, more than the 20% allowed.",
    ]
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for n, sentence in enumerate(sentences):
            connection.execute(
                sa.text(
                    "INSERT INTO campaign (name, template_id, data, miniprogram_state, lang, state, pause_reason,"
                    " timezone, rate_tokens, recipients, created_at, updated_at) VALUES (:name, 't', '{}', 'formal',"
                    " 'zh_CN', 'paused', :reason, 'Asia/Shanghai', 0, 0, '2026-12-01 00:00:00', '2026-12-01 00:00:00')"
                ),
                {"name": f"c{n}", "reason": sentence},
            )
    assert runner.invoke(args=["db", "upgrade", "0016"]).exit_code == 0
    with app.app_context():
        found = {
            c.name: (c.hold_code, c.hold_args, c.pause_reason)
            # Only the columns 0016 has: later revisions add columns the full entity would select.
            for c in db.session.scalars(
                sa.select(Campaign).options(load_only(Campaign.name, Campaign.hold_code, Campaign.hold_args))
            )
        }
    assert found["c0"] == ("", {}, "")
    assert found["c1"] == ("operator", {}, sentences[1])
    assert found["c2"] == ("quota", {}, sentences[2])
    assert found["c3"] == ("failure_rate", {"failed": 30, "answered": 55, "threshold": 20}, sentences[3])
    with app.app_context():
        db.engine.dispose()
    assert runner.invoke(args=["db", "downgrade", "0015"]).exit_code == 0
    with engine.connect() as connection:
        assert [
            r[0] for r in connection.execute(sa.text("SELECT pause_reason FROM campaign ORDER BY id"))
        ] == sentences
    engine.dispose()


def test_bad_filters_on_the_log_and_the_csv_are_never_a_5xx(app, client, auth, sandbox, template):
    campaign_id = started(app, sandbox, template, 3)
    auth.login("marketer")
    bad = [
        {"page": "2147483648"},
        {"page": "-3"},
        {"errcode": "9" * 30},
        {"openid": "%_\\"},
        {"class": "\x00"},
        {"openid": "a\x00"},
    ]
    for args in bad:
        for url in (f"/campaigns/{campaign_id}/deliveries", f"/campaigns/{campaign_id}/deliveries.csv"):
            response = client.get(url, query_string=args, headers=HX)
            assert response.status_code < 500, (url, args)
            response.get_data()
    assert client.post(f"/campaigns/{campaign_id}/retry-failed", data={"confirm": "\x00"}).status_code < 500
