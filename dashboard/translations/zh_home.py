"""Chinese strings for the home page: today's sends, failures by cause, campaigns, grants per day, alerts."""

ZH = {
    # Error classes (dashboard/wechat/errors.py), as the home page names a failure's cause.
    "Access token refused": "访问令牌被拒",
    "Temporary WeChat error": "微信临时错误",
    "Daily quota used up": "当日额度已用完",
    "No subscription credit": "用户无订阅授权",
    "Invalid recipient": "接收人无效",
    "Template invalid or removed": "模板无效或已删除",
    "Content breaks the rules": "内容不合规",
    "Page not in the published mini-program": "页面不在已发布的小程序中",
    "Account or set-up problem": "账号或配置问题",
    "Outcome unknown": "结果未知",
    "Other error": "其他错误",
    "Given up after retries": "多次重试后放弃",
    # Alerts.
    "Needs a person": "需要人工处理",
    "Sending is paused until %(when)s: WeChat's daily quota is used up (errcode 45009).": "发送已暂停至 %(when)s：微信当日发送额度已用完（errcode 45009）。",
    (
        "%(num)d delivery of the last 7 days has an unknown outcome: check before sending again.",
        "%(num)d deliveries of the last 7 days have an unknown outcome: check before sending again.",
    ): "最近 7 天有 %(num)d 条投递结果未知：再次发送前请先核实。",
    (
        "%(num)d template changed or removed in WeChat: review it.",
        "%(num)d templates changed or removed in WeChat: review them.",
    ): "%(num)d 个模板在微信侧已更改或删除：请检查。",
    "The WeChat connection check fails": "微信连接检查失败",
    "No access token or no answer from WeChat: nothing can be sent until this is fixed.": "拿不到访问令牌或微信无应答：修复之前无法发送任何消息。",
    "Open the WeChat settings and run the check": "打开微信设置并运行检查",
    "Tell an admin: the WeChat settings are theirs.": "请告知管理员：微信设置由管理员负责。",
    # Sends today.
    "success rate: sent of those with an outcome (sent, failed, unknown)": "成功率：有结果的发送（已发送、失败、未知）中已发送的比例",
    "Pending includes sends waiting to retry and in flight.": "待发送包括等待重试和正在发送的。",
    "Failures by cause": "失败原因",
    "no errcode": "无 errcode",
    # Campaigns.
    "%(done)d of %(total)d done": "已完成 %(done)d / %(total)d",
    "No campaign is running.": "没有进行中的活动。",
    "Last completed": "最近完成",
    "Next scheduled": "即将开始",
    "All campaigns": "全部活动",
    # Grants per day.
    "Grants per day, last 14 days": "最近 14 天每日授权",
    "Answers to subscribe prompts per day over the last 14 days, with the accept rate": "最近 14 天每日订阅弹窗的回答数与接受率",
    "other answers": "其他回答",
    "no answer": "无回答",
    "accepts": "接受",
    "rejects": "拒绝",
    "other answers (banned, filtered)": "其他回答（已屏蔽、被过滤）",
    "accept rate (line, right scale)": "接受率（折线，右侧刻度）",
    "accept rate": "接受率",
    "The numbers per day": "每日数字",
    "Day": "日期",
    # Live grants.
    "Template not in the catalog": "模板不在模板库中",
}
