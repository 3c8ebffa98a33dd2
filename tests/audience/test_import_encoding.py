"""The users CSV import: files as Excel saves them (GBK/GB18030), its size limit and example file,
50,000 rows with a progress display, and nothing written unless every row is good."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from dashboard.audience import services
from dashboard.extensions import db
from dashboard.models import AuditEvent, WechatUser


def upload(client, content: bytes, name="users.csv"):
    # The body built here in memory: the test client spools a large one to a temporary file it leaves
    # open when the answer comes before the body is read (a 413).
    boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(content), name)})
    return client.post("/users/import", data=body, content_type=f"multipart/form-data; boundary={boundary}")


def user_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(WechatUser))


def by_openid(app, openid: str) -> WechatUser:
    with app.app_context():
        return db.session.scalar(select(WechatUser).where(WechatUser.openid == openid))


def big_file(rows: int) -> bytes:
    lines = ["openid,nickname,tags,城市,会员等级"]
    lines += [f"o{n:027d},用户{n},vip;北京,杭州,{n % 5}" for n in range(rows)]
    return ("\r\n".join(lines) + "\r\n").encode()


def test_a_gbk_file_as_excel_saves_it_imports(app, client, auth, people):
    auth.login("marketer")
    content = (
        "openid,nickname,tags,城市,会员等级\r\n"
        "oMing0000000000000000000001,小明同学,老客;金卡,杭州,5\r\n"
        "oGbk000000000000000000000001,王小二,新客,深圳,1\r\n"
    ).encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        content.decode("utf-8")
    page = upload(client, content).get_data(as_text=True)
    assert "已导入 2 行：新增 1 个用户，更新 1 个" in page, page[-2000:]
    assert "已按 GBK/GB18030 编码读取" in page
    ming = by_openid(app, "oMing0000000000000000000001")
    assert ming.nickname == "小明同学" and ming.tags == ["老客", "金卡"]
    assert ming.attributes == {"city": "上海", "level": "3", "城市": "杭州", "会员等级": "5"}
    new = by_openid(app, "oGbk000000000000000000000001")
    assert (
        new.nickname == "王小二"
        and new.tags == ["新客"]
        and new.attributes == {"城市": "深圳", "会员等级": "1"}
    )


def test_gb18030_characters_outside_gbk_are_read_too():
    content = "openid,nickname\r\noA,㐀𠀀\r\n".encode("gb18030")
    plan = services.parse_import(content)
    assert plan.ok and plan.encoding == "gb18030" and plan.rows[0].nickname == "㐀𠀀"


def test_utf8_is_read_as_utf8_with_or_without_a_byte_order_mark():
    for content in ("openid,nickname\noA,小明\n".encode(), "openid,nickname\noA,小明\n".encode("utf-8-sig")):
        plan = services.parse_import(content)
        assert plan.ok and plan.encoding == "utf-8" and plan.rows[0].nickname == "小明"


def test_the_page_states_the_limit_and_offers_an_example_file(app, client, auth, people):
    auth.login("marketer")
    page = client.get("/users/import").get_data(as_text=True)
    assert "每个文件最大 10 MB、最多 50,000 行" in page
    assert 'href="/users/import/template.csv"' in page
    example = client.get("/users/import/template.csv")
    assert example.status_code == 200 and example.mimetype == "text/csv"
    assert "attachment" in example.headers["Content-Disposition"]
    raw = example.get_data()
    assert raw.startswith(b"\xef\xbb\xbf") and "城市,会员等级" in raw.decode("utf-8-sig")
    # The example imports as it is, and as Excel saves it again in GBK.
    for content in (raw, raw.decode("utf-8-sig").encode("gbk")):
        plan = services.parse_import(content)
        assert plan.ok and plan.columns == ["openid", "nickname", "tags", "城市", "会员等级"]
    # (The import is written as its progress page is sent: read the page.)
    assert "已导入 2 行" in upload(client, raw.decode("utf-8-sig").encode("gbk")).get_data(as_text=True)
    assert by_openid(app, "o6_bmjrPTlm6_2sgVt7hMZOPfL2M").attributes == {"城市": "北京", "会员等级": "3"}
    auth.login("viewer")
    assert client.get("/users/import/template.csv").status_code == 403


def test_a_file_over_the_limit_is_refused_with_the_limit_named(app, client, auth, people, monkeypatch):
    monkeypatch.setattr(services, "MAX_IMPORT_BYTES", 64 * 1024)
    auth.login("marketer")
    response = upload(client, big_file(2_000))
    assert response.status_code == 413
    assert "文件超过 64 KB" in response.get_data(as_text=True)
    assert user_count(app) == 3


def test_a_file_over_the_real_limit_says_ten_megabytes(app, client, auth, people):
    auth.login("marketer")
    response = upload(client, b"openid\n" + b"o" * (services.MAX_IMPORT_BYTES + 1))
    assert response.status_code == 413 and "文件超过 10 MB" in response.get_data(as_text=True)
    assert user_count(app) == 3


def test_fifty_thousand_rows_import_with_a_progress_display(app, client, auth):
    """3 MB, over the console's 2 MB request limit: the import's own limit applies. A few seconds."""
    auth.login("marketer")
    content = big_file(50_000)
    assert len(content) > 3_000_000
    response = upload(client, content)
    assert response.status_code == 200 and response.is_streamed
    # The page goes out as the batches are written: the first step arrives while nothing is committed.
    page, checked = "", False
    for chunk in response.response:
        page += chunk.decode()
        if not checked and 'value="1000"' in page:
            checked = True
            assert "已导入" not in page and user_count(app) == 0
    assert "已导入 50000 行：新增 50000 个用户，更新 0 个" in page, page[-1500:]
    steps = re.findall(r'<progress max="50000" value="(\d+)">', page)
    assert steps[0] == "0" and steps[-1] == "50000" and len(steps) == 51
    assert user_count(app) == 50_000
    user = by_openid(app, f"o{49_999:027d}")
    assert user.nickname == "用户49999" and user.attributes == {"城市": "杭州", "会员等级": "4"}
    with app.app_context():
        audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "users.imported")).one()
        assert audit.detail["rows"] == 50_000


def test_a_bad_row_late_in_a_large_file_imports_nothing(app, client, auth, people):
    auth.login("marketer")
    lines = big_file(5_000).decode().split("\r\n")
    lines[4_321] = "not an openid!,x,,y,1"
    page = upload(client, "\r\n".join(lines).encode()).get_data(as_text=True)
    assert "未导入任何内容" in page and "<td>4322</td>" in page
    assert user_count(app) == 3


def test_a_failure_while_writing_leaves_nothing_written(app, client, auth, people, monkeypatch):
    real = services.import_batches

    def failing_after_two_batches(plan, batch_size=services.IMPORT_BATCH_SIZE):
        for number, progress in enumerate(real(plan, batch_size), start=1):
            yield progress
            if number == 2:
                raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "import_batches", failing_after_two_batches)
    auth.login("marketer")
    page = upload(client, big_file(3_500)).get_data(as_text=True)
    assert "写入时导入失败，未导入任何内容" in page
    assert user_count(app) == 3
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_existing_users_keep_what_an_empty_cell_leaves(app, client, auth, people):
    auth.login("marketer")
    content = "openid,nickname,tags,city\r\noMing0000000000000000000001,,,南京\r\noHong0000000000000000000002,Hong2,a|b,\r\n"
    assert "已导入 2 行" in upload(client, content.encode("gbk")).get_data(as_text=True)
    ming = by_openid(app, "oMing0000000000000000000001")
    assert ming.nickname == "小明" and ming.tags == ["vip", "北京"] and ming.attributes["city"] == "南京"
    hong = by_openid(app, "oHong0000000000000000000002")
    assert hong.nickname == "Hong2" and hong.tags == ["a", "b"] and hong.attributes == {"city": "Beijing"}
