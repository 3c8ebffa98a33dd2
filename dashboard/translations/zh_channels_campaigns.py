"""Chinese strings of campaigns and date reminders choosing a channel (issue 15 point 4): the compose
and reminder forms' channel choice and Official Account values, the reach per channel, the report's
sends by channel and the holds of a campaign that sends through the Official Account."""

ZH = {
    # The channel choice (campaigns.forms.CHANNEL_CHOICES)
    "Channel": "渠道",
    "Subscribe message (mini-program)": "订阅消息（小程序）",
    "Official Account template message": "公众号模板消息",
    "Subscribe message, else Official Account": "订阅消息，否则公众号",
    "Official Account template": "公众号模板",
    "Choose the Official Account template.": "请选择公众号模板。",
    "A subscribe message spends one of the user's subscribe credits; an Official Account template message needs none but reaches only users who follow the Official Account. With “else”, each user gets the subscribe message when they hold a credit, else the Official Account's message when they follow, else nothing.": "订阅消息会消耗用户的一次订阅次数；公众号模板消息无需次数，但只能发给关注了公众号的用户。选择“否则”时，用户有订阅次数就发订阅消息，否则若关注了公众号就发公众号消息，两者都不满足则不发送。",
    "Channel: subscribe message. The Official Account channel is off, so only the subscribe message can be sent (set WECHAT_OA_APPID and WECHAT_OA_SECRET to send through the Official Account too).": "渠道：订阅消息。公众号渠道未开启，只能发送订阅消息（设置 WECHAT_OA_APPID 和 WECHAT_OA_SECRET 后也可通过公众号发送）。",
    "This sends through the Official Account, whose channel is off: it cannot be launched until WECHAT_OA_APPID and WECHAT_OA_SECRET are set.": "此项通过公众号发送，但公众号渠道未开启：设置 WECHAT_OA_APPID 和 WECHAT_OA_SECRET 之前无法启动。",
    "No Official Account template can be used: sync them in Templates → Official Account first.": "没有可用的公众号模板：请先在“模板 → 公众号”中同步。",
    "Used when the reminder's channel sends through the Official Account.": "提醒的渠道通过公众号发送时使用。",
    # The Official Account values
    "Official Account values": "公众号消息内容",
    "Checked by the Official Account's rules (they differ from the subscribe message's); a user whose value breaks one is skipped.": "按公众号的规则检查（与订阅消息的规则不同）；值不符合规则的用户将被跳过。",
    "Leave empty": "留空",
    "The Official Account's card": "公众号消息卡片",
    # The service's refusals, in words (compose_views.error_words)
    "The Official Account channel is off: only the subscribe message can be sent.": "公众号渠道未开启：只能发送订阅消息。",
    "This Official Account template is not in the catalog: sync the templates.": "此公众号模板不在模板库中：请同步模板。",
    "The Official Account template cannot be used now: it is removed or changed in WeChat (review it in Templates → Official Account).": "此公众号模板现在无法使用：它已在微信中被删除或修改（请在“模板 → 公众号”中查看）。",
    # Reach per channel (the compose page's sample card)
    "In the segment now": "当前分群人数",
    "hold a subscribe credit": "有订阅次数",
    "follow the Official Account": "关注了公众号",
    "either (subscribe message, else Official Account)": "任一渠道（订阅消息，否则公众号）",
    # The report
    "Sent via subscribe message": "经订阅消息发送",
    "Sent via Official Account": "经公众号发送",
    # Holds (models.campaign.HOLD_REASONS)
    "Waiting: the Official Account channel is off.": "等待中：公众号渠道未开启。",
    "Waiting: the Official Account template cannot be used now (%(why)s).": "等待中：公众号模板现在无法使用（%(why)s）。",
}
