"""The demo world: a small Chinese template library, a few private templates, and simulated users.

Seeded ids (openids, unionids, priTmplIds) are derived from APPID with a hash rather than drawn at random,
so a restarted sandbox has the same users and templates and a Tongzhi database filled against the previous
run still matches. Users created later through the API get random ids.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from . import oa
from .library import make_private, stable_template_id
from .state import LONG_TERM, ONE_TIME, PublicKeyword, PublicTitle, SandboxState, SimUser

CATEGORIES: list[tuple[int, str]] = [
    (100, "电商平台"),
    (200, "生活服务"),
    (300, "交通出行"),
    (400, "政务民生"),
]

K = PublicKeyword

TITLES: list[PublicTitle] = [
    PublicTitle(1001, "订单发货提醒", ONE_TIME, 100, [
        K(1, "订单编号", "character_string", "A20240101001"),
        K(2, "商品名称", "thing", "云南小粒咖啡豆 500g"),
        K(3, "物流状态", "phrase", "已发货"),
        K(4, "发货时间", "date", "2024年1月1日 12:00"),
        K(5, "快递公司", "thing", "顺丰速运"),
        K(6, "快递单号", "character_string", "SF1234567890"),
        K(7, "收货人", "name", "张三"),
        K(8, "联系电话", "phone_number", "138-0013-8000"),
    ]),
    PublicTitle(1002, "退款通知", ONE_TIME, 100, [
        K(1, "退款金额", "amount", "¥99.00"),
        K(2, "订单编号", "character_string", "A20240101001"),
        K(3, "退款原因", "thing", "商品缺货"),
        K(4, "退款时间", "time", "2024年1月2日 10:30"),
        K(5, "退款状态", "phrase", "已退款"),
        K(6, "退款方式", "thing", "原路退回"),
    ]),
    PublicTitle(1003, "活动开始提醒", ONE_TIME, 100, [
        K(1, "活动名称", "thing", "年货节限时抢购"),
        K(2, "开始时间", "time", "2024年1月20日 20:00"),
        K(3, "活动地点", "thing", "小程序首页"),
        K(4, "温馨提示", "thing", "名额有限，先到先得"),
        K(5, "活动价格", "amount", "9.90元"),
    ]),
    PublicTitle(1004, "支付成功通知", ONE_TIME, 100, [
        K(1, "支付金额", "amount", "￥128.00"),
        K(2, "商户名称", "thing", "通知小铺"),
        K(3, "支付时间", "date", "2024-01-01 12:00"),
        K(4, "交易单号", "character_string", "4200001234202401011234567890"),
        K(5, "支付方式", "phrase", "微信支付"),
    ]),
    PublicTitle(2001, "预约成功通知", ONE_TIME, 200, [
        K(1, "预约人", "name", "李四"),
        K(2, "预约时间", "time", "2024年1月5日 14:00~15:00"),
        K(3, "预约项目", "thing", "口腔检查"),
        K(4, "预约地点", "thing", "人民路门店"),
        K(5, "联系电话", "phone_number", "+86-0766-66888866"),
        K(6, "预约号", "number", "1024"),
        K(7, "备注", "thing", "请提前10分钟到店"),
    ]),
    PublicTitle(2002, "待办事项提醒", ONE_TIME, 200, [
        K(1, "事项名称", "thing", "提交季度报告"),
        K(2, "截止日期", "date", "2024年3月31日"),
        K(3, "事项类型", "enum_string", "工作", ["工作", "学习", "生活", "其他"]),
        K(4, "优先级", "letter", "A"),
        K(5, "提醒人", "name", "王五"),
    ]),
    PublicTitle(3001, "停车缴费提醒", LONG_TERM, 300, [
        K(1, "车牌号", "car_number", "粤A8Z888"),
        K(2, "停车场", "thing", "科技园地下停车场"),
        K(3, "入场时间", "time", "2024年1月1日 08:30"),
        K(4, "停车费用", "amount", "¥15.00"),
        K(5, "停车时长", "thing", "2小时30分钟"),
    ]),
    PublicTitle(3002, "违章处理通知", LONG_TERM, 300, [
        K(1, "车牌号", "car_number", "京B12345"),
        K(2, "违章时间", "date", "2024年1月3日 09:15"),
        K(3, "违章地点", "thing", "长安街与西单路口"),
        K(4, "扣分", "number", "3"),
        K(5, "罚款金额", "amount", "200元"),
        K(6, "处理状态", "enum_string", "待处理", ["待处理", "已处理", "已撤销"]),
        K(7, "标记", "symbol", "★"),
    ]),
    PublicTitle(4001, "会议提醒", LONG_TERM, 400, [
        K(1, "会议主题", "thing", "季度经营分析会"),
        K(2, "会议时间", "time", "2024年1月8日 09:30"),
        K(3, "会议地点", "thing", "三楼第一会议室"),
        K(4, "主持人", "name", "赵六"),
        K(5, "会议编号", "character_string", "MTG-2024-008"),
        K(6, "参会人数", "number", "25"),
    ]),
    PublicTitle(4002, "账单到期提醒", LONG_TERM, 400, [
        K(1, "账单名称", "thing", "2024年1月水费"),
        K(2, "账单金额", "amount", "¥56.30"),
        K(3, "到期日期", "date", "2024-02-15"),
        K(4, "户号", "character_string", "3301-0086-2231"),
        K(5, "缴费状态", "phrase", "待缴费"),
    ]),
    PublicTitle(4003, "课程开课提醒", ONE_TIME, 400, [
        K(1, "课程名称", "thing", "Python 数据分析入门"),
        K(2, "开课时间", "time", "19:30"),
        K(3, "授课老师", "name", "Lucy Wang"),
        K(4, "课程编号", "character_string", "PY101"),
        K(5, "上课地点", "thing", "线上直播"),
    ]),
]  # fmt: skip

# (tid, kidList) of the private templates every fresh sandbox starts with.
PRIVATE_SEEDS: list[tuple[int, list[int]]] = [
    (1001, [1, 2, 3, 4]),  # 订单发货提醒, one-time
    (2001, [1, 2, 3, 5]),  # 预约成功通知, one-time
    (1002, [1, 2, 3, 4]),  # 退款通知, one-time
    (2002, [1, 3, 2]),  # 待办事项提醒, one-time with enum_string3
    (4001, [1, 2, 3]),  # 会议提醒, long-term
    (3001, [1, 2, 3, 4]),  # 停车缴费提醒, long-term with car_number
]

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "磊",
    "洋",
    "艳",
    "勇",
    "军",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "霞",
    "平",
]


def _derived_id(prefix: str, appid: str, label: str) -> str:
    # Openid-shaped (28 characters, url-safe): stable across restarts for the same APPID.
    digest = hashlib.sha256(f"{appid}|{label}".encode()).digest()
    return prefix + base64.urlsafe_b64encode(digest).decode()[: 28 - len(prefix)]


def seeded_user(appid: str, index: int, now: float) -> SimUser:
    """The ``index``-th seeded user; every even index has a unionid (about half of them)."""
    nickname = _SURNAMES[index % len(_SURNAMES)] + _GIVEN[(index // len(_SURNAMES)) % len(_GIVEN)]
    return SimUser(
        openid=_derived_id("o", appid, f"user:{index}"),
        unionid=_derived_id("oU", appid, f"union:{index}") if index % 2 == 0 else None,
        nickname=f"{nickname}{index:03d}",
        created_at=now,
    )


def new_user(
    state: SandboxState, *, openid: str | None = None, unionid: bool | str = False, nickname: str = ""
) -> SimUser:
    """Create a simulated user with a random openid (or the given one). ``unionid=True`` mints one."""
    with state.lock:
        oid = openid or "o" + secrets.token_urlsafe(20)[:27]
        union = unionid if isinstance(unionid, str) and unionid else None
        if unionid is True:
            union = "oU" + secrets.token_urlsafe(20)[:26]
        user = SimUser(
            openid=oid,
            unionid=union,
            nickname=nickname or f"新用户{len(state.users) + 1:03d}",
            created_at=state.now(),
        )
        return state.add_user(user)


def populate(state: SandboxState) -> None:
    """Fill a cleared state: library + private templates (when SEED), USERS simulated users, and the
    linked Official Account (its templates and followers)."""
    cfg = state.config
    appid = cfg["APPID"]
    with state.lock:
        state.categories = list(CATEGORIES)
        state.titles = {t.tid: t for t in TITLES}
        if cfg.get("SEED", True):
            for tid, kids in PRIVATE_SEEDS:
                template = make_private(
                    state.titles[tid], kids, pri_tmpl_id=stable_template_id(appid, tid, kids)
                )
                state.private[template.pri_tmpl_id] = template
        now = state.now()
        for index in range(int(cfg.get("USERS", 0))):
            state.add_user(seeded_user(appid, index, now))
        # The linked Official Account: its templates and followers among these users.
        oa.populate(state)
