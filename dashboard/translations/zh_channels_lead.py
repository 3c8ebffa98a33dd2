"""Chinese for the channel words on the delivery pages (issue 15)."""

ZH = {
    "Else, to a follower, through the Official Account": "否则通过公众号发给粉丝",
    "No subscription at WeChat (43101): going through the Official Account": "微信答复无订阅（43101）：改由公众号发送",
    "asked: %(channel)s": "请求：%(channel)s",
    "Follower": "粉丝",
    "The Official Account template is no longer in the catalog.": "该公众号模板已不在模板库中。",
    "refused by the user (blocked the Official Account's messages)": "被用户拒收（已屏蔽公众号消息）",
    # A date reminder's forecast on a channel that uses the Official Account.
    "Due: %(due)s · follow the Official Account now: %(live)s · do not follow: %(again)s": "到期：%(due)s · 现关注公众号：%(live)s · 未关注：%(again)s",
    "Follow now": "现已关注",
    "Do not follow": "未关注",
    "Due: %(due)s · reachable now (a credit, else the Official Account): %(live)s · neither a credit nor a follow: %(again)s · refuse in their settings: %(blocked)s": "到期：%(due)s · 现可触达（有订阅次数，否则公众号）：%(live)s · 既无订阅次数也未关注：%(again)s · 在设置中拒收：%(blocked)s",
    "Reachable now": "现可触达",
    "Neither credit nor follow": "既无次数也未关注",
}
