import pytest

from dashboard.extensions import db
from dashboard.models import WechatUser


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


@pytest.fixture
def make_user(ctx):
    def make(openid: str = "o_user_1") -> WechatUser:
        user = WechatUser(openid=openid, nickname="", tags=[], attributes={})
        db.session.add(user)
        db.session.commit()
        return user

    return make
