"""The Users area: search, a user's page, the funnel, and the CSV import (marketers import, viewers read)."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models import AuditEvent, WechatUser
from tests.audience.conftest import T_ORDER, T_REFUND


def text(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


@pytest.mark.parametrize(
    "q,found",
    [
        ("", {"oMing", "oHong", "oQuiet"}),
        ("oMing0000000000000000000001", {"oMing"}),
        ("oHong", {"oHong"}),
        ("uMing00000000000000000001", {"oMing"}),
        ("city=上海", {"oMing"}),
        ("city=Beijing", {"oHong"}),
        ("level=3", {"oMing"}),
        ("上海", {"oMing"}),
        ("beijing", {"oHong"}),
        ("vip", {"oMing"}),
        ("小明", {"oMing"}),
        ("100%_", set()),
    ],
)
def test_search_by_openid_unionid_nickname_tag_or_attribute(client, auth, people, q, found):
    auth.login("viewer")
    page = text(client.get("/users", query_string={"q": q}))
    assert {name for name in ("oMing", "oHong", "oQuiet") if name in page} == found


def test_the_search_answers_htmx_with_the_table_only(client, auth, people):
    auth.login("viewer")
    fragment = client.get("/users", query_string={"q": "oHong"}, headers={"HX-Request": "true"})
    body = text(fragment)
    assert "<html" not in body and 'id="users-table"' in body and "oHong" in body
    assert "HX-Request" in fragment.headers["Vary"]


def test_a_users_page_shows_balances_timeline_settings_and_deliveries(client, auth, people):
    auth.login("viewer")
    page = text(client.get(f"/users/{people['ming']}"))
    balances = page[page.index('id="balances-table"') : page.index('id="timeline-table"')]
    assert T_ORDER in balances and T_REFUND in balances
    assert "<strong>1</strong>" in balances  # two accepted prompts (one reported twice) minus one send
    assert "未知模板" in balances  # neither template is in the catalog
    timeline = page[page.index('id="timeline-table"') : page.index('id="deliveries-table"')]
    for label in ("小程序上报", "弹窗事件", "发送结果", "允许", "拒绝", "被封禁", "已用于发送"):
        assert label in timeline, label
    assert "同一次弹窗" in timeline  # the popup event paired with the client report
    settings = page[page.index('id="user-settings"') :]
    assert "总开关" in settings and "开" in settings
    deliveries = page[page.index('id="deliveries-table"') :]
    assert "1864323726461255680" in deliveries and "sent" in deliveries
    assert "上海" in page and "vip" in page and "uMing00000000000000000001" in page


def test_an_empty_users_page_says_so(client, auth, people):
    auth.login("viewer")
    page = text(client.get(f"/users/{people['quiet']}"))
    assert "尚未回应过任何订阅弹窗" in page and "尚未向此用户发送过消息" in page and "尚未上报" in page
    assert client.get("/users/999999").status_code == 404


def test_the_timeline_pages_back_with_htmx(app, client, auth, people):
    from dashboard.grants.services import record_answers

    with app.app_context():
        for _ in range(60):
            record_answers(people["hong"], [(T_REFUND, "reject")], source="client")
        db.session.commit()
    auth.login("viewer")
    page = text(client.get(f"/users/{people['hong']}"))
    assert "显示更早的记录" in page
    before = page.split("before=")[1].split('"')[0]
    more = text(
        client.get(f"/users/{people['hong']}/timeline?before={before}", headers={"HX-Request": "true"})
    )
    assert "<html" not in more and more.count("<tr") == 11  # the remaining 11 events (61 in all)
    assert client.get(f"/users/{people['hong']}/timeline").status_code == 302  # no htmx: the page


def test_the_funnel_counts_each_prompt_once(app, client, auth, people):
    from dashboard.grants.services import funnel

    with app.app_context():
        rows = {row.template_id: row for row in funnel()}
    order, refund = rows[T_ORDER], rows[T_REFUND]
    # ming answered twice (the first prompt reported by the client and by its popup event), hong once
    assert (order.answered, order.accept, order.filter, order.credited, order.spent, order.live_users) == (
        3,
        2,
        1,
        2,
        1,
        1,
    )
    assert (refund.answered, refund.reject, refund.ban, refund.credited) == (2, 1, 1, 0)
    auth.login("viewer")
    page = text(client.get("/users/funnel", query_string={"days": "all"}))
    cells = page[page.index(T_ORDER) :].split("</tr>")[0].split("<td>")
    assert cells[2].startswith("<strong>3</strong>") and cells[3].startswith("2 ") and "67%" in cells[3]
    fragment = client.get(
        "/users/funnel", query_string={"days": "7", "template": T_REFUND}, headers={"HX-Request": "true"}
    )
    assert T_REFUND in text(fragment) and T_ORDER not in text(fragment) and "<html" not in text(fragment)


def csv_upload(client, content: bytes, name="users.csv"):
    return client.post(
        "/users/import", data={"file": (io.BytesIO(content), name)}, content_type="multipart/form-data"
    )


def test_a_marketer_imports_attributes_and_the_audit_log_says_so(app, client, auth, people):
    auth.login("marketer")
    content = (
        "\ufeffopenid,nickname,tags,city,会员等级\n"
        "oMing0000000000000000000001,,vip;金卡,杭州,\n"
        "oNew00000000000000000000009,新用户,,深圳,2\n"
    ).encode()
    response = csv_upload(client, content)
    assert response.status_code == 200 and "已导入 2 行" in text(response)
    with app.app_context():
        ming = db.session.get(WechatUser, people["ming"])
        assert ming.nickname == "小明"  # empty cell: unchanged
        assert ming.tags == ["vip", "金卡"]
        assert ming.attributes == {"city": "杭州", "level": "3"}
        new = db.session.scalar(select(WechatUser).where(WechatUser.openid == "oNew00000000000000000000009"))
        assert new.nickname == "新用户" and new.attributes == {"city": "深圳", "会员等级": "2"}
        audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "users.imported")).one()
        assert audit.detail == {"filename": "users.csv", "rows": 2, "created": 1, "updated": 1}
        assert audit.actor_email == "mark@example.com"


@pytest.mark.parametrize(
    "content,expected",
    [
        (b"nickname,city\nx,y\n", "必须有 openid 列"),
        (b"openid,city,city\noA,1,2\n", "此列出现了两次"),
        (b"openid,unionid\noA,uB\n", "来自微信"),
        (b"openid,city\n", "只有表头"),
        (b"", "文件是空的"),
        (b"openid,city\noA,\xff\xfe\n", "不是 UTF-8"),
        (b'openid,city\noA,"unterminated\n', "CSV 格式有误"),
        (b"openid,city\noA,x\noA,y\n", "已在第 2 行出现"),
        (b"openid,city\noA,x,extra\n", "应有 2 个字段"),
        (b"openid,city\nbad openid!,x\n", "不是 openid"),
        ("openid,nickname\noA,{}\n".format("长" * 65).encode(), "超过 64 个字符"),
        (b"openid,tags\noA," + b";".join(b"t%d" % i for i in range(21)) + b"\n", "超过 20 个标签"),
    ],
)
def test_a_malformed_file_imports_nothing_and_lists_its_problems(
    app, client, auth, people, content, expected
):
    auth.login("marketer")
    response = csv_upload(client, content)
    page = text(response)
    assert "未导入任何内容" in page and expected in page, page[page.find("import-errors") :][:1500]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(WechatUser)) == 3
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_one_bad_row_among_good_ones_imports_none_of_them(app, client, auth, people):
    auth.login("marketer")
    content = b"openid,city\noGood0000000000000000000001,x\noGood0000000000000000000002,y\nbad!,z\n"
    page = text(csv_upload(client, content))
    assert "<td>4</td>" in page and "不是 openid" in page  # line 4 of the file
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(WechatUser)) == 3


def test_viewers_read_but_cannot_import(client, auth, people):
    auth.login("viewer")
    assert client.get("/users/import").status_code == 403
    assert csv_upload(client, b"openid\noA\n").status_code == 403
    page = text(client.get("/users"))
    assert "导入属性" not in page
    auth.login("marketer")
    assert "导入属性" in text(client.get("/users"))
    assert client.get("/users/import").status_code == 200


def test_the_users_area_lights_up_in_the_navigation(client, auth):
    auth.login("viewer")
    page = text(client.get("/users"))
    assert '<a href="/users" aria-current="page">用户</a>' in page


def test_the_home_page_counts_users_with_live_grants(client, auth, people):
    auth.login("viewer")
    page = text(client.get("/"))
    tile = page[page.index('id="tile-live-grants"') :].split("</section>")[0]
    assert '<p class="figure">1</p>' in tile  # ming holds a credit; hong's filter granted nothing
    assert T_ORDER[:12] in tile and "1 个用户" in tile
