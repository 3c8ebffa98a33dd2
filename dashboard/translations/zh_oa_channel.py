"""Chinese strings of the Official Account channel (issue 15): the Channels page, the Official Account
check, and a user's follower tile."""

ZH = {
    # Settings → Channels
    "Channels": "消息渠道",
    "Every way a mini-program can reach its users, which of them Tongzhi sends through, and why it does not offer the others.": "小程序触达用户的各种方式：通知使用哪些发送，其余为何不提供。",
    "sends through it": "通知使用",
    "not offered": "不提供",
    "configured": "已配置",
    "off (not configured)": "未开启（未配置）",
    "Subscribe messages (订阅消息), one-time and long-term": "订阅消息（一次性与长期）",
    "Each tap on 允许 in the subscribe dialog is one credit for one message (one-time), or a standing permission for public-service categories (long-term). Tongzhi keeps the credits, since WeChat shows them to nobody.": "用户在订阅弹窗中每点一次“允许”，即可发送一条（一次性订阅）；公共服务类目可获得长期授权（长期订阅）。微信不向任何人展示剩余次数，通知自行记账。",
    "Official Account template messages (公众号模板消息)": "公众号模板消息",
    "Needs a verified service account (服务号) linked to the mini-program, and the user must follow it; no per-message grant. Its openid differs from the mini-program's: the two are one person through the unionid. A tap opens the mini-program.": "需要已认证并关联小程序的服务号，且用户须关注该公众号；无需逐条授权。公众号的 openid 与小程序不同，两者通过 unionid 识别为同一人。点击消息可打开小程序。",
    "Mini-program template messages with a formId (模板消息)": "小程序模板消息（formId）",
    "Retired by WeChat on 2020-01-10: every call now answers 45103 (this API has been unsupported). Subscribe messages replaced them.": "微信已于 2020-01-10 下线该接口：现在每次调用都返回 45103（接口已不再支持）。订阅消息取代了它。",
    "Customer-service messages (客服消息)": "客服消息",
    "A reply to a user who wrote to the mini-program: allowed only within 48 hours of their last message, later calls answer 45015. Tongzhi cannot choose when it may send them, so they are not notifications.": "用于回复给小程序发过消息的用户：仅在用户最后一条消息后的 48 小时内可发，之后调用返回 45015。发送时机不由通知决定，因此不能用作通知。",
    "Official Account": "公众号",
    "Followers known to Tongzhi: %(following)d following, %(joined)d of them also mini-program users (same unionid).": "通知已知的粉丝：%(following)d 人关注中，其中 %(joined)d 人也是小程序用户（unionid 相同）。",
    "Kept current by the Official Account's events at /wechat/oa-push and by the follower sync (flask sync-followers).": "由公众号推送到 /wechat/oa-push 的事件和粉丝同步（flask sync-followers）保持最新。",
    "The Official Account channel is off: set WECHAT_OA_APPID and WECHAT_OA_SECRET (and WECHAT_OA_PUSH_TOKEN, WECHAT_OA_PUSH_AES_KEY for its events) and restart.": "公众号渠道未开启：请设置 WECHAT_OA_APPID 和 WECHAT_OA_SECRET（接收事件还需 WECHAT_OA_PUSH_TOKEN、WECHAT_OA_PUSH_AES_KEY）后重启。",
    # the Official Account check (Settings → Configuration)
    "Official Account: off (WECHAT_OA_APPID is not set).": "公众号：未开启（未设置 WECHAT_OA_APPID）。",
    "The Official Account answers: %(templates)d template message(s), %(followers)d follower(s); access token from %(source)s.": "公众号已应答：%(templates)d 个模板消息，%(followers)d 个粉丝；access token 来自%(source)s。",
    "The Official Account check failed (%(category)s).": "公众号检查失败（%(category)s）。",
    # a user's page
    "The Official Account channel is off.": "公众号渠道未开启。",
    "Official Account openid": "公众号 openid",
    "Follows the Official Account": "已关注公众号",
    "since %(time)s": "自 %(time)s 起",
    "Does not follow the Official Account": "未关注公众号",
    "stopped %(time)s": "于 %(time)s 取消关注",
    "Joined to this user by the unionid.": "通过 unionid 与此用户关联。",
    "No follower of the Official Account has this user's unionid.": "没有公众号粉丝的 unionid 与此用户相同。",
    "Without a unionid this user cannot be matched to a follower of the Official Account.": "此用户没有 unionid，无法与公众号粉丝关联。",
}
