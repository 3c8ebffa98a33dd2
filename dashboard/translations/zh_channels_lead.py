"""Chinese for the channel words on the delivery pages (issue 15)."""

ZH = {
    "asked: %(channel)s": "请求：%(channel)s",
    "Follower": "粉丝",
    "The Official Account template is no longer in the catalog.": "该公众号模板已不在模板库中。",
    "refused by the user (blocked the Official Account's messages)": "被用户拒收（已屏蔽公众号消息）",
}
