"""Chinese strings of issue 15's reach per channel (segment page), the daily follower sync and the
Channels page's rows on what sends through each channel."""

ZH = {
    # the segment page: reach per channel
    "Reach per channel": "各渠道可触达",
    "by subscribe message: they hold a credit for this template": "通过订阅消息：持有该模板的可发送次数",
    "by Official Account template message: they follow the Official Account": "通过公众号模板消息：关注了公众号",
    "by subscribe message, else Official Account: either of the two (a credit is used first)": "订阅消息优先，否则公众号：两者有其一即可（优先使用订阅次数）",
    "Of %(segment)d users in the segment.": "分群共 %(segment)d 人。",
    # Settings → Channels: what sends through each channel, the fallback, the daily sync
    "Used by campaigns, date reminders, the send API (POST /api/v1/messages) and test sends: the default channel, and the first choice of the fallback.": "活动、日期提醒、发送 API（POST /api/v1/messages）和测试发送都使用它：这是默认渠道，也是兜底发送的首选。",
    "Used by campaigns, date reminders, the send API and test sends that choose the Official Account or the fallback; a user who does not follow is skipped (WeChat would answer 43004).": "选择公众号渠道或兜底发送的活动、日期提醒、发送 API 和测试发送使用它；未关注公众号的用户会被跳过（否则微信会返回 43004）。",
    "The fallback, “subscribe message, else Official Account”, spends a subscribe credit when the user holds one, otherwise sends the Official Account template message when they follow it, otherwise skips them (no credit, and does not follow).": "兜底发送“订阅消息，否则公众号”：用户有订阅次数时使用一次订阅消息；没有次数但关注了公众号时发送公众号模板消息；两者都没有则跳过（没有次数，也未关注）。",
    "The worker runs the sync every day at %(time)s (%(zone)s).": "后台进程每天 %(time)s（%(zone)s）自动同步一次。",
    "The worker's daily sync is off (OA_FOLLOWER_SYNC_AT=off).": "后台进程的每日同步已关闭（OA_FOLLOWER_SYNC_AT=off）。",
}
