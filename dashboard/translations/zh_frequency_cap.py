"""Chinese strings for the frequency cap (Settings → Sending limits, the skip reason)."""

ZH = {
    "Frequency cap reached": "已达发送频次上限",
    "Frequency cap": "发送频次上限",
    "Campaign messages per user": "每位用户的群发消息数",
    "Window in days": "统计天数",
    "0 turns the cap off.": "填 0 表示不限制。",
    "Frequency cap saved.": "发送频次上限已保存。",
    "Now: at most %(messages)s campaign messages per user in any %(days)s days.": "当前：每位用户在任意 %(days)s 天内最多收到 %(messages)s 条群发消息。",
    "Now: no frequency cap.": "当前：不限制发送频次。",
    "Counts every campaign, recurring run and reminder. A user at the cap is skipped and keeps the credit; API sends are not capped and do not count.": "统计所有群发活动、重复发送和日期提醒。达到上限的用户将被跳过，并保留其可发送次数；API 单条发送不受限制，也不计入。",
}
