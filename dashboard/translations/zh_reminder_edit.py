"""Chinese strings for editing a draft date reminder."""

ZH = {
    "Edit date reminder": "编辑日期提醒",
    "Reminder changes saved.": "提醒的修改已保存。",
}
